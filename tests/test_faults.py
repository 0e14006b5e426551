"""Faults a scheduled pipeline meets: retried within bounds, or one clear error."""

from __future__ import annotations

import datetime
import email.utils
import time

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from conftest import config_for
from helpers import PRIMARY_KEYS, run_tap
from tap_omnitron.client import OmnitronStream
from tap_omnitron.errors import OmnitronError
from tap_omnitron.retry import RetryPolicy, retry_after
from tap_omnitron.tap import TapOmnitron

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


def fake_response(status: int, body: bytes, headers: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body  # noqa: SLF001
    response.headers.update(headers or {"Content-Type": "application/json"})
    response.url = "https://omnitron.example.com/api/i1/orders/?page=1"
    response.request = requests.Request("GET", response.url).prepare()
    return response


@pytest.fixture
def orders_stream() -> OmnitronStream:
    tap = TapOmnitron(
        config={"base_url": "https://omnitron.example.com", "api_token": "t0ken-value"},
        validate_config=False,
    )
    return tap.streams["orders"]


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
        (404, b'{"detail": "Not found."}', "GET /api/i1/orders/ answered 404 (not found)"),
    ],
)
def test_other_client_errors_quote_the_server(orders_stream, status, body, message) -> None:
    with pytest.raises(OmnitronError) as raised:
        orders_stream.validate_response(fake_response(status, body))
    assert message in str(raised.value)


def test_a_list_where_an_object_belongs_is_retried(orders_stream) -> None:
    with pytest.raises(RetriableAPIError, match="expected an object with a 'results' list"):
        orders_stream.validate_response(fake_response(200, b"[1, 2]"))


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    def with_header(value: str) -> RetriableAPIError:
        return RetriableAPIError("429", fake_response(429, b"{}", {"Retry-After": value}))

    assert retry_after(with_header("3")) == 3  # noqa: PLR2004
    assert retry_after(with_header("0.5")) == 0.5  # noqa: PLR2004
    in_two_seconds = email.utils.formatdate(time.time() + 2, usegmt=True)
    assert 0 < retry_after(with_header(in_two_seconds)) <= 2  # noqa: PLR2004
    assert retry_after(with_header("soon")) is None


def test_a_huge_retry_after_is_an_error_not_a_hang() -> None:
    policy = RetryPolicy(max_retries=3)
    response = fake_response(429, b"{}", {"Retry-After": "86400"})

    def send() -> requests.Response:
        raise RetriableAPIError("HTTP 429", response)

    with pytest.raises(OmnitronError, match="asked to wait 86400s"):
        policy.call(send, "GET /x/")


def test_a_server_quoting_the_token_back_does_not_leak_it(orders_stream) -> None:
    body = b'{"detail": "Token t0ken-value is not valid for this channel."}'
    with pytest.raises(OmnitronError) as raised:
        orders_stream.validate_response(fake_response(400, body))
    assert "t0ken-value" not in str(raised.value)
    assert "Token *** is not valid" in str(raised.value)


def test_a_429_in_flight_waits_for_the_pause_it_shares_or_longer_if_told() -> None:
    policy = RetryPolicy(max_retries=1)

    def throttled(retry_after: str, sent_ago: float) -> RetriableAPIError:
        response = fake_response(429, b"{}", {"Retry-After": retry_after})
        response.elapsed = datetime.timedelta(seconds=sent_ago)
        return RetriableAPIError("HTTP 429", response)

    def waited(error: RetriableAPIError) -> float:
        answers = iter([error])

        def send() -> requests.Response:
            if (failure := next(answers, None)) is not None:
                raise failure
            return fake_response(200, b"{}")

        started = time.monotonic()
        policy.call(send, "GET /x/")
        return time.monotonic() - started

    assert 0.3 <= waited(throttled("0.3", sent_ago=0)) < 0.6  # noqa: PLR2004  (the first pause)
    # Sent before that pause ended: it is covered, no second pause ...
    assert waited(throttled("0.3", sent_ago=0.5)) < 0.15  # noqa: PLR2004
    # ... unless its own answer asks for longer than the pause that covers it.
    assert waited(throttled("1.5", sent_ago=0.5)) >= 0.9  # noqa: PLR2004
