"""When a request is sent again, and for how long: the one place that says so.

Two kinds of failure are retried, and they are told apart because they end differently:

* **the server is away**: refused or dropped connections, timeouts, a 429, 502, 503 or
  504. Deploys, load-balancer restarts and network blips last minutes, so these are
  retried for up to `max_retry_seconds` (15 minutes by default), with jittered backoff
  that grows to 30 s and every `Retry-After` honoured;
* **the answer is broken**: a 500, an answer that is not HTTP, or a 200 whose body is not
  what was asked for. A
  serializer that trips over one order answers so every time, so these get `max_retries`
  retries; then the request gives up (a detail is skipped and remembered, see `feed`).

An away-failure also gives up after `max_retries` retries when the server has answered
other requests since it started failing: then the fault is this request's, not an outage.
A `Retry-After` pauses every thread (`Pause`), not only the one that was told.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_omnitron.errors import GaveUp, describe, is_certificate_problem, is_malformed

if t.TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger("tap-omnitron")

AWAY_STATUSES = frozenset({429, 502, 503, 504})
FIRST_DELAY = 0.5  # seconds: the first backoff is up to this long
MAX_DELAY = 30.0  # ... and no backoff longer than this, so a healed server is found soon

_T = t.TypeVar("_T")
_WHY = "omnitron_why"  # on a failure the policy gave up on early: the reason, for the message


class Away(RetriableAPIError):
    """The server is unavailable or asked to wait; `retry_after` is its Retry-After, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Broken(RetriableAPIError):
    """An answer that is not what was asked for: a 500, or a body that is not the JSON expected."""


class Relogin(RetriableAPIError):
    """A 401 after which the authenticator logged in again: repeat at once, with the new key."""


# Exceptions that mean "try again": our own, and requests' for a network that failed.
RETRIED: tuple[type[Exception], ...] = (
    RetriableAPIError,
    requests.exceptions.ConnectionError,  # refused, reset, dropped; TLS and proxy failures
    requests.exceptions.Timeout,  # connect, read and `session.DeadlineExceeded`
    requests.exceptions.ChunkedEncodingError,  # a body cut short
    requests.exceptions.ContentDecodingError,
)


class Pause:
    """One pause for every thread: requests wait until the latest `Retry-After` has run."""

    def __init__(self) -> None:
        self._until = 0.0  # monotonic
        self._lock = threading.Lock()
        self.total = 0.0  # seconds paused, overlapping pauses counted once: for the summary
        self._ended = threading.Event()

    def extend(self, seconds: float) -> float:
        """Pause everyone `seconds` from now (unless a pause already runs longer); returns
        how long the caller has to wait."""
        now = time.monotonic()
        with self._lock:
            end = max(self._until, now + seconds)
            self.total += end - max(self._until, now)
            self._until = end
        return end - now

    def wait(self) -> None:
        while (left := self._until - time.monotonic()) > 0 and not self._ended.wait(left):
            pass

    def end(self) -> None:
        """The run is ending: no thread waits any longer."""
        self._ended.set()


class RetryPolicy:
    """The retry rules of the module docstring, as a decorator for any request."""

    def __init__(self, *, max_retries: int, max_seconds: float) -> None:
        self.max_retries = max_retries
        self.max_seconds = max_seconds
        self.pause = Pause()
        self.retries = 0  # for the run's summary
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._last_answer = 0.0  # monotonic: the server last answered a request properly

    def stop(self) -> None:
        """The run is ending: requests waiting to be retried give up now, not when their
        time runs out (the process would wait for them)."""
        self._stopped.set()
        self.pause.end()

    def answered(self) -> None:
        """The server answered a request as asked: it is up."""
        self._last_answer = time.monotonic()

    def decorate(self, func: Callable[..., _T], what: Callable[..., str]) -> Callable[..., _T]:
        """`func`, repeated under these rules; gives up with one `GaveUp` line.

        `what(*args)` names the request for messages ("GET /api/i1/orders/").
        """

        def call(*args: t.Any, **kwargs: t.Any) -> _T:
            started = failed_before = time.monotonic()
            attempts = 0
            while True:
                attempts += 1
                try:
                    return func(*args, **kwargs)
                except RETRIED as failure:
                    if is_certificate_problem(failure):  # no retry changes a certificate
                        raise GaveUp(f"{what(*args)}: {describe(failure)}") from None
                    delay = self._delay(failure, attempts, started, failed_before)
                    if delay is None:
                        raise GaveUp(self._gave_up(what(*args), attempts, started, failure)) from None
                    with self._lock:
                        self.retries += 1
                    logger.warning("%s: %s; retry %d in %.1f s", what(*args), describe(failure), attempts, delay)
                except requests.exceptions.RequestException as exc:  # not worth a retry (too large)
                    raise GaveUp(f"{what(*args)}: {describe(exc)}") from None
                failed_before = time.monotonic()
                if self._stopped.wait(delay):
                    raise GaveUp(f"{what(*args)}: not retried, the run is ending")

        return call

    @staticmethod
    def _gave_up(what: str, attempts: int, started: float, failure: BaseException) -> str:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        spent = time.monotonic() - started
        why = getattr(failure, _WHY, "")
        return f"{what}: gave up after {tries} in {spent:.0f} s{why}; last error: {describe(failure)}"

    def _delay(self, failure: BaseException, number: int, started: float, failed_before: float) -> float | None:
        """Seconds to wait before attempt `number` + 1, or None to give up."""
        if isinstance(failure, Relogin):
            return 0.0
        beyond_count = number > self.max_retries
        answered_others = self._last_answer > failed_before  # since this request last failed
        if beyond_count and (isinstance(failure, Broken) or is_malformed(failure) or answered_others):
            return None  # the answer's fault, or this request's: not an outage
        left = self.max_seconds - (time.monotonic() - started)
        if left <= 0:
            return None
        hint = failure.retry_after if isinstance(failure, Away) else None
        if hint is not None:
            if hint > left:
                setattr(failure, _WHY, f" (the server asked to wait {hint:.0f} s, beyond max_retry_seconds)")
                return None
            return self.pause.extend(hint)
        delay = random.uniform(0, min(MAX_DELAY, FIRST_DELAY * 2 ** (number - 1)))  # noqa: S311  (jitter, not cryptography)
        return min(delay, left)  # the last attempt at the end of the budget


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header, given as seconds or as an HTTP date; None if neither."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds else None  # noqa: PLR0124  (only NaN is not equal to itself)
