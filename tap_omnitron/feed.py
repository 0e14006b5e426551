"""The one object the three streams share: each page of orders, and their details in flight.

The orders stream publishes a page before it emits it; the SDK then syncs the child streams
once per page (a context `{"orders_page": n}`), and they read that page's orders here. The
details of a page are requested as soon as it is published, behind those of the page before,
in the bounded pool of threads (`max_concurrency`), and read in the order of the orders: the
output does not depend on the setting.

A detail that still fails after its retries, for a reason that is not the client's (a 5xx,
a body that is not the order, a dropped connection), is one broken order, not a broken run:
it is skipped and remembered (`skipped`), and the next run asks for it first. Many in a row
mean something systematic, and end the run as before.
"""

from __future__ import annotations

import logging
import typing as t
from collections import deque
from dataclasses import dataclass, field

from tap_omnitron.errors import GaveUp, OmnitronError

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future

    from tap_omnitron.api import Answer
    from tap_omnitron.streams import OrderDetailsStream

logger = logging.getLogger("tap-omnitron")

FAILED_IN_A_ROW = 3  # details failing one after the other: the server, not an order
RECENT = 20  # ... or more than half of the last this many failing, or answering 404


@dataclass
class _Page:
    orders: list[tuple[t.Any, list[dict]]]  # (order id, its items), the orders the run keeps
    details: deque[tuple[t.Any, Future[Answer]]] = field(default_factory=deque)  # requested, in order
    remembered: bool = False  # details earlier runs skipped: their failures say nothing new


@dataclass(frozen=True)
class Detail:
    """What became of one order's detail request: an answer (a 404 included), or an error."""

    order_id: t.Any
    answer: Answer | None
    error: str | None = None


class OrderFeed:
    """Pages of emitted orders for the child streams, with the detail requests they need."""

    def __init__(self, *, max_skipped: int) -> None:
        self.max_skipped = max_skipped
        self.skipped: dict[t.Any, str] = {}  # order id -> last error, asked for again next run
        self._pages: dict[int, _Page] = {}
        self._recent: deque[str] = deque(maxlen=RECENT)  # "ok", "gone" or "failed", the last ones

    def remember(self, order_ids: Iterable[t.Any]) -> None:
        """Details skipped by an earlier run, still to fetch."""
        self.skipped.update(dict.fromkeys(order_ids, "skipped by an earlier run"))

    def publish(self, number: int, orders: list[dict], *, details: OrderDetailsStream | None) -> None:
        """Page `number` will be emitted with these orders; start their detail requests, if
        the details stream is selected."""
        self._publish(number, [(order.get("id"), order.get("orderitem_set") or []) for order in orders], details)

    def publish_skipped(self, number: int, details: OrderDetailsStream) -> None:
        """A page of no orders, only the details earlier runs could not fetch."""
        self._publish(number, [(order_id, []) for order_id in self.skipped], details)
        self._pages[number].remembered = True

    def items(self, number: int) -> Iterator[tuple[t.Any, dict]]:
        """(order id, item) for every item of the page's orders."""
        for order_id, items in self._pages[number].orders:
            for item in items:
                yield order_id, item

    def details(self, number: int) -> Iterator[Detail]:
        """Each order's detail in the page's order; a 404 is an answer, a failure an error."""
        page = self._pages[number]
        while page.details:
            order_id, pending = page.details.popleft()
            try:
                detail = Detail(order_id, pending.result())
            except GaveUp as exc:  # this order's answer, not the run's
                detail = Detail(order_id, None, str(exc))
            self._account(detail, counts=not page.remembered)
            yield detail

    def retire(self, number: int) -> None:
        """The page is out, with its children: forget it (and drop requests nobody will read)."""
        page = self._pages.pop(number, None)
        for _, pending in page.details if page else ():
            pending.cancel()

    def _publish(self, number: int, orders: list[tuple[t.Any, list[dict]]], details: OrderDetailsStream | None) -> None:
        page = _Page(orders)
        self._pages[number] = page
        if details is not None:
            page.details.extend((order_id, details.request_detail(order_id)) for order_id, _ in orders)

    def _account(self, detail: Detail, *, counts: bool) -> None:
        """Remember a failed detail; end the run when failures are the rule, not the exception."""
        if detail.error is None:
            self.skipped.pop(detail.order_id, None)  # answered, or gone (404): not to ask again
        else:
            self.skipped[detail.order_id] = detail.error
        if not counts:
            return
        outcome = "failed" if detail.error else "ok" if t.cast("Answer", detail.answer).found else "gone"
        self._recent.append(outcome)
        recent = list(self._recent)
        if outcome == "gone" and (recent.count("gone") > RECENT // 2 or recent == ["gone"] * 5):
            msg = (
                f"{recent.count('gone')} of the last {len(recent)} order details answered 404 although "
                "their orders are listed: check that the API user may read orders_integration"
            )
            raise OmnitronError(msg)
        if outcome != "failed":
            return
        in_a_row = len(recent) - 1 - max((i for i, o in enumerate(recent) if o != "failed"), default=-1)
        if in_a_row >= FAILED_IN_A_ROW:
            raise OmnitronError(f"{detail.error}; {in_a_row} order details in a row failed")
        if recent.count("failed") > RECENT // 2:
            raise OmnitronError(f"{detail.error}; {recent.count('failed')} of the last {RECENT} order details failed")
        if len(self.skipped) > self.max_skipped:
            msg = (
                f"{len(self.skipped)} order details could not be fetched, more than max_skipped_details "
                f"({self.max_skipped}): something systematic is wrong; last error: {detail.error}"
            )
            raise OmnitronError(msg)
