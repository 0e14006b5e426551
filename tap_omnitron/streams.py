"""The three streams: orders, and the order items and order details of each order."""

from __future__ import annotations

import datetime
import email.utils
import typing as t
from collections import deque
from functools import cached_property
from urllib.parse import quote, urlencode

from tap_omnitron.client import OmnitronStream, _what, payload_of
from tap_omnitron.errors import NotFoundError
from tap_omnitron.listing import FUTURE, Listing, Pass, Plan, Resume, probe_params
from tap_omnitron.pagination import NextPagePaginator, page_number
from tap_omnitron.records import utc_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk.helpers.types import Context


class OrdersStream(OmnitronStream):
    """Orders, paged over the immutable `id` and filtered on `modified_date`.

    See `listing` for how the list is read without losing an order, and where the bookmark
    comes from (the server's clock at the start of the sync, never the records).
    """

    name = "orders"
    path = "/orders/"
    primary_keys = ("id",)
    replication_key = "modified_date"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_page: list[dict] = []  # the page whose children are being synced
        self._filter_since: str | None = None  # the sync's lower bound, fixed at its start

    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        params: dict[str, t.Any] = {
            "page": next_page_token or 1,
            "limit": self.config.get("page_size", 100),
            "sort": "id",
        }
        if self._filter_since:
            params["modified_date__gte"] = self._filter_since
        return params

    def get_new_paginator(self) -> NextPagePaginator:
        return NextPagePaginator(payload_of)

    def check_payload(self, payload: t.Any) -> str | None:  # noqa: ANN401
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            return "expected an object with a 'results' list"
        return None

    def tolerate_404(self, response: requests.Response) -> bool:
        """A later page may vanish when orders are deleted mid-sync: the paginator copes."""
        return page_number(response.url or "") > 1

    def get_replication_key_signpost(self, context: Context | None = None) -> None:  # noqa: ARG002
        """None: the bookmark is the server's clock at the start of the sync (see `listing`)."""
        return

    def get_records(self, context: Context | None) -> Iterator[dict]:
        resume = Resume.load(self.stream_state, self._since(context))
        plan = self._plan(resume, context)
        self._filter_since = plan.since
        listing = Listing(plan, resume, self.logger)
        for current in listing.passes():
            yield from self._read_pass(listing, current, context)
        Resume.clear(self.stream_state)
        if plan.bookmarkable:
            self.stream_state["replication_key"] = self.replication_key
            self.stream_state["replication_key_value"] = plan.signpost
        if listing.older:
            self.logger.info("Dropped %d orders older than the bookmark", listing.older)

    def _read_pass(self, listing: Listing, current: Pass, context: Context | None) -> Iterator[dict]:
        """One pass over the list: each page's new orders, then their children, then STATE."""
        responses = self.request_pages(context)
        ahead = self._next_page(responses, listing, current)
        page_no = 0
        while ahead is not None:
            body, page = ahead
            page_no += 1
            yield from page
            # The next page's detail requests queue up behind this page's: no idle connection.
            ahead = self._next_page(responses, listing, current)
            if page:
                self.current_page = page
                self._sync_children({"orders_page": page_no})
                self.current_page = []
            # Only now are this page's orders and all their children out: say so in STATE.
            listing.page_done(body, self.stream_state)
            self.state_manager.is_flushed = False
            self._write_state_message()

    def _next_page(
        self, responses: Iterator[requests.Response], listing: Listing, current: Pass
    ) -> tuple[dict, list[dict]] | None:
        """Read the next page and prepare its orders that are new to this sync."""
        response = next(responses, None)
        if response is None:
            return None
        body = payload_of(response)
        page = [self.prepare(record) for record in listing.select(current, body)]
        if page:
            for child in self.child_streams:
                child.page_ready(page)
        return body, page

    def _plan(self, resume: Resume, context: Context | None) -> Plan:
        """Ask the server whether it filters and sorts as asked, and what time it is."""
        probe, response = self._get(probe_params(sort="-id", since=FUTURE), context)
        server_filters = not probe["results"]
        carries_key = bool(probe["results"]) and "modified_date" in probe["results"][0]
        if resume.signpost is None:
            resume.signpost = self._server_clock(response)
        bookmarkable = server_filters or carries_key
        since = resume.since if bookmarkable else None
        top = probe
        if server_filters:  # the first order of the list this run reads, under sort=-id
            top, _ = self._get(probe_params(sort="-id", since=since), context)
        total = top.get("count") if isinstance(top.get("count"), int) else None
        if not bookmarkable:
            self.logger.warning(
                "The server ignores modified_date__gte and its orders carry no modified_date: "
                "every run reads all %s orders and sends a detail request for each%s; no "
                "bookmark is kept.",
                total if total is not None else "the", " (start_date cannot apply)"
                if self.config.get("start_date") else "",
            )
        elif not server_filters and since:
            self.logger.warning(
                "The server ignored modified_date__gte; older orders are dropped "
                "on the client side instead (every run lists all %s orders).",
                total if total is not None else "the",
            )
        top_id = top["results"][0].get("id") if top["results"] else None
        return Plan(since, resume.signpost, server_filters, bookmarkable, total, top_id)

    def _get(self, params: dict, context: Context | None) -> tuple[dict, requests.Response]:
        prepared = self.connection.get(f"{self.get_url(context)}?{urlencode(params)}")
        response = self.connection.retry.call(lambda: self._request(prepared, context), _what(prepared))
        return payload_of(response), response

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        """Children are synced once per page (see `get_records`), not once per order."""
        return ()

    def _since(self, context: Context | None) -> str | None:
        start = self.get_starting_timestamp(context)
        return utc_timestamp(start.isoformat()) if start else None

    def _server_clock(self, response: requests.Response) -> str:
        try:
            server_now = email.utils.parsedate_to_datetime(response.headers["Date"])
        except (KeyError, TypeError, ValueError):
            self.logger.warning("No usable Date header; the bookmark is capped by the local clock.")
            server_now = datetime.datetime.now(datetime.timezone.utc)
        return t.cast("str", utc_timestamp(server_now.isoformat()))

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """The bookmark never comes from records (they may not carry it): see `get_records`."""


class _OrderChild(OmnitronStream):
    """A stream synced once per page of orders, reading the page the parent holds.

    One bookmark for the whole stream (no per-order state) and no ACTIVATE_VERSION: a
    child sync covers one page, and a target must not take it for the whole table.
    """

    parent_stream_type = OrdersStream
    state_partitioning_keys: t.ClassVar[list[str]] = []

    @property
    def emit_activate_version_messages(self) -> bool:
        return False

    def page_ready(self, page: list[dict]) -> None:
        """Called with each page of orders before the parent emits it, in order."""

    def _write_schema_message(self) -> None:
        """Once per run, not once per page: the schema does not change between pages."""
        if not getattr(self, "_schema_written", False):
            super()._write_schema_message()
            self._schema_written = True

    @cached_property
    def orders(self) -> OrdersStream:
        return t.cast("OrdersStream", self._tap.streams[OrdersStream.name])


class OrderItemsStream(_OrderChild):
    """Items come nested in each order: no request of their own."""

    name = "order_items"
    path = None
    primary_keys = ("id",)

    def get_records(self, context: Context | None) -> Iterator[dict]:
        for order in self.orders.current_page:
            for item in order.get("orderitem_set") or []:
                yield {**item, "order": item.get("order") or order["id"]}


class OrderDetailsStream(_OrderChild):
    """One fully expanded order per request, `max_concurrency` requests in flight.

    Requests are started in the order of the orders and read in that order, so the output
    is the same whatever the setting. The next page's requests start while this page's
    answers are read, so the connections never wait for the orders to be written.
    """

    name = "order_details"
    path = "/orders_integration/{order_id}/detailed_integration/"
    primary_keys = ("pk",)
    # One request per order: a timing log line for each cost more CPU than its parsing.
    # Request counts are still logged once per page.
    _LOG_REQUEST_METRICS = False

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: deque[int] = deque()  # orders whose request is not sent yet
        self._in_flight: deque[t.Callable[[], requests.Response]] = deque()
        self._page_sizes: deque[int] = deque()  # orders per page, in order

    def check_payload(self, payload: t.Any) -> str | None:  # noqa: ANN401
        if not isinstance(payload, dict) or "pk" not in payload:
            return "expected an order object with a 'pk'"
        return None

    def page_ready(self, page: list[dict]) -> None:
        if self.selected:
            self._waiting.extend(order["id"] for order in page)
            self._page_sizes.append(len(page))
            if self.connection.max_in_flight > 1:  # else nothing runs ahead of the list
                self._start_more()

    def _start_more(self) -> None:
        while self._waiting and len(self._in_flight) < self.connection.max_in_flight:
            order_id = quote(str(self._waiting.popleft()), safe="")
            request = self.connection.get(self.url_base + self.path.format(order_id=order_id))
            self._in_flight.append(self.start_request(request, None))

    def get_records(self, context: Context | None) -> Iterator[dict]:
        with self.get_http_request_counter() as counter:
            for _ in range(self._page_sizes.popleft()):
                self._start_more()
                response = self._in_flight.popleft()
                try:
                    detail = payload_of(response())
                except NotFoundError as exc:
                    self.logger.warning("Skipping an order that is gone: %s", exc)
                    detail = None
                if self.connection.max_in_flight > 1:
                    self._start_more()  # a connection is free again: keep every one busy
                counter.increment()
                if detail is not None:
                    yield self.prepare(detail)
