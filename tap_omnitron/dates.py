"""Dates: ISO 8601 from settings and records, the server's clock, and bookmarks as UTC text.

Bookmarks are compared as text (by the SDK and by the tap), so every one is written in one
canonical form, `2024-01-31T07:00:00.123450Z`. pendulum reads what the standard library of
Python 3.10 cannot (`Z`, five fraction digits, dates alone); per record, the standard
library's parser is tried first, as it costs 0.3 µs where pendulum's costs 10.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import typing as t

import pendulum

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_A_DATE = re.compile(r"\d{4}-?\d{2}")  # ISO 8601 begins with the year and the month


def parse(value: t.Any) -> dt.datetime:
    """An ISO 8601 date or date-time, in UTC when it names no zone; ValueError otherwise
    (a time of day alone too: pendulum would make it today's, a different day every run)."""
    text = str(value).strip()
    if not _A_DATE.match(text):
        msg = f"not a date or date-time: {value!r}"
        raise ValueError(msg)
    try:
        moment = pendulum.parse(text, tz="UTC")
    except (pendulum.parsing.exceptions.ParserError, ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(moment, dt.datetime):  # a duration or a time of day
        msg = f"not a date or date-time: {value!r}"
        raise ValueError(msg)  # noqa: TRY004  (the contract: ValueError for whatever is no date)
    return moment


def canonical(value: t.Any) -> str | None:
    """Canonical UTC text for a timestamp; None for anything that is not one."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:  # RFC 3339 allows "z" as well as "Z"; Python 3.10's parser reads neither
            moment = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" else value)
        except ValueError:
            try:
                moment = parse(value)
            except ValueError:
                return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime(_FORMAT)


def from_http_date(value: str | None) -> str | None:
    """The canonical form of an HTTP `Date` header (RFC 9110), or None."""
    try:
        return canonical(email.utils.parsedate_to_datetime(value or ""))
    except (TypeError, ValueError):
        return None


def now() -> str:
    return t.cast("str", canonical(pendulum.now("UTC")))
