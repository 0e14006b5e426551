"""What a hostile or broken network can send, played by real servers and proxies on loopback.

Each test stands for a way the tap's own HTTP/1.1 client once went wrong: bytes forged after a
proxy's `CONNECT 200`, a status line with a non-ASCII digit, a login key with a line break, a
non-ASCII host, a server that drips its answer, a gzip bomb. The tap must never emit what such
a server forges, and must end a run it cannot complete with one line, not a traceback.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import config_for
from helpers import run_tap
from proxy import Proxy
from test_network import NO_PROXY_ENV, proxy_env

ORDERS = "/api/i1/orders/"
DETAIL = "/api/i1/orders_integration/{}/detailed_integration/"
FORGED_ID = 999_999


def forged_answer() -> bytes:
    """An HTTP answer listing one order that does not exist, as a forger would send it."""
    body = json.dumps({"count": 1, "next": None, "previous": None, "results": [{"id": FORGED_ID, "number": "F"}]})
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def forged(run) -> list[dict]:
    """Records of the forged order: the order, its items or its detail."""
    keys = ("id", "pk", "order")
    return [m for m in run.messages if m["type"] == "RECORD" and FORGED_ID in (m["record"].get(k) for k in keys)]


@pytest.fixture
def clean(sandbox_factory) -> dict:
    run = run_tap(config_for(sandbox_factory(orders=23)), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    return run.tables()


def assert_one_line(run, *parts: str) -> str:
    """The run failed with exactly one error line, containing `parts`, and no traceback."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert " ERROR " not in run.stderr, "the error line is the run's only one"
    for part in parts:
        assert part in run.error_lines[0]
    return run.error_lines[0]


# 1. A proxy (or whoever sits before it) forging an answer inside an https tunnel.


@pytest.mark.parametrize("delay", [0, 0.3], ids=["with-the-200", "after-the-200"])
def test_bytes_forged_after_connect_are_never_taken_for_an_answer(sandbox_factory, tls_files, clean, delay) -> None:
    """Sent with the 200, they are dropped with the CONNECT answer and the run goes on; sent
    after it, they break the TLS handshake, and the run ends with one line."""
    sandbox = sandbox_factory(orders=23, tls=tls_files)
    proxy = Proxy(inject_after_connect=forged_answer(), inject_delay=delay).start()
    try:
        env = proxy_env(https=proxy.url, REQUESTS_CA_BUNDLE=tls_files[0])
        run = run_tap(config_for(sandbox, max_retry_seconds=2), env=env)
    finally:
        proxy.stop()
    assert proxy.tunnels >= 1
    assert forged(run) == []
    if delay == 0:
        assert run.returncode == 0, run.stderr
        assert run.tables() == clean
    else:
        assert_one_line(run, "GET /api/i1/orders/: gave up after", "the TLS handshake failed")
        assert not run.records("orders")
        assert all("replication_key_value" not in json.dumps(state) for state in run.states)


def test_a_tunnel_answered_with_another_2xx_is_one_line(sandbox_factory, tls_files) -> None:
    """requests opens a tunnel on 200 only; a proxy answering 201 is named, not a traceback."""
    sandbox = sandbox_factory(orders=5, tls=tls_files)
    proxy = Proxy(connect_status=201).start()
    try:
        env = proxy_env(https=proxy.url, REQUESTS_CA_BUNDLE=tls_files[0])
        run = run_tap(config_for(sandbox, max_retry_seconds=1), env=env)
    finally:
        proxy.stop()
    assert_one_line(run, "the proxy refused the tunnel (HTTP 201)")


# 2. A malformed status line.


def test_a_status_line_with_a_non_ascii_digit_is_retried_not_a_traceback(sandbox_factory, clean) -> None:
    sandbox = sandbox_factory(orders=23)
    sandbox.hostile_plan = {ORDERS: ["bad_status"]}
    run = run_tap(config_for(sandbox), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert "Traceback" not in run.stderr
    retries = [line for line in run.stderr.splitlines() if "; retry " in line]
    assert len(retries) == 1
    assert "an answer that is not HTTP (a malformed status line)" in retries[0]


def test_a_detail_that_always_answers_a_malformed_status_line_is_skipped_and_remembered(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23)
    broken = sorted(sandbox.orders_snapshot())[6]
    sandbox.hostile_plan = {DETAIL.format(broken): ["bad_status"] * 10}
    run = run_tap(config_for(sandbox, max_retries=2), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.last_state["bookmarks"]["orders"]["skipped_details"] == [broken]
    assert set(run.by_key("order_details", "pk")) == set(sandbox.orders_snapshot()) - {broken}
    [line] = [line for line in run.stderr.splitlines() if f"Order {broken}: its detail is skipped" in line]
    assert "an answer that is not HTTP (a malformed status line)" in line


# 3. A login answer that would add headers of the server's choosing.


def test_a_login_key_with_a_line_break_never_becomes_a_header(sandbox_factory) -> None:
    key = "abc123\r\nX-Injected: 1"
    sandbox = sandbox_factory(orders=5, login_key=key)
    config = config_for(sandbox, username=sandbox.username, password=sandbox.password)
    del config["api_token"]
    run = run_tap(config, env=NO_PROXY_ENV)
    assert_one_line(run, "login failed: POST /api/i1/auth/login/ answered a key that is not a plain token")
    assert sandbox.requests_by_path == {"/api/i1/auth/login/": 1}, "nothing was sent with it"
    assert not any("X-Injected" in headers for headers in sandbox.headers_seen)
    assert "abc123" not in run.stdout + run.stderr


# 4. Internationalised host names.


@pytest.mark.parametrize(
    ("host", "idna"),
    [("bücher.example", "xn--bcher-kva.example"), ("пример.испытание", "xn--e1afmkfd.xn--80akhbyknj4f")],
    ids=["latin-1", "cyrillic"],
)
def test_a_non_ascii_host_goes_out_as_idna(sandbox_factory, clean, host, idna) -> None:
    """The proxy plays DNS: whatever host the tap names, it relays to the sandbox."""
    sandbox = sandbox_factory(orders=23)
    proxy = Proxy(upstream=("127.0.0.1", sandbox.port)).start()
    try:
        config = config_for(sandbox, base_url=f"http://{host}:{sandbox.port}")
        run = run_tap(config, env=proxy_env(http=proxy.url))
    finally:
        proxy.stop()
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert proxy.seen
    for _, target, host_header in proxy.seen:
        assert target.startswith(f"http://{idna}:{sandbox.port}/api/i1/")
        assert host_header == f"{idna}:{sandbox.port}"


def test_a_host_name_that_is_no_domain_name_is_one_line() -> None:
    run = run_tap({"base_url": "http://a..b\u00ad.example", "api_token": "t0ken-value"}, env=NO_PROXY_ENV)
    assert_one_line(run, "base_url's host name")


# 5. A server that drips its answer.


@pytest.mark.parametrize("kind", ["drip_body", "drip_head"])
def test_a_dripping_answer_is_abandoned_at_the_deadline_and_retried(sandbox_factory, clean, kind) -> None:
    sandbox = sandbox_factory(orders=23, drip_interval=0.2)
    detail = DETAIL.format(sorted(sandbox.orders_snapshot())[4])
    sandbox.hostile_plan = {detail: [kind]}
    started = time.monotonic()
    run = run_tap(config_for(sandbox, request_timeout=1.5, read_timeout=5), env=NO_PROXY_ENV)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    [retry] = [line for line in run.stderr.splitlines() if "; retry " in line]
    assert "no complete answer within request_timeout (1.5 s)" in retry
    assert elapsed < 15  # a detailed order dripped 5 bytes a second takes an hour


# 6. Bodies too large, and gzip the way real servers send it.


@pytest.mark.parametrize(
    ("limit", "rss_ceiling"), [(None, 130), (8, 75)], ids=["default-64MiB", "8MiB"]
)  # a clean run: ~52 MB
def test_a_gzip_bomb_costs_neither_memory_nor_a_traceback(sandbox_factory, limit, rss_ceiling) -> None:
    """200 KB that inflate to 200 MiB: read up to the cap, then the order's detail is skipped
    and remembered (the old client held all 200 MiB: 451 MB of RSS)."""
    sandbox = sandbox_factory(orders=23, bomb_mib=200)
    bomb = sorted(sandbox.orders_snapshot())[3]
    sandbox.hostile_plan = {DETAIL.format(bomb): ["gzip_bomb"]}
    settings = {"max_response_mb": limit} if limit else {}
    run = run_tap(config_for(sandbox, **settings), env=NO_PROXY_ENV, measure_memory=True)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.last_state["bookmarks"]["orders"]["skipped_details"] == [bomb]
    [line] = [line for line in run.stderr.splitlines() if f"Order {bomb}: its detail is skipped" in line]
    assert f"an answer larger than max_response_mb ({limit or 64} MiB) once decompressed" in line
    assert run.peak_rss_mb < rss_ceiling, run.peak_rss_mb
    assert sandbox.requests_by_path[DETAIL.format(bomb)] == 1, "not retried: it would be as large again"


def test_a_list_page_too_large_ends_the_run_in_one_line(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=5, bomb_mib=20)
    sandbox.hostile_plan = {ORDERS: ["gzip_bomb"]}
    run = run_tap(config_for(sandbox, max_response_mb=4), env=NO_PROXY_ENV)
    assert_one_line(run, "an answer larger than max_response_mb (4 MiB) once decompressed")


@pytest.mark.parametrize("kind", ["multi_gzip", "gzip_chunked"])
def test_gzip_in_several_members_or_in_chunks_is_read_whole(sandbox_factory, clean, kind) -> None:
    sandbox = sandbox_factory(orders=23)
    ids = sorted(sandbox.orders_snapshot())
    sandbox.hostile_plan = {ORDERS: [kind] * 20, **{DETAIL.format(i): [kind] for i in ids}}
    run = run_tap(config_for(sandbox), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert "; retry " not in run.stderr


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("truncated_close", "an answer that broke off before its end"),
        ("not_json", "HTTP 200 with a body that is not valid JSON (application/json)"),
        ("wrong_shape", "HTTP 200 with an unexpected body: expected an object with a 'results' list"),
    ],
)
def test_a_broken_list_page_is_retried_then_named_in_one_line(sandbox_factory, kind, said) -> None:
    sandbox = sandbox_factory(orders=5)
    sandbox.hostile_plan = {ORDERS: [kind] * 100}
    run = run_tap(config_for(sandbox, max_retries=2, max_retry_seconds=3), env=NO_PROXY_ENV)
    assert_one_line(run, "GET /api/i1/orders/: gave up after", said)
    assert not run.messages or all(m["type"] != "RECORD" for m in run.messages)
