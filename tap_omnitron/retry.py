"""Retries that respect the server: `Retry-After`, small jittered backoff, one shared pause.

Transient faults from proxies are short, so retries start at a fraction of a second (the
SDK's default of 2, 4, 8, 16 s turned a 237-order sync with about 15% faults into a 90-second
run). When the server asks for a pause (429, `Retry-After`), the tap waits as long as asked;
every request is sent from one thread (see `transport`), so the pause holds back every
request, not only the repeat of the one told.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
import typing as t

from tap_omnitron.errors import GaveUp, OmnitronError, TransientError

logger = logging.getLogger("tap-omnitron")

FIRST_DELAY = 0.25  # seconds
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 300.0  # a longer pause is a failure worth reporting, not a hang

_T = t.TypeVar("_T")


class RetryPolicy:
    """Runs one request with bounded retries; gives up with one clear line."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries
        self.retries = 0  # counted for the run's summary
        self.paused = 0.0  # seconds spent waiting because a server said so (Retry-After)
        self._paused_until = 0.0  # end of the last pause a server asked for (monotonic)

    def call(self, attempt: t.Callable[[int], _T], what: str) -> _T:
        """`attempt(n)` for n = 0, 1, ... until it stops raising `TransientError`."""
        number = 0
        while True:
            try:
                return attempt(number)
            except TransientError as exc:
                number += 1
                if number > self.max_retries:
                    tries = "1 attempt" if number == 1 else f"{number} attempts"
                    msg = f"{what}: gave up after {tries}; last error: {exc}"
                    raise GaveUp(msg) from None
                delay = self._delay(exc, number)
                self.retries += 1
                logger.warning(
                    "%s: %s; retry %d of %d in %.2fs", what, exc, number, self.max_retries, delay
                )
                time.sleep(delay)

    def _delay(self, exc: TransientError, attempt: int) -> float:
        hint = exc.retry_after
        if hint is not None:
            if hint > MAX_RETRY_AFTER:
                msg = f"the server asked to wait {hint:.0f}s before retrying (Retry-After)"
                raise OmnitronError(msg)
            # A request sent before the last pause ended was refused for the reason that
            # caused it: that pause covers it (pauses of 429s in flight do not add up),
            # unless its own answer asks for longer.
            now = time.monotonic()
            sent = now - exc.age
            end = max(self._paused_until, sent + hint) if sent < self._paused_until else now + hint
            self._paused_until = max(self._paused_until, end)
            delay = max(0.0, end - now)
            self.paused += delay
            return delay
        # "Full jitter" exponential backoff: clients that failed together retry apart.
        return random.uniform(0, min(MAX_DELAY, FIRST_DELAY * 2 ** attempt))  # noqa: S311


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header, given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
