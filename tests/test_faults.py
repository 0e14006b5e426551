"""Faults a scheduled pipeline meets: retried within bounds, or one clear error."""

from __future__ import annotations

import email.utils
import re
import time

import pytest
import requests

from conftest import config_for
from helpers import PRIMARY_KEYS, run_tap
from tap_omnitron.api import Answer, a_page, read
from tap_omnitron.errors import SECRETS, GaveUp, OmnitronError
from tap_omnitron.pagination import PageNumbers
from tap_omnitron.retry import Away, Broken, Pause, RetryPolicy, retry_after

pytestmark = pytest.mark.scenario  # see pyproject.toml's markers

ALL_FAULTS = ["429", "500", "502", "503", "504", "drop", "html200", "truncated"]


def test_faulty_server_gives_exactly_the_clean_records(shaped_factory) -> None:
    clean = run_tap(config_for(shaped_factory(orders=237, seed=11), page_size=50))
    faulty_sandbox = shaped_factory(orders=237, seed=11, fault_rate=0.15, fault_kinds=ALL_FAULTS, retry_after=1)
    started = time.monotonic()
    faulty = run_tap(config_for(faulty_sandbox, page_size=50, max_retries=8))
    elapsed = time.monotonic() - started
    assert faulty.returncode == 0, faulty.stderr[-2000:]
    assert faulty_sandbox.faults_injected > 20
    for stream, key in PRIMARY_KEYS.items():
        assert faulty.by_key(stream, key) == clean.by_key(stream, key), stream
    assert elapsed < 60
    retries = faulty.stderr.count("; retry ")
    print(f"faults={faulty_sandbox.faults_injected} retries={retries} seconds={elapsed:.1f}")


@pytest.mark.parametrize(
    ("kind", "last_error"),
    [
        ("500", "last error: HTTP 500 Internal Server Error"),
        ("html200", "last error: HTTP 200 with a body that is not valid JSON (text/html)"),
        ("truncated", "last error: HTTP 200 with a body that is not valid JSON"),
    ],
)
def test_a_persistently_broken_answer_ends_in_one_clear_line(sandbox_factory, kind, last_error) -> None:
    """The answer's fault: `max_retries` retries, then one line, whatever the time budget."""
    sandbox = sandbox_factory(orders=5, fault_rate=1.0, fault_kinds=[kind])
    started = time.monotonic()
    run = run_tap(config_for(sandbox, max_retries=2))
    assert time.monotonic() - started < 15
    assert run.returncode != 0
    assert len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    assert line.startswith("tap-omnitron: error: GET /api/i1/orders/: gave up after 3 attempts in ")
    assert last_error in line
    assert sandbox.request_count <= 3 * 3  # the first page and the two probes, three times each
    assert sandbox.api_token not in run.stderr
    assert "Traceback" not in run.stderr
    assert not run.records("orders"), "nothing from a bad body may be emitted"


@pytest.mark.parametrize(
    ("kind", "last_error"),
    [
        ("502", "last error: HTTP 502 Bad Gateway"),
        ("503", "last error: HTTP 503 Service Unavailable"),
        ("drop", "last error: the server closed the connection without an answer"),
    ],
)
def test_a_server_away_for_longer_than_max_retry_seconds_ends_in_one_clear_line(
    sandbox_factory, kind, last_error
) -> None:
    """An outage is retried in time, not in count: `max_retries` does not stop it early."""
    sandbox = sandbox_factory(orders=5, fault_rate=1.0, fault_kinds=[kind])
    started = time.monotonic()
    run = run_tap(config_for(sandbox, max_retries=1, max_retry_seconds=3))
    elapsed = time.monotonic() - started
    assert 2 < elapsed < 15
    assert run.returncode != 0
    assert len(run.error_lines) == 1, run.stderr
    assert re.match(
        r"tap-omnitron: error: GET /api/i1/orders/: gave up after \d+ attempts in [23] s;", run.error_lines[0]
    )
    assert last_error in run.error_lines[0]
    assert sandbox.request_count > 2  # more than max_retries allows
    assert "Traceback" not in run.stderr


def response(status: int, body: bytes, headers: dict | None = None) -> requests.Response:
    """An HTTP answer as requests hands it to the tap."""
    answer = requests.Response()
    answer.status_code = status
    answer._content = body  # requests' own field for a body read in full
    answer.headers.update(headers or {"Content-Type": "application/json"})
    answer.url = "https://omnitron.example.com/api/i1/orders/"
    return answer


def read_page(answer: requests.Response) -> Answer:
    return read(answer, "GET /api/i1/orders/", a_page)


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
def test_other_client_errors_quote_the_server(status, body, message) -> None:
    with pytest.raises(OmnitronError) as raised:
        read_page(response(status, body))
    assert message in str(raised.value)


def test_a_404_is_left_to_the_caller_and_page_one_missing_is_an_error() -> None:
    missing = read_page(response(404, b'{"detail": "Not found."}'))
    assert not missing.found
    with pytest.raises(OmnitronError, match=r"GET /api/i1/orders/ answered 404 \(not found\): check base_url"):
        PageNumbers().advance(missing)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[1, 2]", "expected an object with a 'results' list"),
        (b'{"results": [1, 2]}', "expected a 'results' list of objects"),
        (b'{"results": []', "not valid JSON"),
    ],
)
def test_a_body_of_the_wrong_shape_is_broken_and_retried(body, problem) -> None:
    with pytest.raises(Broken, match=re.escape(problem)):
        read_page(response(200, body))


def test_a_server_message_is_quoted_on_one_printable_line() -> None:
    body = b'{"detail": "line one\\r\\nX-Injected: 1\\u001b[31m"}'
    with pytest.raises(OmnitronError) as raised:
        read_page(response(400, body))
    assert "\r" not in str(raised.value)
    assert "\x1b" not in str(raised.value)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after("3") == 3
    assert retry_after("0.5") == 0.5
    in_two_seconds = email.utils.formatdate(time.time() + 2, usegmt=True)
    assert 0 < retry_after(in_two_seconds) <= 2
    assert retry_after("soon") is None
    assert retry_after("nan") is None
    assert retry_after(None) is None


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once() -> None:
    policy = RetryPolicy(max_retries=3, max_seconds=60)

    def throttled() -> None:
        raise Away("HTTP 429 Too Many Requests", retry_after=86400)

    started = time.monotonic()
    with pytest.raises(GaveUp, match="the server asked to wait 86400 s, beyond max_retry_seconds"):
        policy.decorate(throttled, lambda: "GET /x/")()
    assert time.monotonic() - started < 1


def test_a_server_quoting_the_token_back_does_not_leak_it() -> None:
    body = b'{"detail": "Token t0ken-value is not valid for this channel."}'
    SECRETS.add("t0ken-value")  # as the tap does with its settings before any request
    with pytest.raises(OmnitronError) as raised:
        read_page(response(400, body))
    assert "t0ken-value" not in str(raised.value)
    assert "Token *** is not valid" in str(raised.value)


def test_pauses_in_flight_share_one_window_unless_one_asks_for_longer() -> None:
    pause = Pause()
    assert 0.29 < pause.extend(0.3) < 0.31  # the first pause
    # Asked again while it runs: no second pause on top of it ...
    assert pause.extend(0.1) < 0.31
    # ... unless the answer asks for longer than what is left.
    assert 0.9 < pause.extend(1.0) < 1.01
    assert 0.99 < pause.total <= 1.01  # seconds paused, counted once
