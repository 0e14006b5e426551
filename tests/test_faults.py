"""Faults a scheduled pipeline meets: retried within bounds, or one clear error."""

from __future__ import annotations

import email.utils
import time

import pytest

from conftest import config_for
from helpers import PRIMARY_KEYS, run_tap
from tap_omnitron.client import Answer, OmnitronClient, a_page
from tap_omnitron.errors import SECRETS, OmnitronError, TransientError
from tap_omnitron.pagination import PageNumbers
from tap_omnitron.retry import RetryPolicy, retry_after
from tap_omnitron.transport import HttpResponse

ALL_FAULTS = ["429", "500", "502", "503", "504", "drop", "html200", "truncated"]


def test_faulty_server_gives_exactly_the_clean_records(shaped_factory) -> None:
    clean = run_tap(config_for(shaped_factory(orders=237, seed=11), page_size=50))
    faulty_sandbox = shaped_factory(
        orders=237, seed=11, fault_rate=0.15, fault_kinds=ALL_FAULTS, retry_after=1
    )
    started = time.monotonic()
    faulty = run_tap(config_for(faulty_sandbox, page_size=50, max_retries=8))
    elapsed = time.monotonic() - started
    assert faulty.returncode == 0, faulty.stderr[-2000:]
    assert faulty_sandbox.faults_injected > 20  # noqa: PLR2004
    for stream, key in PRIMARY_KEYS.items():
        assert faulty.by_key(stream, key) == clean.by_key(stream, key), stream
    assert elapsed < 60  # noqa: PLR2004
    retries = faulty.stderr.count("; retry ")
    print(f"faults={faulty_sandbox.faults_injected} retries={retries} seconds={elapsed:.1f}")


@pytest.mark.parametrize(
    ("kind", "last_error"),
    [
        ("502", "last error: HTTP 502 Bad Gateway"),
        ("503", "last error: HTTP 503 Service Unavailable"),
        ("drop", "last error: connection failed or dropped"),
        ("html200", "last error: HTTP 200 with a body that is not valid JSON (text/html)"),
        ("truncated", "last error: HTTP 200 with a body that is not valid JSON"),
    ],
)
def test_persistent_fault_ends_in_one_clear_line(sandbox_factory, kind, last_error) -> None:
    sandbox = sandbox_factory(orders=5, fault_rate=1.0, fault_kinds=[kind])
    started = time.monotonic()
    run = run_tap(config_for(sandbox, max_retries=2))
    assert time.monotonic() - started < 15  # noqa: PLR2004
    assert run.returncode != 0
    assert len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    assert line.startswith("tap-omnitron: error: GET /api/i1/orders/: gave up after 3 attempts")
    assert last_error in line
    assert sandbox.request_count == 3  # noqa: PLR2004
    assert sandbox.api_token not in run.stderr
    assert not run.records("orders"), "nothing from a bad body may be emitted"


def answer(status: int, body: bytes, headers: dict | None = None, elapsed: float = 0.0) -> HttpResponse:
    """An HTTP answer as the transport hands it to the client."""
    return HttpResponse(status, "", headers or {"content-type": "application/json"}, body, elapsed)


@pytest.fixture
def client() -> OmnitronClient:
    return OmnitronClient({"base_url": "https://omnitron.example.com", "api_token": "t0ken-value"})


def check(client: OmnitronClient, response: HttpResponse) -> Answer:
    return client.check(response, "GET /api/i1/orders/", a_page)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'{"detail": "Bad filter."}', "answered HTTP 400: Bad filter."),
        (400, b'{"non_field_errors": ["Dates overlap."]}', "answered HTTP 400: Dates overlap."),
        (
            400,
            b'{"modified_date__gte": ["Enter a valid date/time."]}',
            "answered HTTP 400: modified_date__gte: Enter a valid date/time.",
        ),
        (403, b'{"detail": "You do not have permission."}', "HTTP 403: You do not have permission."),
    ],
)
def test_other_client_errors_quote_the_server(client, status, body, message) -> None:
    with pytest.raises(OmnitronError) as raised:
        check(client, answer(status, body))
    assert message in str(raised.value)


def test_a_404_is_left_to_the_caller_and_page_one_missing_is_an_error(client) -> None:
    missing = check(client, answer(404, b'{"detail": "Not found."}'))
    assert not missing.found
    with pytest.raises(OmnitronError, match=r"GET /api/i1/orders/ answered 404 \(not found\): check base_url"):
        PageNumbers().advance(missing)


def test_a_list_where_an_object_belongs_is_retried(client) -> None:
    with pytest.raises(TransientError, match="expected an object with a 'results' list"):
        check(client, answer(200, b"[1, 2]"))


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after("3") == 3  # noqa: PLR2004
    assert retry_after("0.5") == 0.5  # noqa: PLR2004
    in_two_seconds = email.utils.formatdate(time.time() + 2, usegmt=True)
    assert 0 < retry_after(in_two_seconds) <= 2  # noqa: PLR2004
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_a_huge_retry_after_is_an_error_not_a_hang(client) -> None:
    policy = RetryPolicy(max_retries=3)
    throttled = answer(429, b"{}", {"retry-after": "86400"})

    def send(_: int) -> Answer:
        return check(client, throttled)

    with pytest.raises(OmnitronError, match="asked to wait 86400s"):
        policy.call(send, "GET /x/")


def test_a_server_quoting_the_token_back_does_not_leak_it(client) -> None:
    body = b'{"detail": "Token t0ken-value is not valid for this channel."}'
    SECRETS.add("t0ken-value")  # as the tap does with its settings before any request
    with pytest.raises(OmnitronError) as raised:
        check(client, answer(400, body))
    assert "t0ken-value" not in str(raised.value)
    assert "Token *** is not valid" in str(raised.value)


def test_a_429_in_flight_waits_for_the_pause_it_shares_or_longer_if_told(client) -> None:
    policy = RetryPolicy(max_retries=1)

    def waited(retry_after: str, sent_ago: float) -> float:
        throttled = answer(429, b"{}", {"retry-after": retry_after}, elapsed=sent_ago)

        def send(attempt: int) -> Answer:
            return check(client, throttled if attempt == 0 else answer(200, b'{"results": []}'))

        started = time.monotonic()
        policy.call(send, "GET /x/")
        return time.monotonic() - started

    assert 0.3 <= waited("0.3", sent_ago=0) < 0.6  # noqa: PLR2004  (the first pause)
    # Sent before that pause ended: it is covered, no second pause ...
    assert waited("0.3", sent_ago=0.5) < 0.15  # noqa: PLR2004
    # ... unless its own answer asks for longer than the pause that covers it.
    assert waited("1.5", sent_ago=0.5) >= 0.9  # noqa: PLR2004
