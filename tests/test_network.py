"""The HTTP a company network needs: TLS with a private CA, proxies, keep-alive, gzip, pauses."""

from __future__ import annotations

import pytest

from conftest import config_for
from helpers import run_tap
from proxy import Proxy


def proxy_env(http: str = "", https: str = "", no_proxy: str = "", **more: str) -> dict[str, str]:
    """Proxy variables in both spellings (the lower-case one wins), nothing inherited."""
    values = {"http_proxy": http, "https_proxy": https, "no_proxy": no_proxy}
    return {**values, **{k.upper(): v for k, v in values.items()}, **more}


NO_PROXY_ENV = proxy_env()
DETAIL = "/api/i1/orders_integration/{}/detailed_integration/"


@pytest.fixture
def proxy():
    started = Proxy().start()
    yield started
    started.stop()


@pytest.fixture
def clean(sandbox_factory) -> dict:
    """What a plain sync of the standard test shop gives, to compare others against."""
    run = run_tap(config_for(sandbox_factory(orders=23)), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    return run.tables()


def test_https_with_a_private_ca(sandbox_factory, tls_files, clean) -> None:
    sandbox = sandbox_factory(orders=23, tls=tls_files)
    assert sandbox.url.startswith("https://")
    run = run_tap(config_for(sandbox), env=proxy_env(REQUESTS_CA_BUNDLE=tls_files[0]))
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean


def test_an_untrusted_certificate_is_one_clear_line_and_no_retries(sandbox_factory, tls_files) -> None:
    sandbox = sandbox_factory(orders=5, tls=tls_files)
    run = run_tap(config_for(sandbox), env=proxy_env(REQUESTS_CA_BUNDLE=""))
    assert run.returncode == 1
    assert run.error_lines == [
        (
            "tap-omnitron: error: GET /api/i1/orders/: the TLS certificate was not accepted (issued by "
            "an unknown CA); for a private CA, point the ca_bundle setting or REQUESTS_CA_BUNDLE to its certificate"
        )
    ]
    assert "ERROR" not in run.stderr
    assert "retry" not in run.stderr
    assert sandbox.request_count == 0
    assert not run.records("orders")


def test_the_ca_bundle_setting_trusts_a_private_ca(sandbox_factory, tls_files, clean) -> None:
    sandbox = sandbox_factory(orders=23, tls=tls_files)
    run = run_tap(config_for(sandbox, ca_bundle=tls_files[0]), env=proxy_env(REQUESTS_CA_BUNDLE=""))
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean


def test_a_certificate_for_another_host_is_not_a_ca_bundle_problem(sandbox_factory, tls_files) -> None:
    """The test certificate names 127.0.0.1 and localhost; reached as ::1 it names another host."""
    sandbox = sandbox_factory(orders=5, tls=tls_files, host="::1")
    run = run_tap(config_for(sandbox), env=proxy_env(REQUESTS_CA_BUNDLE=tls_files[0]))
    assert run.returncode == 1
    assert run.error_lines == [
        (
            "tap-omnitron: error: GET /api/i1/orders/: the TLS certificate is for another host name: "
            "check base_url (a CA bundle does not fix this)"
        )
    ]


def test_plain_http_through_a_proxy_that_wants_credentials(sandbox, proxy, clean) -> None:
    run = run_tap(config_for(sandbox), env=proxy_env(http=proxy.url))
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert proxy.forwarded == sandbox.request_count > 23  # all of them
    assert proxy.refused == 0
    assert proxy.password not in run.stdout + run.stderr


def test_https_through_a_proxy_tunnel(sandbox_factory, tls_files, proxy, clean) -> None:
    sandbox = sandbox_factory(orders=23, tls=tls_files)
    env = proxy_env(https=proxy.url, REQUESTS_CA_BUNDLE=tls_files[0])
    run = run_tap(config_for(sandbox, max_concurrency=4), env=env)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert 1 <= proxy.tunnels <= 4 + 4  # one per connection kept alive: details, and list pages beside them
    assert proxy.refused == 0


def test_no_proxy_is_honoured(sandbox, proxy) -> None:
    env = proxy_env(http=proxy.url, no_proxy="127.0.0.1")
    run = run_tap(config_for(sandbox), env=env)
    assert run.returncode == 0, run.stderr
    assert proxy.forwarded == proxy.tunnels == 0


def test_an_unsupported_proxy_is_named(sandbox) -> None:
    env = proxy_env(http="socks5://127.0.0.1:1080")
    run = run_tap(config_for(sandbox), env=env)
    assert run.returncode == 1
    assert run.error_lines == [
        (
            "tap-omnitron: error: only http:// and https:// proxies are supported "
            "(the environment names socks5://127.0.0.1)"
        )
    ]


def test_connections_are_kept_alive_and_pooled(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=60, latency_ms=2)
    run = run_tap(config_for(sandbox, max_concurrency=4, page_size=20), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    # 60 details; two probes and two passes of three pages over the list.
    assert sandbox.request_count == 60 + 2 + 2 * 3
    # Details, and list pages: one beside the details, up to four when a pass reads the list only.
    assert sandbox.connections_accepted <= 4 + 4


def test_connections_the_server_closes_are_replaced_quietly(sandbox_factory, clean) -> None:
    sandbox = sandbox_factory(orders=23, keepalive_requests=3)
    run = run_tap(config_for(sandbox, max_concurrency=4), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert "retry" not in run.stderr
    assert sandbox.connections_accepted >= sandbox.request_count // 3


def test_connections_closed_while_idle_are_replaced_quietly(sandbox_factory, clean) -> None:
    """nginx and load balancers close idle keep-alive connections without a word: here every
    connection idles through a one-second Retry-After pause and is closed meanwhile."""
    sandbox = sandbox_factory(orders=23, keepalive_timeout=0.2, retry_after=1)
    sandbox.fault_plan = {DETAIL.format(sorted(sandbox.orders_snapshot())[7]): ["429"]}
    run = run_tap(config_for(sandbox, max_concurrency=4), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean
    assert run.stderr.count("; retry ") == 1, "only the 429 was retried"
    assert sandbox.connections_accepted > 4 + 1  # the idle ones were replaced


def test_gzip_answers_give_the_same_records(sandbox_factory, clean) -> None:
    run = run_tap(config_for(sandbox_factory(orders=23, gzip=True)), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean


@pytest.mark.parametrize("max_concurrency", [1, 3, 8])
def test_max_concurrency_is_the_number_of_detail_requests_in_flight(sandbox_factory, max_concurrency) -> None:
    sandbox = sandbox_factory(orders=60, latency_ms=30)  # three pages: two page boundaries
    config = config_for(sandbox, max_concurrency=max_concurrency, page_size=20)
    run = run_tap(config, env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    # With more than one, the next list page is requested while details are in flight, and
    # the next pass's pages while the last details of a pass are.
    if max_concurrency == 1:
        assert sandbox.max_in_flight == 1
    else:
        assert max_concurrency + 1 <= sandbox.max_in_flight <= 2 * max_concurrency


def test_a_429_pauses_every_request_not_only_the_one_told(sandbox_factory) -> None:
    """The sync still has work for a second or more when the 429 comes (60 orders, 50 ms
    each): a tap that paused only the request told would send it during the pause."""
    latency = 0.05
    sandbox = sandbox_factory(orders=60, retry_after=2, log_requests=True, latency_ms=latency * 1000)
    told = DETAIL.format(sandbox.ground_truth()[11]["id"])
    sandbox.fault_plan = {told: ["429"]}
    run = run_tap(config_for(sandbox, max_concurrency=8, page_size=20), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    api = [(at, path.split("?")[0], status) for at, _, path, status in sandbox.request_log]
    throttled_at = next(at for at, path, status in api if path == told and status == 429)
    # Requests already on the wire when the 429 was sent are answered within one latency;
    # then nothing until the pause is over, and the order that was told is asked again after it.
    quiet = [p for at, p, _ in api if throttled_at + latency + 0.05 < at < throttled_at + 1.95]
    assert quiet == []
    assert api[-1][0] > throttled_at + 2 + latency, "work was left for after the pause"
    again = next(at for at, path, status in api if path == told and status == 200)
    assert again >= throttled_at + 2
    assert len(run.by_key("order_details", "pk")) == 60


def test_several_429s_in_flight_share_one_pause(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=20, retry_after=1, log_requests=True, latency_ms=100)  # all 8 in flight at once
    told = [DETAIL.format(order["id"]) for order in sandbox.ground_truth()[:8]]
    sandbox.fault_plan = {path: ["429"] for path in told}
    run = run_tap(config_for(sandbox, max_concurrency=8, page_size=20), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    api = [(at, path.split("?")[0], status) for at, _, path, status in sandbox.request_log]
    first_429 = min(at for at, _, status in api if status == 429)
    repeats = [at for at, path, status in api if path in told and status == 200]
    assert len(repeats) == len(told)
    assert min(repeats) >= first_429 + 1  # the pause was honoured ...
    assert max(repeats) < first_429 + 1.8  # ... once, not eight times
    assert len(run.by_key("order_details", "pk")) == 20


def test_a_redirect_is_one_clear_line_and_not_followed(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=5, redirect_to="https://omnitron.example.com")
    run = run_tap(config_for(sandbox), env=NO_PROXY_ENV)
    assert run.returncode == 1
    assert run.error_lines == [
        (
            "tap-omnitron: error: GET /api/i1/orders/ answered 301, moved to "
            "https://omnitron.example.com/api/i1/orders/: check base_url"
        )
    ]
    assert sandbox.request_count <= 3, "the first page and the two probes, none followed"


def test_an_ipv6_host(sandbox_factory, clean) -> None:
    sandbox = sandbox_factory(orders=23, host="::1")
    assert sandbox.url.startswith("http://[::1]:")
    run = run_tap(config_for(sandbox), env=NO_PROXY_ENV)
    assert run.returncode == 0, run.stderr
    assert run.tables() == clean


def test_a_proxy_url_that_cannot_be_parsed_does_not_show_its_password(sandbox) -> None:
    run = run_tap(config_for(sandbox), env=proxy_env(http="http://corp:s3cret#word@127.0.0.1:3128"))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "proxy URL in the environment cannot be parsed" in run.error_lines[0]
    assert "s3cret" not in run.stdout + run.stderr


def test_a_ca_bundle_that_cannot_be_read_is_named(sandbox_factory, tls_files, tmp_path) -> None:
    sandbox = sandbox_factory(orders=5, tls=tls_files)
    missing = str(tmp_path / "no-such-ca.pem")
    run = run_tap(config_for(sandbox), env=proxy_env(REQUESTS_CA_BUNDLE=missing))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert f"cannot read the CA certificates in {missing}" in run.error_lines[0]
    assert sandbox.request_count == 0
