"""A request copied from the stream's template is the request requests would have prepared; the
session keeps no cookies, and writes a metric line for every request."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
import typing
from importlib.metadata import version
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from tap_omnitron.retry import Pause
from tap_omnitron.session import (
    BodyTooLarge,
    Limits,
    OmnitronSession,
    RequestMetrics,
    RequestTemplate,
    _BoundedAdapter,
    _CappedBody,
)

BASES = [
    "https://omnitron.example.com",
    "http://127.0.0.1:8000",
    "https://omnitron.example.com/shop%20one",
    "https://xn--bcher-kva.example",
    "https://bücher.example",  # requests makes IDNA of it; the copies keep that
    "https://Omnitron.Example.com:443",
]
HEADERS = {"Accept": "application/json", "User-Agent": "tap-omnitron/test"}
DETAIL = "/api/i1/orders_integration/{}/detailed_integration/"

ids = st.one_of(st.integers(min_value=0), st.text(max_size=12))
params = st.dictionaries(
    st.sampled_from(["limit", "page", "sort", "modified_date__gte"]),
    st.one_of(st.integers(), st.text(max_size=30), st.sampled_from(["-id", "2026-12-02T10:00:00.123456+00:00"])),
)


def as_requests_prepares(url: str, query: str) -> requests.PreparedRequest:
    return requests.Request("GET", url, params=query, headers=HEADERS).prepare()


def same(a: requests.PreparedRequest, b: requests.PreparedRequest) -> None:
    assert (a.method, a.url, dict(a.headers), a.body) == (b.method, b.url, dict(b.headers), b.body)


@given(base=st.sampled_from(BASES), order_id=ids, query=params.map(urlencode))
def test_a_copy_is_the_request_requests_prepares(base: str, order_id: object, query: str) -> None:
    """Whatever the id and the query, the fast way (a copy with a URL put together) and the
    way requests takes (parse, quote) give the same request, or the template lets requests do it."""
    url = base + DETAIL.format(quote(str(order_id), safe=""))
    same(RequestTemplate(base, HEADERS).prepare(url, query), as_requests_prepares(url, query))


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (DETAIL.format(1234), ""),
        ("/api/i1/orders/", "limit=50&sort=id&page=3&modified_date__gte=2026-12-02T10%3A00%3A00.123456%2B00%3A00"),
    ],
)
def test_a_syncs_requests_are_copies_requests_does_not_parse_again(monkeypatch, path: str, query: str) -> None:
    """The shapes a sync sends take the fast way: requests' URL preparation is not called."""
    base = BASES[0]
    template = RequestTemplate(base, HEADERS)
    expected = as_requests_prepares(base + path, query)

    def refuse(*_: object) -> None:
        pytest.fail("requests prepared the URL again")

    monkeypatch.setattr(requests.PreparedRequest, "prepare_url", refuse)
    same(template.prepare(base + path, query), expected)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/i1/orders_integration/../detailed_integration/", ""),  # a dot segment requests resolves
        (DETAIL.format("%41"), ""),  # an escape requests turns back into "A"
        (DETAIL.format("caf%c3%a9"), ""),  # lower-case hex, which requests writes in upper case
        (DETAIL.format(1), "sort=a b"),  # a space, which requests quotes
    ],
)
def test_a_url_requests_would_change_is_left_to_requests(path: str, query: str) -> None:
    base = BASES[0]
    same(RequestTemplate(base, HEADERS).prepare(base + path, query), as_requests_prepares(base + path, query))


def test_each_copy_has_headers_of_its_own() -> None:
    """The authenticator sets a header on each request: never on the template's."""
    template = RequestTemplate(BASES[0], HEADERS)
    first = template.prepare(BASES[0] + DETAIL.format(1), "")
    first.headers["Authorization"] = "Token secret"
    assert "Authorization" not in template.prepare(BASES[0] + DETAIL.format(2), "").headers


def test_the_pool_is_found_once_per_origin_and_tls_settings(monkeypatch) -> None:
    """requests works the pool out again for each request (a stat of the CA bundle included):
    the adapter asks it once for each origin, CA bundle and proxy, and keeps it."""
    adapter = _BoundedAdapter(max_body=1 << 20, pool_size=2)
    asked = []
    found = HTTPAdapter.get_connection_with_tls_context

    def counting(self, request, verify, proxies=None, cert=None):
        asked.append((request.url, verify))
        return found(self, request, verify, proxies, cert)

    monkeypatch.setattr(HTTPAdapter, "get_connection_with_tls_context", counting)

    def pool(url: str, verify: object = True) -> object:
        return adapter.get_connection_with_tls_context(as_requests_prepares(url, ""), verify)

    first = pool(BASES[0] + DETAIL.format(1))
    assert pool(BASES[0] + DETAIL.format(2)) is first
    assert pool(BASES[0] + DETAIL.format(3), verify="/etc/ssl/certs/ca-certificates.crt") is not first
    assert pool(BASES[1] + DETAIL.format(1)) is not first
    assert len(asked) == 3
    adapter.close()
    assert pool(BASES[0] + DETAIL.format(1)) is not first  # closed with the session: a new one


# What the session keeps and writes


class _CookieServer(http.server.BaseHTTPRequestHandler):
    """Answers every request with a cookie, and remembers the Cookie header each one carried."""

    carried: typing.ClassVar[list[str | None]] = []
    agents: typing.ClassVar[set[str | None]] = set()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).carried.append(self.headers.get("Cookie"))
        type(self).agents.add(self.headers.get("User-Agent"))
        body = b'{"key": "k"}'
        self.send_response(200)
        self.send_header("Set-Cookie", "sessionid=from-the-server; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815  (http.server's names)

    def log_message(self, *_: object) -> None:
        return


def a_session() -> OmnitronSession:
    limits = Limits(connect_timeout=5, read_timeout=5, deadline=10, max_body=1 << 20)
    return OmnitronSession(limits=limits, pool_size=2, pause=Pause(), name=lambda path: ("test", path))


def test_the_session_keeps_no_cookie_and_sends_none() -> None:
    """A server's Set-Cookie is not kept: no later request carries it, the login's POST (which
    requests would merge the session's cookies into) included."""
    _CookieServer.carried.clear()
    _CookieServer.agents.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CookieServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/i1/orders/"
    session = a_session()
    try:
        assert session.get(url).cookies.get("sessionid") == "from-the-server"  # the answer has it
        session.get(url)
        session.post(url, json={"username": "u", "password": "p"})
    finally:
        session.close()
        server.shutdown()
        server.server_close()
    assert len(session.cookies) == 0
    assert _CookieServer.carried == [None, None, None]
    assert _CookieServer.agents == {f"tap-omnitron/{version('tap-omnitron')}"}


def metric_points(caplog: pytest.LogCaptureFixture, metric: str) -> list[dict]:
    points = [
        json.loads(record.getMessage().removeprefix("METRIC: "))
        for record in caplog.records
        if record.name == "singer_sdk.metrics"
    ]
    return [point for point in points if point["metric"] == metric]


def durations(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return metric_points(caplog, "http_request_duration")


def test_request_lines_are_written_in_order_within_their_interval_and_all_at_close(caplog) -> None:
    """One line per request, in the order of the requests: within `every` seconds while the
    run goes on, what waits at `close`, and at once for a request that ends after it."""
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    lines = RequestMetrics(every=0.05)
    for status in (200, 404, 503):
        lines.add("orders", "/api/i1/orders/", status, 0.25)
    deadline = time.monotonic() + 5
    while len(durations(caplog)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [d["tags"]["http_status_code"] for d in durations(caplog)] == [200, 404, 503]
    assert [d["tags"]["status"] for d in durations(caplog)] == ["succeeded", "failed", "failed"]
    assert {d["value"] for d in durations(caplog)} == {0.25}

    slow = RequestMetrics(every=60)
    slow.add("order_details", "/d/", 200, 0.5)
    slow.add("order_details", "/d/", None, 1.5)  # no answer at all
    assert len(durations(caplog)) == 3  # waiting for the interval
    slow.close()
    slow.add("order_details", "/d/", 200, 2.5)  # in flight when the run ended
    assert [(d["tags"]["http_status_code"], d["value"]) for d in durations(caplog)[3:]] == [
        (200, 0.5),
        (None, 1.5),
        (200, 2.5),
    ]
    counts = metric_points(caplog, "http_request_count")
    assert [(c["tags"]["endpoint"], c["value"]) for c in counts] == [("/d/", 2)]  # closed once, at close


def test_a_body_is_read_in_64_kib_pieces_unless_it_is_compressed() -> None:
    """`Response.content` asks for 10 KiB at a time: a detailed order (12 KiB) took two trips
    through urllib3. A compressed body keeps requests' pieces; the cap counts every piece."""
    asked: list[object] = []

    class Raw:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

        def stream(self, amt: int, decode_content: bool | None = None) -> typing.Iterator[bytes]:  # noqa: ARG002  (urllib3's signature)
            asked.append(amt)
            yield from (b"x" * 700, b"y" * 700)

        def close(self) -> None:
            asked.append("closed")

    def read(limit: int, **headers: str) -> bytes:
        return b"".join(_CappedBody(Raw(headers), limit=limit).stream(10 * 1024, decode_content=True))

    assert read(1400) == b"x" * 700 + b"y" * 700
    assert read(1400, **{"Content-Encoding": "gzip"}) == b"x" * 700 + b"y" * 700
    with pytest.raises(BodyTooLarge):
        read(1000)
    assert asked == [64 * 1024, 10 * 1024, 64 * 1024, "closed"]
