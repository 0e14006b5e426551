"""The one object the three streams share: each page of orders, and their details in flight.

The orders stream publishes a page before it emits it; the SDK then syncs the child streams
once per page (a context `{"orders_page": n}`), and they read that page's orders here. The
details of a page are requested as soon as it is published, behind those of the page before,
up to `max_in_flight` at once, and read in the order of the orders: the output does not
depend on the setting.
"""

from __future__ import annotations

import typing as t
from collections import deque
from dataclasses import dataclass, field

from tap_omnitron.client import Answer, an_order, detail_path

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_omnitron.client import OmnitronClient, Pending


@dataclass
class _Page:
    orders: list[tuple[t.Any, list[dict]]]  # (order id, its items), the orders the run keeps
    details_left: int = 0  # detail answers not read yet
    wanted: list[t.Any] = field(default_factory=list)


class OrderFeed:
    """Pages of emitted orders for the child streams, with the detail requests they need."""

    def __init__(self, client: OmnitronClient) -> None:
        self.client = client
        self._pages: dict[int, _Page] = {}
        self._waiting: deque[t.Any] = deque()  # orders whose detail request is not sent yet
        self._in_flight: deque[tuple[t.Any, Pending]] = deque()

    def publish(self, number: int, orders: list[dict], *, details: bool) -> None:
        """Page `number` will be emitted with these orders; start their detail requests."""
        page = _Page([(order.get("id"), order.get("orderitem_set") or []) for order in orders])
        self._pages[number] = page
        if details:
            page.details_left = len(page.orders)
            self._waiting.extend(order_id for order_id, _ in page.orders)
            if self.client.max_in_flight > 1:  # else nothing runs ahead of the list
                self._start_more()

    def items(self, number: int) -> Iterator[tuple[t.Any, dict]]:
        """(order id, item) for every item of the page's orders."""
        for order_id, items in self._pages[number].orders:
            for item in items:
                yield order_id, item

    def details(self, number: int) -> Iterator[tuple[t.Any, Answer]]:
        """(order id, its answer) for each order of the page, in order; 404s included."""
        page = self._pages[number]
        while page.details_left:
            self._start_more()
            order_id, pending = self._in_flight.popleft()
            page.details_left -= 1
            answer = pending.answer()
            if self.client.max_in_flight > 1:
                self._start_more()  # a connection is free again: keep every one busy
            yield order_id, answer

    def retire(self, number: int) -> None:
        """The page is out, with its children: forget it."""
        self._pages.pop(number, None)

    def _start_more(self) -> None:
        while self._waiting and len(self._in_flight) < self.client.max_in_flight:
            order_id = self._waiting.popleft()
            self._in_flight.append((order_id, self.client.start(detail_path(order_id), shape=an_order)))
