"""A forward proxy for the tests, as a company network has one: CONNECT for https, and
absolute-URI requests for plain http. It counts what it relays and demands credentials.

It can also misbehave, for the client's sake: answer CONNECT with another 2xx status, write bytes
of its own into a fresh tunnel, and relay everything to one fixed ``upstream`` (so that a base URL
may name a host that does not resolve). ``seen`` records what each request named, as received."""

from __future__ import annotations

import base64
import http.client
import selectors
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "upgrade",
}


class Proxy:
    def __init__(
        self,
        user: str = "proxy-user",
        password: str = "proxy-secret-pw",
        *,
        upstream: tuple[str, int] | None = None,
        connect_status: int = 200,
        connect_reason: str | None = None,
        inject_after_connect: bytes | None = None,
        inject_delay: float = 0,
    ) -> None:
        self.user, self.password = user, password
        self.tunnels = 0  # CONNECT requests accepted
        self.forwarded = 0  # plain http requests relayed
        self.refused = 0  # requests without the right Proxy-Authorization
        # (method, request-target as on the request line, Host header) of every request, CONNECT included;
        # bytes that are not UTF-8 show as \xNN
        self.seen: list[tuple[str, str, str | None]] = []
        self.upstream = upstream  # relay every request here, whatever host the client names
        self.connect_status = connect_status  # the tunnel is open whatever the status
        self.connect_reason = connect_reason  # None: "Connection established" for 200, else the usual phrase
        self.inject_after_connect = inject_after_connect  # written into the tunnel before relaying
        self.inject_delay = inject_delay  # > 0: written that long after the CONNECT answer, not with it
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        ok = header == f"Basic {expected}"
        if not ok:
            with self._lock:
                self.refused += 1
        return ok

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def saw(self, method: str, target: str, host: str | None) -> None:
        with self._lock:
            self.seen.append((method, target, host))

    def connect_answer(self) -> bytes:
        status = self.connect_status
        reason = self.connect_reason or ("Connection established" if status == 200 else HTTPStatus(status).phrase)
        return f"HTTP/1.1 {status} {reason}\r\n\r\n".encode("latin-1")


def _handler_for(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def parse_request(self) -> bool:
            ok = super().parse_request()
            if ok:  # the request line as received: http.server decodes it as latin-1 and may rewrite the path
                words = self.raw_requestline.split()
                host = self.headers.get("Host")
                proxy.saw(
                    self.command,
                    _text(words[1]) if len(words) > 1 else "",
                    None if host is None else _text(host.encode("latin-1")),
                )
            return ok

        def _refuse(self) -> bool:
            if proxy.authorized(self.headers.get("Proxy-Authorization")):
                return False
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_CONNECT(self) -> None:
            if self._refuse():
                return
            host, _, port = self.path.rpartition(":")
            upstream = socket.create_connection(proxy.upstream or (host.strip("[]"), int(port)), timeout=30)
            proxy.count("tunnels")
            answer, inject, delay = proxy.connect_answer(), proxy.inject_after_connect or b"", proxy.inject_delay
            if inject and delay > 0:
                self.connection.sendall(answer)
                time.sleep(delay)
                self.connection.sendall(inject)
            else:
                self.connection.sendall(answer + inject)  # in one write, so likely in one segment
            _relay(self.connection, upstream)
            self.close_connection = True

        def _forward(self) -> None:
            if self._refuse():
                return
            target = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = http.client.HTTPConnection(*(proxy.upstream or (target.hostname, target.port)), timeout=30)
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
            upstream.close()
            proxy.count("forwarded")
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP | {"content-length", "transfer-encoding"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _forward  # noqa: N815  (http.server's handler names)

    return Handler


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with selectors.DefaultSelector() as selector, upstream:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            for key, _ in selector.select(timeout=30):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]  # the two sockets registered above
                if not data:
                    return
                key.data.sendall(data)
