"""HTTP/1.1 to one host: keep-alive sockets with several requests in flight, on one thread.

The Singer SDK sends one request at a time. A pool of threads hides the latency but hands
the GIL back and forth; `start` instead writes a request on a free keep-alive socket and
returns at once, and the answer waits in the socket until `Exchange.response` reads it. A
caller that keeps N requests started gets N in flight, in the order it chose.

The protocol is spoken here directly, not through http.client or urllib3: measured on this
tap, their request building and e-mail-style header parsing cost about 150 µs of CPU per
request, against about 20 µs here, and a full sync sends one request per order. What is
needed of HTTP/1.1 is small: keep-alive, `Content-Length` or chunked bodies, gzip, TLS, and
proxies from the environment as `requests` reads them (`HTTPS_PROXY`, `HTTP_PROXY`,
`NO_PROXY`; https through a `CONNECT` tunnel). Redirects are not followed and cookies not
kept: Omnitron's token needs neither.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import time
import zlib
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import urlsplit

from requests.utils import (
    DEFAULT_CA_BUNDLE_PATH,
    get_auth_from_url,
    get_environ_proxies,
    select_proxy,
)

from tap_omnitron.errors import SECRETS, OmnitronError, SettingsError, TransientError

CONNECT_TIMEOUT = 15.0  # seconds: connections are opened one at a time, so not too long
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_HEAD = 1 << 16  # bytes of status line and headers
_NO_BODY = {204, 304}
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


@dataclass
class HttpResponse:
    """One answer, read in full."""

    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    elapsed: float  # seconds since the request was written: its answer may have waited unread


class Transport:
    """Connections to the host of `base_url`; not thread-safe (the tap uses one thread)."""

    def __init__(self, base_url: str, *, timeout: float, keep_idle: int) -> None:
        url = urlsplit(base_url)
        self._scheme = url.scheme
        self._host = url.hostname or ""
        self._port = url.port or _DEFAULT_PORTS[self._scheme]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.origin = f"{self._scheme}://{host}:{self._port}"
        authority = host if url.port is None else f"{host}:{self._port}"
        self._head = f"Host: {authority}\r\nAccept-Encoding: gzip\r\n"
        self._timeout = timeout
        self._keep_idle = keep_idle
        self._proxy, proxy_head = _proxy_for(base_url)
        self._tunnel_head = proxy_head
        if self._proxy is not None and self._scheme == "http":  # forwarded: names the whole URL
            self._head += proxy_head
        self._tls = _tls_context() if self._scheme == "https" else None
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    def start(self, method: str, target: str, headers: str = "", body: bytes = b"") -> Exchange:
        """Write a request for `target` (path and query) on a free connection.

        `headers` are extra header lines, each ending in CRLF. A failure to connect or to
        write is raised by `Exchange.response`, so that requests in flight are read first;
        a certificate the client does not trust ends the sync at once.
        """
        started = time.perf_counter()
        if self._proxy is not None and self._scheme == "http":
            target = self.origin + target
        if body:
            headers += f"Content-Length: {len(body)}\r\n"
        data = f"{method} {target} HTTP/1.1\r\n{self._head}{headers}\r\n".encode("latin-1") + body
        try:
            connection = self._connection()
        except (OSError, _ProtocolError) as exc:
            return Exchange(self, None, method, started, _transient(exc))
        try:
            connection.sock.sendall(data)
        except OSError as exc:
            self._discard(connection)
            return Exchange(self, None, method, started, _transient(exc))
        return Exchange(self, connection, method, started)

    def close(self) -> None:
        for connection in list(self._open):
            self._discard(connection)

    def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.alive():  # the server may have closed it while it was idle
                return connection
            self._discard(connection)
        connection = self._connect()
        self._open.add(connection)
        return connection

    def _connect(self) -> _Connection:
        address = (self._host, self._port) if self._proxy is None else self._proxy
        sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock)
            if self._tls is not None:
                if self._proxy is not None:
                    connection.tunnel(self.origin, self._tunnel_head)
                try:
                    connection.sock = self._tls.wrap_socket(sock, server_hostname=self._host)
                except ssl.SSLCertVerificationError as exc:
                    msg = (
                        f"the TLS certificate of {self._host} was not accepted "
                        f"({exc.verify_message or exc}); for a private CA, point "
                        "REQUESTS_CA_BUNDLE to its certificate"
                    )
                    raise OmnitronError(msg) from None
            connection.sock.settimeout(self._timeout)
        except BaseException:
            sock.close()
            raise
        return connection

    def _release(self, connection: _Connection) -> None:
        """Keep a connection whose answer was read for the next request."""
        if len(self._idle) >= self._keep_idle:
            self._discard(connection)
        else:
            self._idle.append(connection)

    def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        connection.sock.close()


class Exchange:
    """One request on the wire; `response()` reads its answer, once."""

    def __init__(
        self,
        transport: Transport,
        connection: _Connection | None,
        method: str,
        started: float,
        error: Exception | None = None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._method = method
        self._started = started
        self._error = error

    def abandon(self) -> None:
        """Close the connection without reading the answer (nothing else may use it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._transport._discard(connection)  # noqa: SLF001  (its own transport)

    def response(self) -> HttpResponse:
        connection, self._connection = self._connection, None
        if connection is None:
            raise self._error or RuntimeError("response() called twice")
        try:
            status, reason, headers, body, keep = connection.read_response(self._method)
        except (OSError, _ProtocolError) as exc:
            self._transport._discard(connection)  # noqa: SLF001  (its own transport)
            raise _transient(exc) from None
        if keep:
            self._transport._release(connection)  # noqa: SLF001
        else:
            self._transport._discard(connection)  # noqa: SLF001
        elapsed = time.perf_counter() - self._started
        return HttpResponse(status, reason, headers, _decoded(headers, body), elapsed)


class _ProtocolError(Exception):
    """An answer that is not HTTP/1.1 as the tap speaks it."""


class _Connection:
    """A socket and the bytes read from it that no answer has claimed yet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def alive(self) -> bool:
        """Open and silent: an idle connection with something to read was closed (or broken)."""
        if self._buffer:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def tunnel(self, origin: str, proxy_head: str) -> None:
        """Ask an http proxy for a tunnel to `origin` (`CONNECT host:port`)."""
        authority = origin.split("://", 1)[1]
        self.sock.sendall(
            f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{proxy_head}\r\n".encode("latin-1")
        )
        status, reason, _, _, _ = self.read_response("CONNECT")
        if status >= 500:  # noqa: PLR2004  (the proxy could not reach the host: worth retrying)
            msg = f"the proxy could not reach {authority}: HTTP {status} {reason}".strip()
            raise ConnectionRefusedError(msg)
        if status != 200:  # noqa: PLR2004
            msg = f"the proxy refused a tunnel to {authority}: HTTP {status} {reason}".strip()
            raise OmnitronError(msg)

    def read_response(self, method: str) -> tuple[int, str, dict[str, str], bytes, bool]:
        while True:
            version, status, reason, headers = self._read_head()
            if not 100 <= status < 200 or status == 101:  # noqa: PLR2004  (skip 100 Continue)
                break
        keep = _keep_alive(version, headers)
        if method in {"HEAD", "CONNECT"} or status in _NO_BODY:
            return status, reason, headers, b"", keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, reason, headers, self._read_chunked(), keep
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise _ProtocolError(f"Content-Length {length!r}")
            return status, reason, headers, self._take(int(length)), keep
        return status, reason, headers, self._read_to_end(), False

    def _read_head(self) -> tuple[str, int, str, dict[str, str]]:
        head = self._through(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/") or not code.isdigit():
            raise _ProtocolError(f"status line {status_line[:40]!r}")
        headers: dict[str, str] = {}
        name = ""
        for line in lines:
            if line[:1] in {" ", "\t"} and name:  # an obsolete folded continuation
                headers[name] += " " + line.strip()
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return version, int(code), reason, headers

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self._buffer += chunk

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _through(self, separator: bytes) -> bytes:
        """The bytes before `separator`, which is consumed too (a head, or a chunk's line)."""
        end = self._buffer.find(separator)
        while end < 0:
            if len(self._buffer) > _MAX_HEAD:
                raise _ProtocolError("a head or chunk line too long")
            self._fill()
            end = self._buffer.find(separator)
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(separator)]
        return data

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size_text = self._through(b"\r\n").split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                raise _ProtocolError(f"chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                while self._through(b"\r\n"):  # trailer lines, up to the empty one
                    pass
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)  # the CRLF after each chunk

    def _read_to_end(self) -> bytes:
        while True:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                data = bytes(self._buffer)
                self._buffer.clear()
                return data
            self._buffer += chunk


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _decoded(headers: dict[str, str], body: bytes) -> bytes:
    coding = headers.get("content-encoding", "").strip().lower()
    if not body or coding in {"", "identity"}:
        return body
    try:
        if coding in {"gzip", "x-gzip"}:
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise TransientError(f"a {coding} body that does not decompress ({exc})") from None
    raise TransientError(f"a body in an unknown Content-Encoding {coding!r}")


def _transient(exc: Exception) -> TransientError:
    """A failed exchange as an error worth retrying, described without any secret."""
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        return TransientError(f"no answer in time ({name})")
    if isinstance(exc, _ProtocolError):
        return TransientError(f"an answer that is not HTTP ({exc})")
    if isinstance(exc, ssl.SSLError):
        return TransientError(f"a TLS error ({name}: {exc.reason or exc})")
    return TransientError(f"connection failed or dropped ({name})")


def _tls_context() -> ssl.SSLContext:
    """One context for every connection, with the CA bundle `requests` would trust."""
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or DEFAULT_CA_BUNDLE_PATH
    )
    where = {"capath": bundle} if os.path.isdir(bundle) else {"cafile": bundle}
    try:
        return ssl.create_default_context(**where)
    except (OSError, ssl.SSLError) as exc:
        msg = f"cannot read the CA certificates in {bundle} (REQUESTS_CA_BUNDLE): {exc}"
        raise SettingsError(msg) from None


def _proxy_for(base_url: str) -> tuple[tuple[str, int] | None, str]:
    """The proxy `requests` would use for `base_url`, and the header line that logs in to it.

    Its credentials join the secrets that no log line or error may show.
    """
    proxy = select_proxy(base_url, get_environ_proxies(base_url))
    if not proxy:
        return None, ""
    user, password = get_auth_from_url(proxy)
    SECRETS.add(password)
    try:
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = url.hostname, url.port or 80
    except ValueError:
        host = port = None
    if not host:
        msg = (
            "the proxy URL in the environment cannot be parsed "
            "(characters such as # / ? in its password must be %-encoded)"
        )
        raise SettingsError(msg)
    if url.scheme != "http":
        msg = f"only http:// proxies are supported (the environment names {url.scheme}://{host})"
        raise SettingsError(msg)
    if not user:
        return (host, port), ""
    pair = f"{user}:{password}"  # like requests: Basic credentials, in Latin-1 where they fit
    try:
        token = b64encode(pair.encode("latin1")).decode()
    except UnicodeEncodeError:
        token = b64encode(pair.encode()).decode()
    SECRETS.add(token)
    return (host, port), f"Proxy-Authorization: Basic {token}\r\n"
