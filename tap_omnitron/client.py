"""The base stream: one pooled connection, strict responses, exact decimals, clean errors."""

from __future__ import annotations

import os
import typing as t
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import cached_property
from pathlib import Path

import msgspec
import requests
from requests.adapters import HTTPAdapter
from singer_sdk import RESTStream
from singer_sdk import singerlib as singer
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._util import utc_now
from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_omnitron.auth import OmnitronAuth
from tap_omnitron.errors import AuthenticationError, NotFoundError, OmnitronError, server_detail
from tap_omnitron.records import decimal_plan, normalise_decimals, redact_secrets
from tap_omnitron.retry import RetryPolicy

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

_T = t.TypeVar("_T")
_R = t.TypeVar("_R")

API_PATH = "/api/i1"
REQUEST_TIMEOUT = 60  # seconds; a hung server is a transient fault, retried


def _schema_dir() -> Path:
    """Schemas ship inside the wheel; an editable install reads them from the checkout."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


_decoder = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(content: bytes) -> t.Any:  # noqa: ANN401
    """Parse JSON with every non-integer number as `Decimal`: money never meets a float."""
    return _decoder.decode(content)


class Connection:
    """What all streams share: one keep-alive pool, one login, one retry budget."""

    def __init__(self, config: t.Mapping[str, t.Any], base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        workers = int(config.get("max_concurrency") or 1)
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(workers, 2) + 2)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # requests re-reads proxy settings from the environment on every request (about
        # 14% of the tap's CPU when profiled): read them once, here, instead.
        self.session.proxies.update(requests.utils.get_environ_proxies(base_url))
        self.session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self.session.trust_env = False
        self.session.headers["Accept"] = "application/json"
        self.auth = OmnitronAuth(
            base_url=base_url,
            session=self.session,
            api_token=config.get("api_token"),
            username=config.get("username"),
            password=config.get("password"),
            timeout=REQUEST_TIMEOUT,
        )
        self.retry = RetryPolicy(max_retries=int(config.get("max_retries", 5)))
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def map(self, func: t.Callable[[_T], _R], items: list[_T]) -> t.Iterator[_R]:
        """`func` over `items` on up to `max_concurrency` threads, results in input order.

        The SDK syncs one request at a time; detail requests are the slow part of a sync
        and independent of each other. Callers pass one page at a time, which bounds both
        the requests in flight and the memory held.
        """
        if self.workers <= 1 or len(items) <= 1:
            return map(func, items)
        return self._executor().map(func, items)

    def submit(self, func: t.Callable[..., _R], *args: t.Any) -> t.Callable[[], _R]:
        """Start `func(*args)` in the background; call the result to wait for its value.

        With `max_concurrency: 1` nothing runs ahead: the call happens when waited for.
        """
        if self.workers <= 1:
            return lambda: func(*args)
        return self._executor().submit(func, *args).result

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="omnitron")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        self.session.close()


class OmnitronStream(RESTStream[int]):
    """Shared behaviour of the Omnitron streams; subclasses only say what they are."""

    schema = StreamSchema(SchemaDirectory(_schema_dir()))

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._unknown_reported: set[str] = set()  # property names already warned about

    @property
    def url_base(self) -> str:
        return self._tap.base_url + API_PATH

    @property
    def connection(self) -> Connection:
        return self._tap.connection

    @property
    def requests_session(self) -> requests.Session:
        return self.connection.session

    @property
    def authenticator(self) -> OmnitronAuth:
        return self.connection.auth

    @property
    def timeout(self) -> int:
        return REQUEST_TIMEOUT

    @cached_property
    def _decimal_plan(self) -> dict:
        return decimal_plan(self.schema)

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Retries with the tap's own policy instead of the SDK's slow default backoff."""

        def send(prepared: requests.PreparedRequest, context: Context | None) -> t.Any:  # noqa: ANN401
            what = f"{prepared.method} {_path_of(prepared.url)}"
            return self.connection.retry.call(lambda: func(prepared, context), what)

        return send

    def request_pages(self, context: Context | None) -> t.Iterator[requests.Response]:
        """Each validated page response in turn (the SDK's loop hides page boundaries).

        The next page is requested as soon as this one has arrived, so that its round
        trip overlaps the work on this one.
        """
        paginator = self.get_new_paginator()
        send = self.request_decorator(self._request)

        def request_next() -> t.Callable[[], requests.Response]:
            prepared = self._prepare_request(context=context, page=paginator)
            return self.connection.submit(send, prepared, context)

        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            pending: t.Callable[[], requests.Response] | None = request_next()
            while pending is not None:
                response = pending()
                counter.increment()
                paginator.advance(response)
                pending = None if paginator.finished else request_next()
                yield response

    # Responses

    def validate_response(self, response: requests.Response) -> None:
        """Classify a response; the decoded body is kept so it is parsed only once."""
        status = response.status_code
        what = f"{response.request.method} {_path_of(response.url)}"
        if status == 429 or status >= 500:  # noqa: PLR2004
            raise RetriableAPIError(f"HTTP {status} {_short_reason(response)}", response)
        if status == 401:  # noqa: PLR2004
            detail = server_detail(response) or "unauthorized"
            hint = (
                "the login key was refused even after logging in again"
                if self.authenticator.can_login
                else "check the api_token setting"
            )
            raise AuthenticationError(f"{what} answered 401 ({detail}): {hint}")
        if status == 404 and self.tolerate_404(response):  # noqa: PLR2004
            response.omnitron_payload = {}  # type: ignore[attr-defined]
            return
        if status == 404:  # noqa: PLR2004
            raise NotFoundError(f"{what} answered 404 (not found)")
        if status >= 400:  # noqa: PLR2004
            detail = server_detail(response) or _short_reason(response)
            raise OmnitronError(f"{what} answered HTTP {status}: {detail}")
        try:
            payload = decode_json(response.content)
        except msgspec.DecodeError:
            # A proxy's HTML page or a cut-off body: transient, never emitted as records.
            raise RetriableAPIError(
                f"HTTP {status} with a body that is not valid JSON "
                f"({_content_type(response)})",
                response,
            ) from None
        if problem := self.check_payload(payload):
            raise RetriableAPIError(f"HTTP {status} with an unexpected body: {problem}", response)
        response.omnitron_payload = payload  # type: ignore[attr-defined]

    def tolerate_404(self, response: requests.Response) -> bool:  # noqa: ARG002
        """Whether a 404 is part of the protocol for this stream (see the orders list)."""
        return False

    def check_payload(self, payload: t.Any) -> str | None:  # noqa: ANN401
        """Describe what is wrong with a decoded body, or None if it has the right shape."""
        raise NotImplementedError

    def _generate_schema_messages(self) -> t.Iterator[singer.SchemaMessage]:
        """The SDK's SCHEMA messages, with each decimal's `precision` and `scale` put back.

        The SDK rebuilds schemas through a model that drops both keys, and SQL targets
        then make `NUMBER(38,0)` of a bare `x-singer.decimal`: Snowflake stored "107.55"
        as 108.
        """
        for message in super()._generate_schema_messages():
            restore_decimal_bounds(message.schema, self.schema)
            yield message

    def _generate_record_messages(self, record: dict) -> t.Iterator[singer.RecordMessage]:
        """The SDK's record messages, without two walks over every nested value.

        Profiled, the SDK spent more CPU conforming types (records here are parsed JSON,
        already of JSON types) and pruning deselected properties (nothing to prune when
        all are selected) than on anything else. What remains: properties the catalog
        does not know are dropped, deselected ones too, and stream maps apply.
        """
        if self._deselects_properties:
            pop_deselected_record_properties(record, self.schema, self.mask)
        if unknown := record.keys() - self._known_properties:
            for name in unknown:
                del record[name]
            if not unknown <= self._unknown_reported:
                self._unknown_reported |= unknown
                self.logger.warning(
                    "Properties %s are not in the catalog schema of '%s'; not emitted.",
                    sorted(unknown), self.name,
                )
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield singer.RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )

    @cached_property
    def _known_properties(self) -> frozenset[str]:
        return frozenset(self.effective_schema.get("properties", {}))

    @cached_property
    def _deselects_properties(self) -> bool:
        return not all(self.mask[breadcrumb] for breadcrumb in self.metadata)

    def prepare(self, record: dict) -> dict:
        """Exact decimals, and no secrets unless `redact_secrets` is off."""
        normalise_decimals(record, self._decimal_plan)
        return redact_secrets(record) if self.config.get("redact_secrets", True) else record


def restore_decimal_bounds(schema: dict, source: dict) -> None:
    """Copy `precision`/`scale` from `source` into the decimals of `schema`, in place.

    Properties are matched by path; a decimal the source does not have (a stream map's
    or flattening's new name) gets the widest bounds the source declares.
    """
    widest = _widest_bounds(source)

    def walk(node: t.Any, origin: t.Any) -> None:  # noqa: ANN401
        if not isinstance(node, dict):
            return
        origin = origin if isinstance(origin, dict) else {}
        if node.get("format") == "x-singer.decimal":
            for key in ("precision", "scale"):
                node.setdefault(key, origin.get(key, widest.get(key)))
        for name, prop in (node.get("properties") or {}).items():
            walk(prop, (origin.get("properties") or {}).get(name))
        if "items" in node:
            walk(node["items"], origin.get("items"))

    walk(schema, source)


def _widest_bounds(schema: t.Any) -> dict[str, int]:  # noqa: ANN401
    found: dict[str, int] = {}
    if isinstance(schema, dict):
        if schema.get("format") == "x-singer.decimal":
            for key in ("precision", "scale"):
                if isinstance(schema.get(key), int):
                    found[key] = max(found.get(key, 0), schema[key])
        children = [*(schema.get("properties") or {}).values(), schema.get("items")]
        for child in children:
            for key, value in _widest_bounds(child).items():
                found[key] = max(found.get(key, 0), value)
    return found


def payload_of(response: requests.Response) -> t.Any:  # noqa: ANN401
    return getattr(response, "omnitron_payload", None)


def _path_of(url: str | None) -> str:
    """The path of a URL, without its query (which may carry filters) or host."""
    return requests.utils.urlparse(url or "").path or "/"


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "no content type").split(";")[0]


def _short_reason(response: requests.Response) -> str:
    return f"{response.reason or ''}".strip() or _content_type(response)
