"""dates in-process: what parses, in which zone, the canonical text whatever the machine's zone, and the
server's clock (`make mutation` runs these)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tap_omnitron import dates

UTC = dt.timezone.utc


@pytest.fixture
def machine_in_istanbul(monkeypatch):
    """The local zone three hours ahead of UTC (Omnitron's shops mostly are): a timestamp that took the
    machine's zone for UTC would be off by three hours."""
    monkeypatch.setenv("TZ", "Europe/Istanbul")
    time.tzset()
    assert time.localtime(0).tm_hour == 2  # 1970: UTC+2; the zone is really in force
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-01-31", dt.datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31T10:00:00", dt.datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("  2024-01-31T10:00:00+03:00\n", dt.datetime(2024, 1, 31, 7, tzinfo=UTC)),
        ("2024-01-31T10:00:00.12345Z", dt.datetime(2024, 1, 31, 10, 0, 0, 123450, tzinfo=UTC)),
    ],
)
def test_parse_reads_dates_and_date_times_naive_ones_as_utc(text: str, moment: dt.datetime) -> None:
    parsed = dates.parse(text)
    assert parsed == moment
    assert parsed.utcoffset() is not None, "an aware datetime: comparable with the bookmark"


def test_parse_reads_any_value_by_its_text() -> None:
    assert dates.parse(dt.date(2024, 1, 31)) == dt.datetime(2024, 1, 31, tzinfo=UTC)


def test_a_naive_date_time_is_utc_whatever_the_machines_zone(machine_in_istanbul) -> None:  # noqa: ARG001
    assert dates.parse("2024-01-31T10:00:00").utcoffset() == dt.timedelta(0)
    assert dates.canonical("2024-01-31T10:00:00") == "2024-01-31T10:00:00.000000Z"
    assert dates.canonical(dt.datetime(2024, 1, 31, 10)) == "2024-01-31T10:00:00.000000Z"  # noqa: DTZ001  (naive on purpose)
    assert dates.canonical("2024-01-31T10:00:00+03:00") == "2024-01-31T07:00:00.000000Z"
    assert dates.from_http_date("Wed, 31 Jan 2024 10:00:00 GMT") == "2024-01-31T10:00:00.000000Z"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("last tuesday", "not a date or date-time: 'last tuesday'"),
        ("", "not a date or date-time: ''"),
        ("None", "not a date or date-time: 'None'"),
        (None, "not a date or date-time: None"),
        (["2024-01-31"], "not a date or date-time: \\['2024-01-31'\\]"),
        ("2024-13-01", "\\[2024-13-01\\]"),  # a date's shape, read by pendulum, which names it too
    ],
)
def test_parse_refuses_what_is_no_date_and_names_it(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dates.parse(value)


@pytest.mark.parametrize("text", ["P1D", "10:00", "T10:00:00Z"])
def test_a_duration_or_a_time_of_day_is_no_date(text: str) -> None:
    """pendulum reads a time of day as today's: a start_date that meant a different day every run."""
    with pytest.raises(ValueError, match=f"not a date or date-time: '{text}'"):
        dates.parse(text)


def test_an_interval_is_no_date() -> None:
    """It begins like a date, and pendulum reads it, as two."""
    with pytest.raises(ValueError, match="not a date or date-time: '2024-01-31/2024-02-01'"):
        dates.parse("2024-01-31/2024-02-01")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-01-31T10:00:00.12", "2024-01-31T10:00:00.120000Z"),  # the last digit is not a zone
        ("2024-01-31T10:00:00X", None),  # nor is any letter but Z
    ],
)
def test_only_a_final_z_is_read_as_utc(text: str, canonical: str | None) -> None:
    assert dates.canonical(text) == canonical


def test_a_lower_case_z_is_utc_too() -> None:
    """RFC 3339 allows both; neither parser of Python 3.10 reads the lower-case one."""
    assert dates.canonical("2024-01-31T10:00:00z") == dates.canonical("2024-01-31T10:00:00Z")
    assert dates.canonical("2024-01-31T10:00:00z") == "2024-01-31T10:00:00.000000Z"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-031", "2024-01-31T00:00:00.000000Z"),  # an ordinal date: only pendulum reads it
        ("2024-01", "2024-01-01T00:00:00.000000Z"),
        ("2024-01-31T10:00:00Z", "2024-01-31T10:00:00.000000Z"),
        ("2024-01-31T10:00:00.5-02:30", "2024-01-31T12:30:00.500000Z"),
    ],
)
def test_canonical_reads_what_either_parser_reads(text: str, canonical: str) -> None:
    assert dates.canonical(text) == canonical


def test_canonical_of_an_aware_datetime_is_its_utc_text() -> None:
    moment = dt.datetime(2024, 1, 31, 10, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    assert dates.canonical(moment) == "2024-01-31T07:00:00.000000Z"


@pytest.mark.parametrize("value", [None, "", 1706695200, 17.5, True, ["2024-01-31"], {"at": "2024-01-31"}])
def test_canonical_is_none_for_what_is_no_timestamp(value: object) -> None:
    assert dates.canonical(value) is None


def test_canonical_texts_compare_as_the_moments_they_name() -> None:
    earlier = dates.canonical("2024-01-31T09:59:59.999999+00:00")
    later = dates.canonical("2024-01-31T13:00:00+03:00")
    assert earlier is not None and later is not None
    assert earlier < later


@pytest.mark.parametrize("header", [None, "", "soon", "Wed, 31 Jan 2024 25:00:00 GMT"])
def test_an_unusable_date_header_is_none(header: str | None) -> None:
    assert dates.from_http_date(header) is None


def test_now_is_the_current_utc_time_in_canonical_form() -> None:
    before = dt.datetime.now(UTC)
    now = dates.now()
    after = dt.datetime.now(UTC)
    assert now.endswith("Z")
    assert dates.canonical(now) == now
    assert before - dt.timedelta(seconds=1) <= dates.parse(now) <= after + dt.timedelta(seconds=1)
