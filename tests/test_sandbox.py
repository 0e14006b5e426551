"""Fast tests of the local Omnitron sandbox itself (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import gzip
import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import zlib
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from omnitron_sandbox import FAULT_KINDS, HOSTILE_KINDS, SECRET, Sandbox

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)
LOGIN = "/api/i1/auth/login/"
ORDERS = "/api/i1/orders/"


class Api:
    """A keep-alive client for one sandbox; token=None sends no Authorization header."""

    def __init__(self, sb: Sandbox, token: str | None = "static") -> None:
        self.sb = sb
        self.s = requests.Session()
        token = sb.api_token if token == "static" else token
        if token:
            self.s.headers["Authorization"] = f"Token {token}"

    def get(self, path_or_url: str, **params) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self.sb.url + path_or_url
        return self.s.get(url, params=params, timeout=5)

    def post(self, path: str, payload: dict) -> requests.Response:
        return self.s.post(self.sb.url + path, json=payload, timeout=5)

    def orders(self, **params) -> requests.Response:
        return self.get("/api/i1/orders/", **params)

    def detail(self, oid: int, base: str = "i1") -> requests.Response:
        return self.get(f"/api/{base}/orders_integration/{oid}/detailed_integration/")

    def walk(self, **params) -> tuple[list[dict], list[requests.Response]]:
        """Follow `next` from page 1; return all results and every response."""
        pages = [self.orders(**params)]
        while True:
            assert pages[-1].status_code == 200, pages[-1].text
            nxt = pages[-1].json()["next"]
            if nxt is None:
                break
            pages.append(self.get(nxt))
        return [o for p in pages for o in p.json()["results"]], pages


@pytest.fixture
def make_sandbox(sandbox_factory):
    """The shared factory (tests/conftest.py) with this file's fixed data."""

    def make(**kw) -> Sandbox:
        return sandbox_factory(**{"orders": 37, "seed": 1, "now": NOW, **kw})

    return make


@pytest.fixture
def make_api(make_sandbox):
    def make(token: str | None = "static", **kw) -> Api:
        return Api(make_sandbox(**kw), token)

    return make


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


def test_pagination_follows_next_with_capped_limit(make_api):
    api = make_api(max_limit=10)
    orders, pages = api.walk(limit=25, sort="id")
    first = pages[0].json()
    assert first["count"] == 37 and first["previous"] is None
    assert [len(p.json()["results"]) for p in pages] == [10, 10, 10, 7]  # 25 silently capped at 10
    assert [o["id"] for o in orders] == sorted(api.sb.orders_snapshot())
    nxt = urlsplit(first["next"])
    assert f"{nxt.scheme}://{nxt.netloc}" == api.sb.url
    assert parse_qs(nxt.query) == {"limit": ["25"], "page": ["2"], "sort": ["id"]}
    assert "page=" not in pages[1].json()["previous"]  # DRF drops page=1
    for bad in ({"page": 5}, {"page": 0}, {"page": "x"}, {"limit": "ten"}):
        r = api.orders(limit=10, **bad) if "limit" not in bad else api.orders(**bad)
        assert (r.status_code, r.json()) == (404, {"detail": "Invalid page."})


def test_sort_default_is_id_descending(make_api):
    api = make_api(shape="extended")
    default = [o["id"] for o in api.orders(limit=200).json()["results"]]
    asc = [o["id"] for o in api.orders(limit=200, sort="id").json()["results"]]
    by_mod = [o["modified_date"] for o in api.orders(limit=200, sort="modified_date").json()["results"]]
    assert asc == sorted(asc) and default == asc[::-1]
    parsed = [datetime.fromisoformat(m) for m in by_mod]
    assert parsed == sorted(parsed)


def test_empty_store_first_page_is_ok(make_api):
    r = make_api(orders=0).orders()
    assert r.status_code == 200 and r.json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("ignore_filters", [False, True])
def test_modified_date_filter(make_api, ignore_filters):
    api = make_api(ignore_filters=ignore_filters, shape="extended")
    snap = api.sb.orders_snapshot()
    cutoff = sorted(datetime.fromisoformat(m) for m in snap.values())[20]
    got = api.orders(limit=200, modified_date__gte=cutoff.isoformat()).json()
    expected = len(snap) if ignore_filters else sum(datetime.fromisoformat(m) >= cutoff for m in snap.values())
    assert got["count"] == expected
    if not ignore_filters:
        assert all(datetime.fromisoformat(o["modified_date"]) >= cutoff for o in got["results"])
        bad = api.orders(modified_date__gte="yesterday")
        assert (bad.status_code, bad.json()) == (400, {"modified_date__gte": ["Enter a valid date/time."]})


def test_documented_shape_serves_no_order_dates_but_filters_and_sorts_on_them(make_api):
    api = make_api()  # the default shape is the documented one
    snap = api.sb.orders_snapshot()
    listed = api.orders(limit=200).json()["results"]
    assert listed and all("modified_date" not in o and "created_date" not in o for o in listed)
    assert all("modified_date" not in i for o in listed for i in o["orderitem_set"])
    detail = api.detail(listed[0]["id"]).json()
    assert "modified_date" not in detail and "created_date" not in detail
    assert any(
        "modified_date" in tx["order"]
        for d in (api.detail(o["id"]).json() for o in listed[:10])
        for tx in d["transaction_set"]
    ), "nested relations keep their dates, as documented"
    by_modified = sorted(snap, key=lambda oid: datetime.fromisoformat(snap[oid]))
    got = [o["id"] for o in api.orders(limit=200, sort="modified_date").json()["results"]]
    assert got == by_modified
    cutoff = datetime.fromisoformat(snap[by_modified[20]])
    assert api.orders(modified_date__gte=cutoff.isoformat()).json()["count"] == len(snap) - 20


@pytest.mark.parametrize("order", ["id", "-id", "modified_date", "-modified_date"])
def test_a_server_that_ignores_sort_lists_in_its_own_order(make_api, order):
    api = make_api(list_order=order)
    snap = api.sb.orders_snapshot()
    key = (lambda oid: oid) if order.endswith("id") else (lambda oid: datetime.fromisoformat(snap[oid]))
    expected = sorted(snap, key=key, reverse=order.startswith("-"))
    for sort in ("id", "-id", None):
        assert [o["id"] for o in api.walk(limit=10, sort=sort)[0]] == expected


def test_documents_are_served_verbatim(sandbox_factory):
    page = json.loads((REPO / "tests" / "fixtures" / "orders_page.json").read_text())
    detail = json.loads((REPO / "tests" / "fixtures" / "order_detail.json").read_text())
    api = Api(sandbox_factory(documents=(page["results"], {1: detail})))
    assert api.orders(sort="id").json()["results"] == page["results"]
    assert api.detail(1).json() == detail
    assert api.detail(2).status_code == 404


def test_token_auth(make_api):
    for token, detail in ((None, "Authentication credentials were not provided."), ("nope", "Invalid token.")):
        api = make_api(token=token)
        for r in (api.orders(), api.detail(1)):
            assert (r.status_code, r.json()) == (401, {"detail": detail})


def test_login_and_token_ttl(make_api):
    api = make_api(token=None, token_ttl_requests=2, api_token=None)
    bad = api.post("/api/i1/auth/login/", {"username": "sandbox", "password": "wrong"})
    assert bad.status_code == 400 and bad.json() == {
        "non_field_errors": ["Unable to log in with provided credentials."]
    }
    creds = {"username": api.sb.username, "password": api.sb.password}
    key = api.post("/api/v1/auth/login/", creds).json()["key"]
    assert key != api.post("/api/i1/auth/login/", creds).json()["key"]  # fresh key each login
    api.s.headers["Authorization"] = f"Token {key}"
    assert [api.orders().status_code for _ in range(3)] == [200, 200, 401]
    api.s.headers["Authorization"] = f"Token {api.post('/api/i1/auth/login/', creds).json()['key']}"
    assert api.orders().status_code == 200


def test_detail_shape_and_amounts(make_api):
    api = make_api(missing_details={5}, shape="extended")
    listed = {o["id"]: o for o in api.orders(limit=200).json()["results"]}
    for oid, order in list(listed.items())[:10]:
        if oid == 5:
            continue
        d = api.detail(oid).json()
        assert d["pk"] == oid and "id" not in d
        for key in ("number", "amount", "status", "modified_date", "created_date", "net_shipping_amount"):
            assert d[key] == order[key]
        assert SECRET in d["channel"]["conf"]["auth_token"] and SECRET in d["channel"]["conf"]["password"]
        assert SECRET in order["channel"]["conf"]["password"]
        for tx in d["transaction_set"]:
            assert all(SECRET in v for v in tx["pos"]["config"]["auth"].values())
            assert f"<Password>{SECRET}" in tx["raw_request"] and SECRET in tx["raw_response"]
            assert tx["amount"] == order["amount"]
    assert any(d["transaction_set"] for d in (api.detail(i).json() for i in list(listed)[:10] if i != 5))
    assert api.detail(listed[next(iter(listed))]["id"], base="v1").status_code == 200
    for oid in (5, 99999, "abc"):
        r = api.detail(oid)
        assert (r.status_code, r.json()) == (404, {"detail": "Not found."})
    assert api.get("/api/i1/orders/updates/").status_code == 404


def test_faults_at_rate_one_produce_every_configured_kind(make_api):
    api = make_api(fault_rate=1.0, fault_kinds=FAULT_KINDS, retry_after=0)
    seen = set()
    for _ in range(60):
        try:
            r = api.orders()
        except requests.ConnectionError:
            seen.add("drop")
            continue
        if r.status_code == 429:
            assert r.headers["Retry-After"] == "0"
        if r.status_code != 200:
            assert r.status_code in (429, 500, 502, 503, 504)
            assert r.status_code == 429 or r.headers["Content-Type"].startswith("text/html")
            seen.add(str(r.status_code))
        elif r.headers["Content-Type"].startswith("text/html"):
            seen.add("html200")
        else:
            assert len(r.content) == int(r.headers["Content-Length"])
            with pytest.raises(ValueError):  # noqa: PT011  (UnicodeDecodeError or JSONDecodeError, as the cut falls)
                json.loads(r.content)
            seen.add("truncated")
    assert seen == set(FAULT_KINDS)
    assert api.sb.faults_injected == 60
    login = api.post("/api/i1/auth/login/", {"username": "sandbox", "password": "sandbox-password"})
    assert login.status_code == 200  # login and control endpoints are never faulted
    assert api.get("/_sandbox/stats").json()["faults_injected"] == 60


def test_faults_are_reproducible_per_seed(make_api):
    def statuses(seed: int) -> list[int]:
        api = make_api(seed=seed, fault_rate=0.5, fault_kinds="429,500,502")
        return [api.orders().status_code for _ in range(20)]

    assert statuses(7) == statuses(7) != statuses(8)


def test_mutate_control_endpoint(api):
    before = api.get("/_sandbox/orders").json()
    out = api.post("/_sandbox/mutate", {"modify": 2, "create": 3, "delete": 1}).json()
    assert [len(out[k]) for k in ("modified", "created", "deleted")] == [2, 3, 1]
    after = {o["id"]: o for o in api.get("/_sandbox/orders").json()}
    assert len(after) == len(before) + 2 and out["deleted"][0] not in after
    old = {o["id"]: o for o in before}
    for oid in out["modified"]:
        if oid in after:
            assert after[oid]["modified_date"] > old[oid]["modified_date"]
            assert api.detail(oid).json()["amount"] == after[oid]["amount"]
    assert min(out["created"]) > max(old)
    stats = api.get("/_sandbox/stats").json()
    assert stats["orders"] == len(after) and stats["requests"] == api.sb.request_count


def test_list_page_hook_and_mutate_every_page(make_api):
    seen = []
    api = make_api(on_list_page=lambda _sb, page: seen.append(page), mutate_every_page={"create": 1})
    counts = [p.json()["count"] for p in api.walk(limit=15)[1]]
    assert seen == [1, 2, 3] and counts == [38, 39, 40]


def test_stop_is_quick_with_open_keepalive_connections(make_sandbox):
    sb = make_sandbox()
    clients = [Api(sb) for _ in range(4)]
    assert all(c.orders().status_code == 200 for c in clients)
    t0 = time.monotonic()
    sb.stop()
    assert time.monotonic() - t0 < 1.0


def test_cli_prints_json_line_serves_and_exits_on_sigterm(tmp_path):
    port_file = tmp_path / "url"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omnitron_sandbox",
            "--orders",
            "5",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--clock-skew",
            "-3600",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert info["url"].startswith("http://127.0.0.1:") and info["api_token"] == "sandbox-token"
        assert port_file.read_text().strip() == info["url"]
        r = requests.get(
            info["url"] + "/api/i1/orders/", headers={"Authorization": f"Token {info['api_token']}"}, timeout=5
        )
        assert r.json()["count"] == 5
        assert_close(parsedate_to_datetime(r.headers["Date"]), datetime.now(timezone.utc) - timedelta(hours=1))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert not port_file.exists()
    finally:
        proc.kill()
        proc.wait()


# -- the clock, hostile answers, login keys and outages, seen by plain stdlib clients --------------------------
def connect(sb: Sandbox) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", sb.port, timeout=10)


def call(
    sb: Sandbox, method: str, path: str, body: dict | None = None, token: str | None = "static"
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a fresh http.client connection: the response and its body as sent (not decompressed)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    token = sb.api_token if token == "static" else token
    if token:
        headers["Authorization"] = f"Token {token}"
    conn = connect(sb)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse()
        return r, r.read()
    finally:
        conn.close()


def request_bytes(sb: Sandbox, method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """A request as a client writes it (Content_Type=... for Content-Type), by default asking the
    server to close after its answer."""
    headers = {
        "Host": f"127.0.0.1:{sb.port}",
        "Connection": "close",
        "Authorization": f"Token {sb.api_token}",
        "Content-Length": str(len(body)),
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def exchange(sb: Sandbox, request: bytes) -> bytes:
    """Write ``request`` on a fresh socket; every byte the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def split_answer(data: bytes) -> tuple[list[str], dict[str, str], bytes]:
    """(status line words, headers by lower-case name, raw body) of a whole answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status.split(" ", 2), {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}, body


def dechunk(body: bytes) -> list[bytes]:
    """The chunks of a chunked body, the empty last one excluded."""
    chunks = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def assert_close(a: datetime, b: datetime, seconds: float = 5) -> None:
    assert abs((a - b).total_seconds()) < seconds, (a, b)


@pytest.mark.parametrize("skew", [3600.0, -7200.5])
def test_clock_skew_moves_the_date_header_and_every_stamp(make_sandbox, skew):
    hooked: list[int] = []  # modified by the list page hook, one per page served
    sb = make_sandbox(
        clock_skew=skew, shape="extended", on_list_page=lambda sb, _page: hooked.extend(sb.modify(count=1))
    )

    def server_now() -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=skew)

    since = sb.now() - timedelta(seconds=1)
    r, _ = call(sb, "GET", ORDERS + "?limit=1")
    assert_close(parsedate_to_datetime(r.getheader("Date")), server_now())
    assert sb.now().tzinfo is not None and sb.clock_skew == skew
    assert_close(sb.now(), server_now(), 0.5)
    modified, created = sb.modify(count=2), sb.create(1)
    _, out = call(sb, "POST", "/_sandbox/mutate", {"modify": 1, "create": 1}, token=None)
    modified += json.loads(out)["modified"]
    created += json.loads(out)["created"]
    _, page = call(sb, "GET", f"{ORDERS}?limit=200&modified_date__gte={quote(since.isoformat())}")
    assert {o["id"] for o in json.loads(page)["results"]} == set(modified + created + hooked)
    for oid in modified + created + hooked:
        assert_close(datetime.fromisoformat(sb.list_record(oid)["modified_date"]), server_now())
    for oid in created:
        assert_close(datetime.fromisoformat(sb.list_record(oid)["created_date"]), server_now())


def test_clock_skew_can_change_while_serving(api):
    assert api.get("/_sandbox/faults").json()["clock_skew"] == 0
    assert api.post("/_sandbox/faults", {"clock_skew": -90}).json()["clock_skew"] == -90
    real = datetime.now(timezone.utc)
    assert_close(parsedate_to_datetime(api.orders().headers["Date"]), real - timedelta(seconds=90))
    api.sb.set_faults(clock_skew=0)
    assert_close(parsedate_to_datetime(api.orders().headers["Date"]), datetime.now(timezone.utc))
    api.sb.clock_skew = -3600  # a clock set back stamps earlier than before, as a real one would
    oid = api.sb.modify(count=1)[0]
    assert_close(datetime.fromisoformat(api.sb.orders_snapshot()[oid]), real - timedelta(hours=1))


def test_hostile_plan_serves_each_kind_once_per_planned_request_then_normal(make_sandbox):
    sb = make_sandbox(log_requests=True, drip_interval=0, bomb_mib=1, fault_plan={ORDERS: ["503"]})
    with pytest.raises(ValueError, match="unknown hostile kinds"):
        sb.hostile_plan = {ORDERS: ["drip"]}
    sb.hostile_plan = {ORDERS: list(HOSTILE_KINDS), LOGIN: ["not_json"]}  # set after start
    for kind in HOSTILE_KINDS:
        answer = exchange(sb, request_bytes(sb, "GET", ORDERS + "?limit=1"))
        assert answer.startswith(b"HTTP/1.1 \xb200 OK\r\n" if kind == "bad_status" else b"HTTP/1.1 200 OK\r\n"), kind
    login = call(sb, "POST", LOGIN, {"username": sb.username, "password": sb.password}, token=None)
    assert login[1] == b"<html>oops</html>"
    assert sb.faults_injected == len(HOSTILE_KINDS) + 1 and sb.hostile_plan == {ORDERS: [], LOGIN: []}
    assert sb.fault_plan == {ORDERS: ["503"]}  # a hostile answer replaces its request's faults
    assert [call(sb, "GET", ORDERS + "?limit=1")[0].status for _ in range(2)] == [503, 200]  # then back to normal
    assert [(path.split("?")[0], status) for _, _, path, status in sb.request_log] == [(ORDERS, 200)] * len(
        HOSTILE_KINDS
    ) + [(LOGIN, 200), (ORDERS, 503), (ORDERS, 200)]


def test_drip_body_sends_the_head_at_once_then_one_byte_at_a_time(make_sandbox):
    sb = make_sandbox(drip_interval=0.02, hostile_plan={LOGIN: ["drip_body"]}, api_token=None)
    creds = json.dumps({"username": sb.username, "password": sb.password}).encode()
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as s:
        s.sendall(request_bytes(sb, "POST", LOGIN, creds, Content_Type="application/json"))
        t0, data, pieces = time.monotonic(), b"", 0
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head_at = time.monotonic() - t0
        while chunk := s.recv(65536):
            data, pieces = data + chunk, pieces + 1
        took = time.monotonic() - t0
    _, headers, body = split_answer(data)
    assert len(body) == int(headers["content-length"]) > 40
    assert head_at < 0.5 and took - head_at > (len(body) - 1) * 0.02 * 0.8 and pieces > len(body) // 2
    r, _ = call(sb, "GET", ORDERS, token=json.loads(body)["key"])  # the dripped key is a real one
    assert r.status == 200


def test_drip_head_drips_the_status_line_and_headers_too(make_sandbox):
    sb = make_sandbox(drip_interval=0.002, hostile_plan={ORDERS: ["drip_head"]})
    conn = connect(sb)
    t0 = time.monotonic()
    conn.request("GET", ORDERS, headers={"Authorization": f"Token {sb.api_token}"})
    r = conn.getresponse()  # http.client waits for the whole head, byte by byte
    took = time.monotonic() - t0
    assert r.status == 200 and json.loads(r.read())["count"] == 37
    assert took > 100 * 0.002  # a head is longer than 100 bytes
    conn.close()


def test_a_drip_ends_when_the_client_goes_away(make_sandbox):
    sb = make_sandbox(drip_interval=0.05, hostile_plan={ORDERS: ["drip_body"]})
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as s:
        s.sendall(request_bytes(sb, "GET", ORDERS))
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
        assert sb.in_flight == 1
    deadline = time.monotonic() + 3  # the body would take minutes
    while sb.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sb.in_flight == 0


def test_bad_status_is_a_superscript_two_then_a_normal_answer_then_close(make_sandbox):
    sb = make_sandbox(hostile_plan={ORDERS: ["bad_status", "bad_status"]})
    status, headers, body = split_answer(exchange(sb, request_bytes(sb, "GET", ORDERS, Connection="keep-alive")))
    assert status == ["HTTP/1.1", "\xb200", "OK"] and "\xb2".isdigit()  # what trips a parser that trusts isdigit()
    assert headers["content-type"] == "application/json" and "connection" not in headers  # closed unannounced
    assert json.loads(body)["count"] == 37
    with pytest.raises(http.client.BadStatusLine):
        call(sb, "GET", ORDERS)


def test_gzip_bomb_is_small_and_inflates_to_bomb_mib(make_sandbox):
    sb = make_sandbox(bomb_mib=8, hostile_plan={ORDERS: ["gzip_bomb"]})
    r, body = call(sb, "GET", ORDERS)
    assert (r.status, r.getheader("Content-Type"), r.getheader("Content-Encoding")) == (200, "application/json", "gzip")
    assert int(r.getheader("Content-Length")) == len(body) < 8 * 2**20 // 500
    inflate = zlib.decompressobj(31)
    out = inflate.decompress(body, 2**20)  # at most 1 MiB at a time, as a careful client inflates
    assert out.startswith(b'{"results": [ ')
    size = len(out)
    while not inflate.eof:
        out = inflate.decompress(inflate.unconsumed_tail, 2**20)
        assert not out.strip(b" ")
        size += len(out)
    assert size == 8 * 2**20


def test_multi_gzip_is_two_gzip_members(make_sandbox):
    sb = make_sandbox(hostile_plan={ORDERS: ["multi_gzip"]})
    r, body = call(sb, "GET", ORDERS)
    assert r.getheader("Content-Encoding") == "gzip" and int(r.getheader("Content-Length")) == len(body)
    first = zlib.decompressobj(31)
    half = first.decompress(body)
    assert first.eof and first.unused_data  # a second member follows the first
    assert gzip.decompress(body) == call(sb, "GET", ORDERS)[1] != half
    assert gzip.decompress(first.unused_data) == gzip.decompress(body)[len(half) :]


def test_gzip_chunked_has_no_length_and_several_chunks(make_sandbox):
    sb = make_sandbox(hostile_plan={ORDERS: ["gzip_chunked"]})
    _, headers, body = split_answer(exchange(sb, request_bytes(sb, "GET", ORDERS)))
    assert headers["transfer-encoding"] == "chunked" and headers["content-encoding"] == "gzip"
    assert "content-length" not in headers
    chunks = dechunk(body)
    assert len(chunks) > 2
    assert gzip.decompress(b"".join(chunks)) == call(sb, "GET", ORDERS)[1]


def test_truncated_close_announces_the_whole_length_sends_half_and_closes(make_sandbox):
    sb = make_sandbox(hostile_plan={ORDERS: ["truncated_close", "truncated_close"]})
    _, headers, body = split_answer(exchange(sb, request_bytes(sb, "GET", ORDERS, Connection="keep-alive")))
    assert len(body) == int(headers["content-length"]) // 2 > 0 and "connection" not in headers
    with pytest.raises(http.client.IncompleteRead):
        call(sb, "GET", ORDERS)


@pytest.mark.parametrize(("kind", "body"), [("not_json", b"<html>oops</html>"), ("wrong_shape", b"[1, 2, 3]")])
def test_not_json_and_wrong_shape(make_sandbox, kind, body):
    sb = make_sandbox(hostile_plan={ORDERS: [kind]})
    r, got = call(sb, "GET", ORDERS)
    assert (r.status, r.getheader("Content-Type"), got) == (200, "application/json", body)


def test_login_key_is_answered_verbatim_and_injected_headers_are_seen(make_sandbox):
    hostile = 'k3y"\r\nX-Injected: 1'
    sb = make_sandbox(login_key=hostile, api_token=None)
    creds = {"username": sb.username, "password": sb.password}
    r, body = call(sb, "POST", LOGIN, creds, token=None)
    assert r.status == 200 and json.loads(body) == {"key": hostile}
    assert not any("X-Injected" in h for h in sb.headers_seen)
    # what a client that copies the key into its Authorization header unchecked would write
    status, _, _ = split_answer(exchange(sb, request_bytes(sb, "GET", ORDERS, Authorization=f"Token {hostile}")))
    assert status[1] == "401"  # not a plain token: never valid, not even its first line
    assert sb.headers_seen[-1]["X-Injected"] == "1" and sb.headers_seen[-1]["Authorization"] == 'Token k3y"'

    sb = make_sandbox(login_key="fixed-key_1.2", api_token=None)  # a plain token works as a key
    key = json.loads(call(sb, "POST", LOGIN, creds, token=None)[1])["key"]
    assert key == "fixed-key_1.2" and call(sb, "GET", ORDERS, token=key)[0].status == 200


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            # a port nobody listens on can, rarely, be picked as the source port and connect to itself
            return s.getsockname() == s.getpeername()
    except ConnectionRefusedError:
        return True


def test_outage_refuses_connections_then_listens_again_on_the_same_port(make_sandbox):
    sb = make_sandbox(api_token=None)
    url, port = sb.url, sb.port
    key = json.loads(call(sb, "POST", LOGIN, {"username": sb.username, "password": sb.password}, token=None)[1])["key"]
    idle = connect(sb)
    idle.request("GET", ORDERS, headers={"Authorization": f"Token {key}"})
    assert idle.getresponse().read()
    requests_before = sb.request_count
    sb.outage(0.6)
    t0 = time.monotonic()
    assert sb.down and refused(port) and (sb.url, sb.port) == (url, port)
    # The open connection was closed too: the request or the response fails, whichever meets it first.
    with pytest.raises((ConnectionError, http.client.HTTPException)):  # noqa: PT012  (either call may be the one)
        idle.request("GET", ORDERS, headers={"Authorization": f"Token {key}"})
        idle.getresponse()
    while refused(port):
        assert time.monotonic() - t0 < 3
        time.sleep(0.02)
    assert time.monotonic() - t0 > 0.5 and not sb.down and sb.port == port
    r, body = call(sb, "GET", ORDERS, token=key)  # the same data, tokens and stats
    assert r.status == 200 and json.loads(body)["count"] == 37 and sb.request_count == requests_before + 1

    sb.outage(None)  # until resume()
    time.sleep(0.3)
    assert refused(port)
    sb.resume()
    assert call(sb, "GET", ORDERS, token=key)[0].status == 200
    sb.outage(None)
    sb.stop()  # stopping during an outage is fine
    assert refused(port)
