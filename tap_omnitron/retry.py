"""Retries that respect the server: `Retry-After`, small jittered backoff, one shared pause.

The SDK's default backoff (2, 4, 8, 16 s ...) turned a 237-order sync with about 15%
faults into a 90-second run. Transient faults from proxies are short, so retries start
at a fraction of a second. When the server asks for a pause (429, `Retry-After`), the
tap waits as long as asked; it sends every request from one thread (see `transport`), so
the pause holds back every request, not only the repeat of the one told.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_omnitron.errors import OmnitronError

logger = logging.getLogger("tap-omnitron")

TRANSIENT = (
    RetriableAPIError,
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
FIRST_DELAY = 0.25  # seconds
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 300.0  # a longer pause is a failure worth reporting, not a hang


class RetryPolicy:
    """Runs one request with bounded retries; gives up with one clear line."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries
        self.retries = 0  # counted for the benchmark and the tests
        self._paused_until = 0.0  # end of the last pause a server asked for (monotonic)

    def call(self, send: t.Callable[[], requests.Response], what: str) -> requests.Response:
        attempt = 0
        while True:
            try:
                return send()
            except TRANSIENT as exc:
                attempt += 1
                if attempt > self.max_retries:
                    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
                    msg = f"{what}: gave up after {tries}; last error: {describe(exc)}"
                    raise OmnitronError(msg) from None
                delay = self._delay(exc, attempt)
                self.retries += 1
                logger.warning(
                    "%s: %s; retry %d of %d in %.2fs",
                    what, describe(exc), attempt, self.max_retries, delay,
                )
                time.sleep(delay)

    def _delay(self, exc: Exception, attempt: int) -> float:
        hint = retry_after(exc)
        if hint is not None:
            if hint > MAX_RETRY_AFTER:
                msg = f"the server asked to wait {hint:.0f}s before retrying (Retry-After)"
                raise OmnitronError(msg)
            # A request sent before the last pause ended was refused for the reason that
            # caused it: that pause covers it (pauses of 429s in flight do not add up),
            # unless its own answer asks for longer.
            now = time.monotonic()
            sent = now - _age(exc)
            if sent < self._paused_until:
                end = max(self._paused_until, sent + hint)
            else:
                end = now + hint
            self._paused_until = max(self._paused_until, end)
            return max(0.0, end - now)
        # "Full jitter" exponential backoff: clients that failed together retry apart.
        return random.uniform(0, min(MAX_DELAY, FIRST_DELAY * 2 ** attempt))  # noqa: S311


def _age(exc: Exception) -> float:
    """Seconds since the failed request was sent (its answer may have waited unread)."""
    response = getattr(exc, "response", None)
    elapsed = getattr(response, "elapsed", None)
    return elapsed.total_seconds() if elapsed is not None else 0.0


def retry_after(exc: Exception) -> float | None:
    """Seconds from a `Retry-After` header, given as seconds or as an HTTP date."""
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
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


def describe(exc: Exception) -> str:
    """A short, secret-free description of a failed request."""
    response = getattr(exc, "response", None)
    if isinstance(exc, RetriableAPIError) and exc.args:
        return str(exc.args[0])
    if response is not None:
        return f"HTTP {response.status_code}"
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer in time ({name})"
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
        return f"connection failed or dropped ({name})"
    return name
