"""The three streams: orders, and the order items and order details of each order."""

from __future__ import annotations

import datetime
import email.utils
import logging
import typing as t
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import quote

from tap_omnitron.client import OmnitronStream, payload_of
from tap_omnitron.errors import NotFoundError
from tap_omnitron.pagination import NextPagePaginator, ShrinkWatch, page_number
from tap_omnitron.records import utc_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk.helpers.types import Context


@dataclass
class Resume:
    """Where an interrupted sync of orders can pick up: kept in the orders' STATE.

    Pages are read in `id` order under a fixed filter (`since`), so "every order up to
    `after_id` was emitted with its children" is a fact a later run can rely on: it
    pages from the start again but skips those orders, and their detail requests. It
    keeps the first run's `signpost`, so the bookmark it leaves is no later than that.
    """

    KEY: t.ClassVar[str] = "resume"
    since: str | None
    signpost: str | None = None
    after_id: int = 0
    _watch: ShrinkWatch = field(default_factory=ShrinkWatch)
    _sorted: bool = True

    @classmethod
    def load(cls, stream_state: dict, since: str | None) -> Resume:
        saved = stream_state.get(cls.KEY)
        if isinstance(saved, dict) and isinstance(saved.get("after_id"), int):
            return cls(saved.get("since"), saved.get("signpost"), saved["after_id"])
        return cls(since)

    def done(self, order_id: t.Any) -> bool:  # noqa: ANN401
        return isinstance(order_id, int) and order_id <= self.after_id

    def advance(self, body: dict, logger: logging.Logger) -> None:
        """Move `after_id` to the end of a page, unless the page may have skipped rows.

        After deletions (`count` dropped) the paginator re-reads the previous page; the
        rows it finds there are not covered until then.
        """
        ids = [r.get("id") for r in body.get("results", []) if isinstance(r.get("id"), int)]
        shrank = self._watch.shrank(body)
        if ids != sorted(ids) and self._sorted:
            self._sorted = False
            logger.warning("The server ignored sort=id: an interrupted sync restarts from scratch.")
        if self._sorted and ids and not shrank:
            self.after_id = max(self.after_id, ids[-1])

    def save(self, stream_state: dict) -> None:
        if self._sorted:
            saved = {"since": self.since, "signpost": self.signpost, "after_id": self.after_id}
            stream_state[self.KEY] = saved

    @classmethod
    def clear(cls, stream_state: dict) -> None:
        stream_state.pop(cls.KEY, None)


class OrdersStream(OmnitronStream):
    """Orders, paged over the immutable `id` and filtered on `modified_date`.

    Paging by `sort=id` with a fixed filter means an order modified during the sync keeps
    its place, and a new order lands after the last page: nothing shifts into a page
    already read. The bookmark never passes the server's clock at the start of the sync
    (its `Date` header), so whatever changed while the sync ran is read again next time.
    """

    name = "orders"
    path = "/orders/"
    primary_keys = ("id",)
    replication_key = "modified_date"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_page: list[dict] = []  # the page whose children are being synced
        self._warned_filter = False
        self._clamped = False
        self._older = 0
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

    def get_records(self, context: Context | None) -> Iterator[dict]:
        resume = Resume.load(self.stream_state, self._since(context))
        self._filter_since = resume.since
        # The SDK warns that unsorted streams cannot resume; this one can, through Resume.
        self.stream_state.setdefault(
            "progress_markers", {"Note": "Bookmark pending; an interruption resumes from 'resume'."}
        )
        responses = self.request_pages(context)
        ahead = self._next_page(responses, resume, context)
        number = 0
        while ahead is not None:
            body, page = ahead
            number += 1
            yield from page
            # The next page's detail requests queue up behind this page's: no idle connection.
            ahead = self._next_page(responses, resume, context)
            if page:
                self.current_page = page
                self._sync_children({"orders_page": number})
                self.current_page = []
            # Only now are this page's orders and all their children out: say so in STATE.
            resume.advance(body, self.logger)
            resume.save(self.stream_state)
            self.state_manager.is_flushed = False
            self._write_state_message()
        Resume.clear(self.stream_state)
        if self._older:
            self.logger.info("Dropped %d orders older than the bookmark", self._older)

    def _next_page(
        self, responses: Iterator[requests.Response], resume: Resume, context: Context | None
    ) -> tuple[dict, list[dict]] | None:
        """Read, filter and prepare the next page; its children may start on it."""
        response = next(responses, None)
        if response is None:
            return None
        if not self._clamped:
            self._clamp_bookmark(resume, response, context)
        body = payload_of(response)
        page = []
        for record in body.get("results", []):
            modified = utc_timestamp(record.get("modified_date"))
            if resume.since and modified and modified < resume.since:
                self._older += 1  # the server ignored the filter: never emit stale rows
                continue
            if resume.done(record.get("id")):
                continue  # emitted, with its children, before (this run or a killed one)
            if modified:
                record["modified_date"] = modified
            page.append(self.prepare(record))
        if self._older and not self._warned_filter:
            self._warned_filter = True
            self.logger.warning(
                "The server ignored modified_date__gte; older orders are dropped "
                "on the client side instead."
            )
        if page:
            for child in self.child_streams:
                child.page_ready(page)
        return body, page

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        """Children are synced once per page (see `get_records`), not once per order."""
        return ()

    def _since(self, context: Context | None) -> str | None:
        start = self.get_starting_timestamp(context)
        return utc_timestamp(start.isoformat()) if start else None

    def _clamp_bookmark(
        self, resume: Resume, response: requests.Response, context: Context | None
    ) -> None:
        """The bookmark may not pass the server's clock at the start of the sync.

        A resumed sync keeps the clock of the sync it resumes: what changed since then,
        including the orders it skips as done, is read again next time.
        """
        if not resume.signpost:
            try:
                server_now = email.utils.parsedate_to_datetime(response.headers["Date"])
            except (KeyError, TypeError, ValueError):
                self.logger.warning("No usable Date header; the bookmark is capped by the local clock.")
                server_now = datetime.datetime.now(datetime.timezone.utc)
            resume.signpost = utc_timestamp(server_now.isoformat())
        self._write_replication_key_signpost(context, resume.signpost)
        self._clamped = True

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """An order without `modified_date` cannot move the bookmark; the SDK would warn per row."""
        if latest_record.get(self.replication_key):
            super()._increment_stream_state(latest_record, context=context)


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
