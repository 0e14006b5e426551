"""The three streams: orders, and the order items and detailed view of each order.

Each stream says what it is (name, keys, schema file) and reads what it emits from the one
object it shares with the others, the `OrderFeed`. Orders come from `read_pages` through
`listing`; the SDK syncs the children once per page of orders, with the context
`{"orders_page": n}`, after the page's last order its stream maps keep.
"""

from __future__ import annotations

import datetime
import itertools
import typing as t
from functools import cached_property
from pathlib import Path

from singer_sdk import metrics
from singer_sdk import singerlib as singer
from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_omnitron import dates, settings
from tap_omnitron.client import DETAIL_PATH, ORDERS_PATH, a_page
from tap_omnitron.listing import FUTURE, Listing, Pass, Plan, Resume, probe_params
from tap_omnitron.pagination import Page, not_a_list, read_pages
from tap_omnitron.records import Preparer, restore_decimal_bounds
from tap_omnitron.sdk import StreamHooks

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_omnitron.client import Answer, OmnitronClient
    from tap_omnitron.feed import OrderFeed
    from tap_omnitron.progress import Progress


SKIPPED = "skipped_details"  # in the orders' STATE: order ids whose detail a run could not fetch


def _schema_dir() -> Path:
    """Schemas ship inside the wheel; an editable install reads them from the checkout."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


class OmnitronStream(StreamHooks):
    """What the streams share: a schema file, the feed, exact decimals, no secrets."""

    schema = StreamSchema(SchemaDirectory(_schema_dir()))

    def __init__(self, tap: Tap, *, feed: OrderFeed, progress: Progress) -> None:
        super().__init__(tap)
        self.feed = feed
        self.progress = progress
        self._unknown_reported: set[str] = set()  # property names already warned about
        self._bounded: set[int] = set()  # schemas whose decimals have their bounds back

    @property
    def client(self) -> OmnitronClient:
        return self.feed.client

    @property
    def emit_activate_version_messages(self) -> bool:
        """Never: a child sync covers one page of orders, and a target must not take it for
        the whole table (it would delete the rows of every other page)."""
        return False

    @cached_property
    def prepare(self) -> Preparer:
        return Preparer(self.schema, redact=self.config.get("redact_secrets", True))

    def record_messages(self, record: dict) -> Iterator[singer.RecordMessage]:
        """The stream maps' records, once properties the catalog does not know or does not
        select are dropped. Parsed JSON is of JSON types already: nothing to conform."""
        if unknown := record.keys() - self._known_properties:
            record = {k: v for k, v in record.items() if k not in unknown}
            if not unknown <= self._unknown_reported:
                self._unknown_reported |= unknown
                self.logger.warning(
                    "Properties %s are not in the catalog schema of '%s'; not emitted.",
                    sorted(unknown), self.name,
                )
        if self._deselects_properties:
            record = _selected(record, self.mask, ())
        extracted = datetime.datetime.now(datetime.timezone.utc)
        counted = False
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                if not counted:
                    self.progress.records[self.name] += 1
                    counted = True
                yield singer.RecordMessage(
                    stream=stream_map.stream_alias, record=mapped, time_extracted=extracted
                )

    def schema_message(self, message: singer.SchemaMessage) -> singer.SchemaMessage:
        """The SDK's SCHEMA message, with each decimal's `precision` and `scale` put back.

        The SDK makes one per child sync (per page) from the same schema object: it is
        mended once.
        """
        if id(message.schema) not in self._bounded:
            restore_decimal_bounds(message.schema, self.schema)
            self._bounded.add(id(message.schema))
        return message

    @cached_property
    def _known_properties(self) -> frozenset[str]:
        return frozenset(self.effective_schema.get("properties", {}))

    @cached_property
    def _deselects_properties(self) -> bool:
        return not all(self.mask[breadcrumb] for breadcrumb in self.metadata)


def _selected(record: dict, mask: singer.SelectionMask, breadcrumb: tuple) -> dict:
    """A copy of `record` without the properties the catalog deselects, at any depth.

    A copy: the record's nested lists (an order's items) are read again by child streams.
    """
    kept = {}
    for name, value in record.items():
        path = (*breadcrumb, "properties", name)
        if mask[path]:
            kept[name] = _selected(value, mask, path) if isinstance(value, dict) else value
    return kept


class OrdersStream(OmnitronStream):
    """Orders, read as `listing` explains; the bookmark is the server's clock at the start."""

    name = "orders"
    primary_keys = ("id",)
    replication_key = "modified_date"

    def __init__(self, tap: Tap, *, feed: OrderFeed, progress: Progress) -> None:
        super().__init__(tap, feed=feed, progress=progress)
        self._page_numbers = itertools.count(1)  # across passes: each page its own context
        self._closing: tuple[t.Any, int] | None = None  # (last kept order, its page number)

    def get_replication_key_signpost(self, context: Context | None = None) -> None:  # noqa: ARG002
        """None: the bookmark is the server's clock at the start of the sync (see `listing`)."""
        return

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """The later of the bookmark and `start_date`, read as dates whatever their form."""
        return max(value, start_date_value, key=dates.parse)

    def get_records(self, context: Context | None) -> Iterator[dict]:
        self._fetch_skipped_details()
        resume = Resume.load(self.stream_state, self._since())
        plan = self._plan(resume)
        listing = Listing(plan, resume, self.logger)
        params = {"limit": self.config.get("page_size", settings.DEFAULT_PAGE_SIZE), "sort": "id"}
        if plan.since:
            params["modified_date__gte"] = plan.since
        with metrics.http_request_counter(self.name, endpoint=ORDERS_PATH) as requests:
            for current in listing.passes():
                pages = read_pages(self.client, params, ahead=self._pages_ahead(current))
                yield from self._emit(pages, listing, current, requests)
        Resume.clear(self.stream_state)
        self._keep_skipped()
        if plan.bookmarkable:
            self.stream_state["replication_key"] = self.replication_key
            self.stream_state["replication_key_value"] = plan.signpost
        if listing.older:
            self.logger.info("Dropped %d orders older than the bookmark", listing.older)

    def generate_child_contexts(self, record: dict, context: Context | None) -> Iterable[Context]:  # noqa: ARG002
        """One context per page, at the page's last order the stream maps keep: the SDK then
        syncs the children of the whole page, and of none that a map filters out."""
        if self._closing is not None and record.get("id") == self._closing[0]:
            yield {"orders_page": self._closing[1]}

    def _emit(
        self, pages: Iterator[Page], listing: Listing, current: Pass, requests: metrics.Counter
    ) -> Iterator[dict]:
        """Each page's new orders; the page after is read (and its details requested) first,
        so that connections never wait for a page's records to be written."""
        previous = None
        for page in pages:
            requests.increment()
            orders = [self.prepare(record) for record in listing.select(current, page)]
            kept = [order for order in orders if self.stream_maps[0].get_filter_result(order)]
            number = next(self._page_numbers)
            self.feed.publish(number, kept, details=self._details is not None)
            if previous is not None:
                yield from self._release(listing, *previous)
            previous = (page, number, orders, kept)
        if previous is not None:
            yield from self._release(listing, *previous)

    def _release(
        self, listing: Listing, page: Page, number: int, orders: list[dict], kept: list[dict]
    ) -> Iterator[dict]:
        self._closing = (kept[-1].get("id"), number) if kept else None
        yield from orders
        # The SDK has written the page's orders and synced their children: say so in STATE.
        self.feed.retire(number)
        listing.page_done(page, self.stream_state)
        self._keep_skipped()
        self.progress.page_done(listing.seen)

    def _fetch_skipped_details(self) -> None:
        """First, the details earlier runs skipped: detail requests only, no list pages."""
        self.feed.remember(self.stream_state.get(SKIPPED, []))
        if self.feed.skipped and self._details is not None:
            number = next(self._page_numbers)
            self.logger.info("Asking first for %d order details skipped by an earlier run.", len(self.feed.skipped))
            self.feed.publish_skipped(number)
            self._details.sync(context={"orders_page": number})
            self.feed.retire(number)
            self._keep_skipped()

    def _keep_skipped(self) -> None:
        """The details still to fetch, in the orders' STATE for the next run."""
        if self.feed.skipped:
            self.stream_state[SKIPPED] = sorted(self.feed.skipped)
        else:
            self.stream_state.pop(SKIPPED, None)

    def _plan(self, resume: Resume) -> Plan:
        """Ask the server whether it filters and sorts as asked, and what time it is."""
        probe = self._probe(sort="-id", since=FUTURE)
        results = probe.body["results"]
        server_filters = not results
        carries_key = bool(results) and "modified_date" in results[0]
        if resume.signpost is None:
            resume.signpost = dates.from_http_date(probe.date) or self._local_clock()
        bookmarkable = server_filters or carries_key
        since = resume.since if bookmarkable else None
        top = probe
        if server_filters:  # the first order of this run's list, under sort=-id
            top = self._probe(sort="-id", since=since)
        total = top.body.get("count") if isinstance(top.body.get("count"), int) else None
        if not bookmarkable:
            self.logger.warning(
                "The server ignores modified_date__gte and its orders carry no modified_date: "
                "every run reads all %s orders and sends a detail request for each%s; no "
                "bookmark is kept.",
                total if total is not None else "the",
                " (start_date cannot apply)" if self.config.get("start_date") else "",
            )
        elif not server_filters and since:
            self.logger.warning(
                "The server ignored modified_date__gte; older orders are dropped "
                "on the client side instead (every run lists all %s orders).",
                total if total is not None else "the",
            )
        top_id = top.body["results"][0].get("id") if top.body["results"] else None
        self.progress.start(bookmark=since, resume_after=resume.after_id or None, total=total)
        return Plan(since, resume.signpost, bookmarkable, top_id)

    def _since(self) -> str | None:
        """The lower bound of this run: the bookmark less `lookback_seconds`, or `start_date`.

        The lookback re-reads changes stamped just before the last run began but committed
        after it read the list, or stamped by an app server whose clock runs behind.
        """
        bounds = []
        if self.stream_state.get("replication_key") == self.replication_key and (
            bookmark := self.stream_state.get("replication_key_value")
        ):
            lookback = datetime.timedelta(seconds=float(self.config.get("lookback_seconds", settings.DEFAULT_LOOKBACK_SECONDS)))
            bounds.append(dates.parse(bookmark) - lookback)
        if start := self.config.get("start_date"):
            bounds.append(dates.parse(start))
        return dates.canonical(max(bounds)) if bounds else None

    def _probe(self, *, sort: str, since: str | None) -> Answer:
        answer = self.client.get(ORDERS_PATH, probe_params(sort=sort, since=since), shape=a_page)
        if not answer.found:
            raise not_a_list(answer)
        return answer

    def _pages_ahead(self, current: Pass) -> int:
        """List pages requested early: one while details fill the connections (the first
        pass), as many as `max_concurrency` when passes mostly read the list; none at 1."""
        in_flight = self.client.max_in_flight
        return 0 if in_flight == 1 else 1 if current.number == 1 else in_flight - 1

    def _local_clock(self) -> str:
        self.logger.warning("No usable Date header; the bookmark is taken from the local clock.")
        return dates.now()

    @cached_property
    def _details(self) -> OrderDetailsStream | None:
        """The order details stream, if the catalog selects it: else no detail is requested."""
        return next((c for c in self.child_streams if isinstance(c, OrderDetailsStream) and c.selected), None)


class _OrderChild(OmnitronStream):
    """A stream synced once per page of orders, from the page the feed holds.

    One state for the whole stream (no partition per page).
    """

    parent_stream_type = OrdersStream
    state_partitioning_keys: t.ClassVar[list[str]] = []


class OrderItemsStream(_OrderChild):
    """Items come nested in each order: no request of their own."""

    name = "order_items"
    primary_keys = ("id",)

    def get_records(self, context: Context | None) -> Iterator[dict]:
        for order_id, item in self.feed.items(t.cast("dict", context)["orders_page"]):
            yield {**item, "order": item.get("order") or order_id}


class OrderDetailsStream(_OrderChild):
    """One fully expanded order per request; the feed keeps `max_concurrency` in flight."""

    name = "order_details"
    primary_keys = ("pk",)

    def get_records(self, context: Context | None) -> Iterator[dict]:
        with metrics.http_request_counter(self.name, endpoint=DETAIL_PATH) as requests:
            for detail in self.feed.details(t.cast("dict", context)["orders_page"]):
                requests.increment()
                if detail.answer is None:
                    self.logger.error(
                        "Order %s: its detail is skipped, and asked for again next run: %s",
                        detail.order_id, detail.error,
                    )
                elif detail.answer.found:
                    yield self.prepare(detail.answer.body)
                else:
                    self.progress.gone += 1
                    self.logger.warning(
                        "Skipping an order that is gone: %s answered 404 (not found)", detail.answer.what
                    )
