"""Tests of the test proxy (tests/proxy.py) itself, with plain sockets and http.client, the sandbox upstream."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from typing import TYPE_CHECKING

import pytest

from proxy import Proxy

if TYPE_CHECKING:
    from omnitron_sandbox import Sandbox

IDN = "bücher.example"
IDN_ASCII = IDN.encode("idna").decode()  # xn--bcher-kva.example


@pytest.fixture
def make_proxy(sandbox: Sandbox):
    """Proxies that relay everything to the sandbox, whatever host the client names."""
    started: list[Proxy] = []

    def make(**knobs) -> Proxy:
        started.append(Proxy(upstream=("127.0.0.1", sandbox.port), **knobs).start())
        return started[-1]

    yield make
    for p in started:
        p.stop()


def credentials(proxy: Proxy) -> str:
    return "Basic " + base64.b64encode(f"{proxy.user}:{proxy.password}".encode()).decode()


def open_tunnel(proxy: Proxy, target: str = f"{IDN_ASCII}:443", auth: bool = True) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"] + ([f"Proxy-Authorization: {credentials(proxy)}"] * auth)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return s


def read_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, data
        data += chunk
    return data


def get_through(s: socket.socket, sandbox: Sandbox) -> bytes:
    """A plain http request to the sandbox through an open tunnel; the whole answer."""
    s.sendall(
        f"GET /api/i1/orders/?limit=1 HTTP/1.1\r\nHost: {IDN_ASCII}\r\nConnection: close\r\n"
        f"Authorization: Token {sandbox.api_token}\r\n\r\n".encode()
    )
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_connect_answer_and_injected_bytes_arrive_together(make_proxy, sandbox):
    proxy = make_proxy(inject_after_connect=b"HTTP/1.1 200 OK\r\n\r\n")
    with open_tunnel(proxy) as s:
        time.sleep(0.2)  # everything one write sent is in the receive buffer by now
        assert s.recv(65536) == b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
        assert get_through(s, sandbox).startswith(b"HTTP/1.1 200 OK\r\n")  # then the tunnel relays
    assert proxy.tunnels == 1
    assert proxy.seen == [("CONNECT", f"{IDN_ASCII}:443", f"{IDN_ASCII}:443")]


def test_injected_bytes_can_come_later(make_proxy, sandbox):
    proxy = make_proxy(inject_after_connect=b"\x16\x03junk", inject_delay=0.3)
    with open_tunnel(proxy) as s:
        answer = b"HTTP/1.1 200 Connection established\r\n\r\n"
        t0 = time.monotonic()
        assert read_exactly(s, len(answer)) == answer
        assert read_exactly(s, 6) == b"\x16\x03junk" and time.monotonic() - t0 > 0.25
        assert get_through(s, sandbox).startswith(b"HTTP/1.1 200 OK\r\n")


def test_connect_can_answer_another_2xx_and_still_tunnel(make_proxy, sandbox):
    proxy = make_proxy(connect_status=201)
    with open_tunnel(proxy) as s:
        answer = b"HTTP/1.1 201 Created\r\n\r\n"
        assert read_exactly(s, len(answer)) == answer
        assert get_through(s, sandbox).startswith(b"HTTP/1.1 200 OK\r\n")
    proxy.connect_reason = "Tunnel Ready"
    with open_tunnel(proxy) as s:
        answer = b"HTTP/1.1 201 Tunnel Ready\r\n\r\n"
        assert read_exactly(s, len(answer)) == answer


def test_absolute_uri_requests_go_upstream_and_are_seen_as_sent(make_proxy, sandbox):
    proxy = make_proxy()
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    url = f"http://{IDN_ASCII}:8080/api/i1/orders/?limit=1"
    conn.request(
        "GET", url, headers={"Proxy-Authorization": credentials(proxy), "Authorization": f"Token {sandbox.api_token}"}
    )
    r = conn.getresponse()
    page = json.loads(r.read())
    assert r.status == 200 and page["next"].startswith(f"http://{IDN_ASCII}:8080/")  # the Host header went upstream
    assert proxy.seen == [("GET", url, f"{IDN_ASCII}:8080")] and proxy.forwarded == 1
    conn.close()
    # a client that does not IDNA-encode sends UTF-8; it shows as such
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(
            f"GET http://{IDN}/nowhere HTTP/1.1\r\nHost: {IDN}\r\nConnection: close\r\n"
            f"Proxy-Authorization: {credentials(proxy)}\r\n\r\n".encode()
        )
        assert s.recv(65536).startswith(b"HTTP/1.1 404 Not Found\r\n")  # relayed all the same
    assert proxy.seen[-1] == ("GET", f"http://{IDN}/nowhere", IDN)


def test_credentials_are_still_demanded(make_proxy):
    proxy = make_proxy()
    with open_tunnel(proxy, auth=False) as s:
        assert s.recv(65536).startswith(b"HTTP/1.1 407 ")
    assert (proxy.refused, proxy.tunnels) == (1, 0)
    assert proxy.seen == [("CONNECT", f"{IDN_ASCII}:443", f"{IDN_ASCII}:443")]
