"""Lines for people watching a run: where it starts, how far it is, and what it did.

The SDK's METRIC lines stay for machines. These say, in words: the bookmark and resume point
a run starts from; every 10 seconds at most, orders done out of the total the list reports,
the rate and the time left; and one closing line with what was emitted and what it cost.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections import Counter

logger = logging.getLogger("tap-omnitron")

EVERY = 10.0  # seconds between progress lines, at most one per page


class Progress:
    """Counts of one run, and the lines that report them."""

    def __init__(self, *, every: float = EVERY) -> None:
        self.every = every
        self.records: Counter[str] = Counter()  # records emitted (in RECORD or BATCH messages), per stream
        self.gone = 0  # detail requests answered 404: the order was deleted
        self.total: int | None = None  # orders the list reports for this run
        self._started = time.monotonic()
        self._said = self._started

    def start(self, *, bookmark: str | None, resume_after: int | None, total: int | None) -> None:
        self.total = total
        self._started = self._said = time.monotonic()
        where = f"orders modified since {bookmark}" if bookmark else "every order (no bookmark)"
        if resume_after:
            where += f", resuming an interrupted run after order {resume_after}"
        listed = f"; the list reports {total:,} orders" if total is not None else ""
        logger.info("Starting: %s%s.", where, listed)

    def page_done(self, orders: int) -> None:
        """Say how far the run is, if the last line is old enough."""
        now = time.monotonic()
        if now - self._said < self.every:
            return
        self._said = now
        elapsed = max(now - self._started, 1e-9)
        rate = orders / elapsed
        if self.total:
            left = max(self.total - orders, 0)
            eta = f", about {_duration(left / rate)} left" if rate else ""
            share = min(orders / self.total, 1.0)
            logger.info(
                "Progress: %s of %s orders (%.0f%%), %.0f orders/s%s.",
                f"{orders:,}",
                f"{self.total:,}",
                share * 100,
                rate,
                eta,
            )
        else:
            logger.info("Progress: %s orders, %.0f orders/s.", f"{orders:,}", rate)

    def summary(  # noqa: PLR0913  (keyword-only: the numbers of the summary line)
        self,
        *,
        reason: str,
        requests: int,
        retries: int,
        paused: float,
        skipped: int,
        bookmark: t.Any,
    ) -> str:
        """One line for people, whose numbers are also fields of the log record (`run_summary`
        in the SDK's structured logging) for schedulers and log pipelines."""
        records = self.records
        seconds = time.monotonic() - self._started
        fields = {
            "orders": records["orders"],
            "order_items": records["order_items"],
            "order_details": records["order_details"],
            "skipped_details": skipped,
            "gone_details": self.gone,
            "requests": requests,
            "retries": retries,
            "seconds_paused": round(paused, 1),
            "seconds": round(seconds, 1),
            "exit_reason": reason,
            "bookmark": bookmark,
        }
        line = (
            f"{'Finished' if reason == 'finished' else 'Stopped'} in {_duration(seconds)}: "
            f"{records['orders']:,} orders, {records['order_items']:,} order items, "
            f"{records['order_details']:,} order details; {requests:,} requests, "
            f"{retries:,} retries, {paused:.1f} s waiting on Retry-After, "
            f"{self.gone:,} details skipped as gone (404), {skipped:,} skipped after errors "
            f"(asked for again next run); bookmark {bookmark or 'none'}."
        )
        logger.info(line, extra={"run_summary": fields})
        return line


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:  # noqa: PLR2004  (seconds in a minute)
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:  # noqa: PLR2004  (minutes in an hour)
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
