"""HTTP to one host: keep-alive connections with several requests in flight, on one thread.

The Singer SDK syncs one request at a time. A pool of worker threads would hide the
latency, but measured on this tap it spent more CPU handing the GIL between threads (about
twenty context switches per request) than on the requests themselves. Instead, `start`
writes a request on a free keep-alive connection and returns at once; the answer waits in
the socket until `Exchange.response` reads it. A caller that keeps N requests started
ahead gets N in flight, in the order it chose, without a thread.

Built on urllib3's connection classes (the layer `requests` itself uses): TLS checked
against certifi's bundle or `REQUESTS_CA_BUNDLE`, proxies from the environment as
`requests` reads them (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), gzip answers decoded.
Unlike `requests`, redirects are not followed (see `OmnitronStream.validate_response`)
and cookies are not kept: Omnitron's token needs neither.
"""

from __future__ import annotations

import datetime
import http.client
import os
import ssl
import time
from base64 import b64encode

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import (
    DEFAULT_CA_BUNDLE_PATH,
    get_auth_from_url,
    get_encoding_from_headers,
    get_environ_proxies,
    select_proxy,
)
from urllib3.connection import HTTPConnection, HTTPSConnection

from tap_omnitron.errors import SECRETS, OmnitronError, SettingsError

CONNECT_TIMEOUT = 15.0  # seconds: connections are opened one at a time, so not too long
_DEFAULT_PORTS = {"http": 80, "https": 443}
_IO_ERRORS = (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError)


class Transport:
    """Connections to the host of `base_url`; not thread-safe (the tap uses one thread)."""

    def __init__(self, base_url: str, *, timeout: float, keep_idle: int) -> None:
        url = urllib3.util.parse_url(base_url)
        self._scheme = url.scheme or "https"
        self._host = (url.host or "").strip("[]")  # http.client adds an IPv6 literal's brackets
        self._port = url.port or _DEFAULT_PORTS[self._scheme]
        self._timeout = timeout
        self._keep_idle = keep_idle
        self._proxy, self._proxy_headers = _proxy_for(base_url)
        self._tls = _tls_context() if self._scheme == "https" else None
        self._idle: list[HTTPConnection] = []
        self._open: set[HTTPConnection] = set()

    def start(self, request: requests.PreparedRequest) -> Exchange:
        """Write `request` on a free connection; a failure is raised by `response()`."""
        started = time.perf_counter()
        connection = self._connection()
        headers = request.headers
        if self._proxy_headers and self._forwarding:
            headers = {**headers, **self._proxy_headers}
        try:
            connection.request(
                request.method or "GET",
                (request.url or "") if self._forwarding else (request.path_url or "/"),
                body=request.body,
                headers=headers,
                preload_content=True,
                decode_content=True,
            )
        except _IO_ERRORS as exc:
            self.discard(connection)
            return Exchange(self, None, request, started, _requests_error(exc, request))
        connection.timeout = self._timeout  # connected: from now on, the read timeout
        return Exchange(self, connection, request, started)

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        return self.start(request).response()

    def close(self) -> None:
        for connection in list(self._open):
            self.discard(connection)

    @property
    def _forwarding(self) -> bool:
        """Plain HTTP through a proxy names the whole URL; HTTPS goes through a tunnel."""
        return self._proxy is not None and self._scheme == "http"

    def _connection(self) -> HTTPConnection:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected:  # the server may have closed it while it was idle
                return connection
            self.discard(connection)
        connection = self._new_connection()
        self._open.add(connection)
        return connection

    def _new_connection(self) -> HTTPConnection:
        host, port = self._host, self._port
        if self._proxy is not None:
            host, port = (self._proxy.host or "").strip("[]"), self._proxy.port or 80
        if self._tls is None:
            return HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
        connection = HTTPSConnection(
            host, port, timeout=CONNECT_TIMEOUT, cert_reqs="CERT_REQUIRED", ssl_context=self._tls
        )
        if self._proxy is not None:
            connection.set_tunnel(self._host, self._port, headers=self._proxy_headers)
        return connection

    def release(self, connection: HTTPConnection) -> None:
        """Keep a connection whose answer was read for the next request, if it is open."""
        if connection.is_closed or len(self._idle) >= self._keep_idle:
            self.discard(connection)
        else:
            self._idle.append(connection)

    def discard(self, connection: HTTPConnection) -> None:
        self._open.discard(connection)
        connection.close()


class Exchange:
    """One request on the wire; `response()` reads its answer, once."""

    def __init__(
        self,
        transport: Transport,
        connection: HTTPConnection | None,
        request: requests.PreparedRequest,
        started: float,
        error: Exception | None = None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._request = request
        self._started = started
        self._error = error

    def response(self) -> requests.Response:
        connection, request = self._connection, self._request
        if connection is None:
            raise self._error or RuntimeError("response() called twice")
        self._connection = None
        try:
            raw = connection.getresponse()
        except _IO_ERRORS as exc:
            self._transport.discard(connection)
            raise _requests_error(exc, request) from None
        self._transport.release(connection)
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason or ""
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = raw.data  # noqa: SLF001  (read in full: preload_content)
        response._content_consumed = True  # noqa: SLF001
        response.raw = raw
        response.url = request.url or ""
        response.request = request
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._started)
        return response


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


def _proxy_for(base_url: str) -> tuple[urllib3.util.Url | None, dict[str, str]]:
    """The proxy `requests` would use for `base_url`, and the headers that log in to it.

    Its credentials join the secrets that no log line or error may show.
    """
    proxy = select_proxy(base_url, get_environ_proxies(base_url))
    if not proxy:
        return None, {}
    user, password = get_auth_from_url(proxy)
    SECRETS.add(password)
    try:
        url = urllib3.util.parse_url(proxy if "://" in proxy else f"http://{proxy}")
    except urllib3.exceptions.LocationParseError:
        url = None
    if url is None or not url.host:
        msg = (
            "the proxy URL in the environment cannot be parsed "
            "(characters such as # / ? in its password must be %-encoded)"
        )
        raise SettingsError(msg)
    if url.scheme != "http":
        msg = f"only http:// proxies are supported (the environment names {url.scheme}://{url.host})"
        raise SettingsError(msg)
    headers = {}
    if user:  # like requests: Basic credentials, in Latin-1 where they fit
        pair = f"{user}:{password}"
        try:
            token = b64encode(pair.encode("latin1")).decode()
        except UnicodeEncodeError:
            token = b64encode(pair.encode()).decode()
        SECRETS.add(token)
        headers["Proxy-Authorization"] = f"Basic {token}"
    return url, headers


def _requests_error(exc: Exception, request: requests.PreparedRequest) -> Exception:
    """The `requests` exception for a failed exchange, so that retries treat all alike.

    A certificate the client does not trust is not transient: it ends the sync at once.
    """
    cause = exc.args[0] if isinstance(exc, urllib3.exceptions.SSLError) and exc.args else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        host = urllib3.util.parse_url(request.url or "").host
        msg = (
            f"the TLS certificate of {host} was not accepted "
            f"({getattr(cause, 'verify_message', None) or cause}); "
            "for a private CA, point REQUESTS_CA_BUNDLE to its certificate"
        )
        return OmnitronError(msg)
    errors = requests.exceptions
    if isinstance(exc, (ssl.SSLError, urllib3.exceptions.SSLError)):
        return errors.SSLError(exc, request=request)
    if isinstance(exc, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProxyError)):
        return errors.ConnectionError(exc, request=request)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return errors.ConnectTimeout(exc, request=request)
    if isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
        return errors.ReadTimeout(exc, request=request)
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return errors.ContentDecodingError(exc, request=request)
    return errors.ConnectionError(exc, request=request)
