"""The three streams: orders, and the order items and detailed view of each order.

Each stream says what it is (name, path, keys, schema file); what they share is in
`OmnitronStream`. Every request goes through the SDK's request path (`request_records`: the
HTTP request, the authenticator, `request_decorator`'s retries, `validate_response`), one
request per call of `fetch`, whatever thread calls it: detail requests and the list pages
read ahead run in bounded pools of threads (`api.Omnitron.details` and `.pages`).

Orders come from `get_records` through `listing` and `pagination`; the SDK syncs the
children once per page of orders, with the context `{"orders_page": n}`, after the page's
last order its stream maps keep, and they read that page from the `feed`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import typing as t
from functools import cached_property
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from singer_sdk import metrics
from singer_sdk import singerlib as singer
from singer_sdk.batch import Batcher
from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_omnitron import dates, settings
from tap_omnitron.api import DETAIL_PATH, ORDERS_PATH, Answer, Unauthorized, a_page, an_order, read
from tap_omnitron.errors import AuthenticationError, not_the_sdks_failure_line
from tap_omnitron.listing import FUTURE, Listing, Pass, Plan, Resume, probe_params
from tap_omnitron.pagination import Page, not_a_list, read_pages
from tap_omnitron.records import Preparer, restore_decimal_bounds
from tap_omnitron.retry import Relogin
from tap_omnitron.sdk import StreamHooks
from tap_omnitron.session import RequestTemplate, user_agent

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator
    from concurrent.futures import Future

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_omnitron.api import Omnitron
    from tap_omnitron.feed import OrderFeed
    from tap_omnitron.progress import Progress


SKIPPED = "skipped_details"  # in the orders' STATE: order ids whose detail a run could not fetch
_ANSWER = "omnitron_answer"  # where `validate_response` leaves the checked answer for `parse_response`


def _schema_dir() -> Path:
    """Schemas ship inside the wheel; an editable install reads them from the checkout."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


class OmnitronStream(StreamHooks):
    """What the streams share: the request path, a schema file, exact decimals, no secrets."""

    schema = StreamSchema(SchemaDirectory(_schema_dir()))
    allow_redirects = False  # a redirect would carry the token elsewhere: see `api.read`
    shape: t.ClassVar[staticmethod[[t.Any], str | None]]  # what a good answer of this stream's endpoint looks like

    def __init__(
        self, tap: Tap, *, api: Omnitron, feed: OrderFeed, progress: Progress, checkpoint: Callable[[], None]
    ) -> None:
        super().__init__(tap)
        self.api = api
        self.feed = feed
        self.progress = progress
        self.checkpoint = checkpoint  # writes a STATE message now, if the state changed
        self._bounded: set[int] = set()  # schemas whose decimals have their bounds back
        self._unknown_reported: set[str] = set()  # property names already warned about
        self._templates: dict[tuple, RequestTemplate] = {}  # by headers: see `build_prepared_request`
        self.logger.addFilter(not_the_sdks_failure_line)

    @property
    def url_base(self) -> str:
        return self.api.base_url

    @property
    def requests_session(self) -> requests.Session:
        return self.api.session

    @property
    def authenticator(self) -> t.Any:
        return self.api.auth

    @property
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]  # requests takes (connect, read)
        return self.api.limits.connect_timeout, self.api.limits.read_timeout

    @property
    def user_agent(self) -> str:
        return user_agent()

    @property
    def emit_activate_version_messages(self) -> bool:
        """Never: a child sync covers one page of orders, and a target must not take it for
        the whole table (it would delete the rows of every other page)."""
        return False

    def build_prepared_request(self, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        """The request, prepared without the session's per-request merging (cookies, netrc,
        environment): the tap keeps no cookies, and reads its settings once (`api`). A GET
        (every request of a sync) is a copy of the stream's `RequestTemplate`."""
        request = requests.Request(*args, **kwargs)
        if request.method != "GET" or request.data or request.json is not None or not isinstance(request.params, str):
            request.headers = {**self.requests_session.headers, **request.headers}
            return request.prepare()
        key = tuple(request.headers.items())  # the stream's own: the session's are set once (`api`)
        template = self._templates.get(key)
        if template is None:
            headers = {**self.requests_session.headers, **request.headers}
            template = self._templates[key] = RequestTemplate(self.url_base, headers)
        return template.prepare(request.url, request.params)

    def get_new_paginator(self) -> None:
        """One request per `fetch`: list pages are followed by `pagination.read_pages`."""
        return

    def get_url(self, context: Context | None) -> str:
        """The path with the context's values in it, quoted by the caller (`request_detail`).
        The SDK's would look for every setting's name in the path too, at every request."""
        return self.url_base + self.path.format_map(context or {})

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:  # noqa: ARG002  (the SDK's signature)
        return dict((context or {}).get("params", {}))

    def request_decorator(self, func: Callable) -> Callable:
        """The retry rules of `retry`, the same for every request of every stream."""
        return self.api.retry.decorate(func, _what)

    def validate_response(self, response: requests.Response) -> None:
        """Judge the answer (`api.read`); a 401 is worth one new login, when there is one."""
        what = f"{response.request.method} {urlsplit(response.url).path}"
        try:
            answer = read(response, what, self.shape)
        except Unauthorized as exc:
            if self.api.auth.renew(response.request):
                raise Relogin(str(exc)) from None
            hint = (
                "the login key was refused even after logging in again"
                if self.api.auth.can_login
                else "check the api_token setting"
            )
            raise AuthenticationError(f"{exc}: {hint}") from None
        self.api.retry.answered()
        self.api.auth.accepted()
        setattr(response, _ANSWER, answer)

    def parse_response(self, response: requests.Response) -> Iterator[Answer]:  # type: ignore[override]  # see `fetch`
        yield getattr(response, _ANSWER)

    def get_http_request_counter(self) -> metrics.Counter:
        """Requests are counted where they are sent (`session.OmnitronSession`), every attempt
        and the login included; the SDK's counter here would count successful calls only."""
        return _UNCOUNTED

    def fetch(self, context: Context) -> Answer:
        """One request of this stream, through the SDK's request path."""
        # The SDK calls what `parse_response` yields records; this tap's are the checked `Answer`s.
        return t.cast("Answer", next(iter(self.request_records(context))))

    @cached_property
    def prepare(self) -> Preparer:
        return Preparer(self.schema, redact=self.config.get("redact_secrets", True))

    def record_messages(self, record: dict) -> Generator[singer.RecordMessage, None, None]:
        """The stream maps' records, of the properties the catalog knows and selects.

        The SDK's own path walks every nested value of every record twice (to prune and to
        conform); on detailed orders that took a third of the tap's CPU (measured with
        `make bench`), so the walk happens here only when the catalog deselects something.
        Parsed JSON is of JSON types already: nothing to conform.
        """
        record = self.emittable(record)
        extracted = dt.datetime.now(dt.timezone.utc)
        emitted = False
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                emitted = True
                yield singer.RecordMessage(stream=stream_map.stream_alias, record=mapped, time_extracted=extracted)
        self.progress.records[self.name] += emitted

    def get_batches(
        self,
        batch_config: t.Any,  # the SDK's BatchConfig, in a private module
        context: Context | None = None,
    ) -> Iterator[tuple]:
        """BATCH files that never run ahead of STATE: the SDK writes a STATE after each file,
        so a file holds one page of orders (`OrdersStream.pages`), or one child sync."""
        batcher = Batcher(tap_name=self.tap_name, stream_name=self.name, batch_config=batch_config)
        for page in self.pages(self.synced_records(context)):
            self.progress.records[self.name] += len(page)
            for manifest in batcher.get_batches(records=(self.emittable(record) for record in page)):
                yield batch_config.encoding, manifest

    def pages(self, records: Iterator[dict]) -> Iterator[list[dict]]:
        """The records of one sync, in the groups a STATE may follow: all of them, by default."""
        yield list(records)

    def emittable(self, record: dict) -> dict:
        """`record` without the properties the catalog does not know (warned about once) or
        does not select."""
        if unknown := record.keys() - self._known_properties:
            record = {k: v for k, v in record.items() if k not in unknown}
            if not unknown <= self._unknown_reported:
                self._unknown_reported |= unknown
                self.logger.warning(
                    "Properties %s are not in the catalog schema of '%s'; not emitted.",
                    sorted(unknown),
                    self.name,
                )
        if self._deselects_properties:
            record = _selected(record, self.mask, ())
        return record

    @cached_property
    def _known_properties(self) -> frozenset[str]:
        return frozenset(self.effective_schema.get("properties", {}))

    @cached_property
    def _deselects_properties(self) -> bool:
        return not all(self.mask[breadcrumb] for breadcrumb in self.metadata)

    def schema_message(self, message: singer.SchemaMessage) -> singer.SchemaMessage:
        """The SDK's SCHEMA message, with each decimal's `precision` and `scale` put back.

        The SDK makes one per child sync (per page) from the same schema object: it is
        mended once.
        """
        if id(message.schema) not in self._bounded:
            restore_decimal_bounds(message.schema, self.schema)
            self._bounded.add(id(message.schema))
        return message


def _what(prepared: requests.PreparedRequest, *_: t.Any) -> str:
    """A request, for messages: "GET /api/i1/orders/" (its query is left out)."""
    return f"{prepared.method} {urlsplit(prepared.url or '').path}"


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


class _Uncounted(metrics.Counter):
    def __init__(self) -> None:
        super().__init__(metrics.Metric.HTTP_REQUEST_COUNT)

    def increment(self, value: int = 1) -> None:
        pass

    def exit(self) -> None:
        pass


_UNCOUNTED = _Uncounted()


class OrdersStream(OmnitronStream):
    """Orders, read as `listing` explains; the bookmark is the server's clock at the start."""

    name = "orders"
    path = ORDERS_PATH
    primary_keys = ("id",)
    replication_key = "modified_date"
    shape = staticmethod(a_page)

    def __init__(self, tap: Tap, **shared: t.Any) -> None:
        super().__init__(tap, **shared)
        self._page_numbers = itertools.count(1)  # across passes: each page its own context
        self.pages_done = 0  # pages whose orders and children are out, and in the state
        self._closing: tuple[t.Any, int] | None = None  # (last kept order, its page number)

    def pages(self, records: Iterator[dict]) -> Iterator[list[dict]]:
        """The orders page by page: a page is complete once the next one has begun (the
        listing has then recorded it in the state, see `_release`)."""
        page: list[dict] = []
        done = self.pages_done
        for record in records:
            if self.pages_done != done:
                yield page
                page, done = [], self.pages_done
            page.append(record)
        if page:
            yield page

    def get_replication_key_signpost(self, context: Context | None = None) -> None:  # noqa: ARG002  (the SDK's signature)
        """None: the bookmark is the server's clock at the start of the sync (see `listing`)."""
        return

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """The later of the bookmark and `start_date`, read as dates whatever their form."""
        return t.cast("str", dates.canonical(max(value, start_date_value, key=dates.parse)))

    def get_records(self, context: Context | None) -> Iterator[dict]:  # noqa: ARG002  (the SDK's signature)
        self._fetch_skipped_details()
        resume = Resume.load(self.stream_state, self._since())
        params = {"limit": self.config.get("page_size", settings.DEFAULT_PAGE_SIZE), "sort": "id"}
        if resume.since:
            params["modified_date__gte"] = resume.since
        # The first page is asked for with the probes: a server the probes find ignoring the
        # filter answers it as if it had not been sent, so the answer holds either way.
        first: Future[Answer] | None = self._request_page({**params, "page": 1})
        plan = self._plan(resume)
        listing = Listing(plan, resume, self.logger)
        yield from self._emit(self._pages(listing, params, first), listing)
        Resume.clear(self.stream_state)
        self._keep_skipped()
        if plan.bookmarkable:
            self.stream_state["replication_key"] = self.replication_key
            self.stream_state["replication_key_value"] = plan.signpost
        if listing.older:
            self.logger.info("Dropped %d orders older than the bookmark", listing.older)

    def generate_child_contexts(self, record: dict, context: Context | None) -> Iterable[Context]:  # noqa: ARG002  (the SDK's signature)
        """One context per page, at the page's last order the stream maps keep: the SDK then
        syncs the children of the whole page, and of none that a map filters out."""
        if self._closing is not None and record.get("id") == self._closing[0]:
            yield {"orders_page": self._closing[1]}

    def _request_page(self, params: dict[str, t.Any]) -> Future[Answer]:
        return self.api.pages.submit(self.fetch, {"params": params})

    def _pages(
        self, listing: Listing, params: dict[str, t.Any], first: Future[Answer] | None
    ) -> Iterator[tuple[Pass, Page]]:
        """The pages of every pass, in order; a pass begins once the one before is read (the
        listing then knows whether another is needed), while its last page's details are
        still in flight."""
        for current in listing.passes():
            ahead = self._pages_ahead(current)
            for page in read_pages(self._request_page, params, ahead=ahead, first=first, expected=listing.pages):
                yield current, page
            first = None

    def _emit(self, pages: Iterator[tuple[Pass, Page]], listing: Listing) -> Iterator[dict]:
        """Each page's new orders; the page after is read (and its details requested) first,
        so that the pools of threads never wait for a page's records to be written."""
        previous = None
        for current, page in pages:
            orders = [self.prepare(record) for record in listing.select(current, page)]
            kept = [order for order in orders if self.stream_maps[0].get_filter_result(order)]
            number = next(self._page_numbers)
            self.feed.publish(number, kept, details=self._details)
            if previous is not None:
                yield from self._release(listing, *previous)
            previous = (current, page, number, orders, kept)
        if previous is not None:
            yield from self._release(listing, *previous)

    def _release(  # noqa: PLR0913, PLR0917  (a page's parts, passed as the tuple they wait in)
        self, listing: Listing, current: Pass, page: Page, number: int, orders: list[dict], kept: list[dict]
    ) -> Iterator[dict]:
        self._closing = (kept[-1].get("id"), number) if kept else None
        yield from orders
        # The SDK has written the page's orders and synced their children: say so in STATE.
        self.feed.retire(number)
        listing.page_done(current, page, self.stream_state)
        self._keep_skipped()
        self.pages_done += 1
        if self.get_batch_config(self.config) is None:  # with BATCH, the STATE follows the page's file
            self.checkpoint()
        self.progress.page_done(listing.seen)

    def _fetch_skipped_details(self) -> None:
        """First, the details earlier runs skipped: detail requests only, no list pages."""
        self.feed.remember(self.stream_state.get(SKIPPED, []))
        if self.feed.skipped and self._details is not None:
            number = next(self._page_numbers)
            self.logger.info("Asking first for %d order details skipped by an earlier run.", len(self.feed.skipped))
            self.feed.publish_skipped(number, self._details)
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
        """Ask the server whether it filters and sorts as asked, and what time it is.

        Two probes at once: a lower bound in the future (a filtering server lists nothing),
        and this run's list under sort=-id (its first order, and how many there are; a server
        that ignores the filter lists as without it).
        """
        future, listed = (self._probe(sort="-id", since=since) for since in (FUTURE, resume.since))
        probe, top = future.result(), listed.result()
        results = probe.body["results"]
        server_filters = not results
        carries_key = bool(results) and "modified_date" in results[0]
        if resume.signpost is None:
            resume.signpost = dates.from_http_date(probe.date) or self._local_clock()
        bookmarkable = server_filters or carries_key
        since = resume.since if bookmarkable else None
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
        """The lower bound of this run: the SDK's starting value (the later of the bookmark
        and `start_date`), less `lookback_seconds` when it is the bookmark.

        The lookback re-reads changes stamped just before the last run began but committed
        after it read the list, or stamped by an app server whose clock runs behind.
        """
        start = self.get_starting_timestamp(None)
        if start is None:
            return None
        if self.stream_state.get("replication_key_value"):
            lookback = float(self.config.get("lookback_seconds", settings.DEFAULT_LOOKBACK_SECONDS))
            start -= dt.timedelta(seconds=lookback)
            if start_date := self.config.get("start_date"):
                start = max(start, dates.parse(start_date))
        return dates.canonical(start)

    def _probe(self, *, sort: str, since: str | None) -> Future[Answer]:
        return self.api.pages.submit(self._found, {"params": probe_params(sort=sort, since=since)})

    def _found(self, context: Context) -> Answer:
        """A list page that must exist: the first page missing means the URL is wrong."""
        answer = self.fetch(context)
        if not answer.found:
            raise not_a_list(answer)
        return answer

    def _pages_ahead(self, current: Pass) -> int:
        """List pages requested early: one while details fill the pool (the first pass), as
        many as `max_concurrency` when passes mostly read the list; none at 1."""
        in_flight = self.api.max_concurrency
        return 0 if in_flight == 1 else 1 if current.number == 1 and self._details else in_flight

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
    shape = staticmethod(a_page)  # never requested

    def get_records(self, context: Context | None) -> Iterator[dict]:
        for order_id, item in self.feed.items(t.cast("dict", context)["orders_page"]):
            yield {**item, "order": item.get("order") or order_id}


class OrderDetailsStream(_OrderChild):
    """One fully expanded order per request; the feed keeps `max_concurrency` in flight."""

    name = "order_details"
    path = DETAIL_PATH
    primary_keys = ("pk",)
    shape = staticmethod(an_order)

    def request_detail(self, order_id: t.Any) -> Future[Answer]:
        """Start the request for one order's detail, in the pool of threads."""
        return self.api.details.submit(self.fetch, {"order_id": quote(str(order_id), safe="")})

    def get_records(self, context: Context | None) -> Iterator[dict]:
        for detail in self.feed.details(t.cast("dict", context)["orders_page"]):
            if detail.answer is None:
                self.logger.error(
                    "Order %s: its detail is skipped, and asked for again next run: %s",
                    detail.order_id,
                    detail.error,
                )
            elif detail.answer.found:
                yield self.prepare(detail.answer.body)
            else:
                self.progress.gone += 1
                self.logger.warning("Skipping an order that is gone: %s answered 404 (not found)", detail.answer.what)
