"""Fast tests of the local Omnitron sandbox itself (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from omnitron_sandbox import FAULT_KINDS, SECRET, Sandbox

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


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
    assert any("modified_date" in tx["order"] for d in (api.detail(o["id"]).json() for o in listed[:10])
               for tx in d["transaction_set"]), "nested relations keep their dates, as documented"
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
    assert bad.status_code == 400 and bad.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
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
            with pytest.raises(ValueError):
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
    api = make_api(on_list_page=lambda sb, page: seen.append(page), mutate_every_page={"create": 1})
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
        [sys.executable, "-m", "omnitron_sandbox", "--orders", "5", "--port", "0", "--port-file", str(port_file)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["url"].startswith("http://127.0.0.1:") and info["api_token"] == "sandbox-token"
        assert port_file.read_text().strip() == info["url"]
        r = requests.get(info["url"] + "/api/i1/orders/", headers={"Authorization": f"Token {info['api_token']}"},
                         timeout=5)
        assert r.json()["count"] == 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert not port_file.exists()
    finally:
        proc.kill()
        proc.wait()
