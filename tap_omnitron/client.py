"""The base stream: one pooled connection, strict responses, exact decimals, clean errors."""

from __future__ import annotations

import itertools
import typing as t
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk import singerlib as singer
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._util import utc_now
from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_omnitron.errors import AuthenticationError, NotFoundError, OmnitronError, server_detail
from tap_omnitron.records import decimal_plan, normalise_decimals, redact_secrets

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_omnitron.auth import OmnitronAuth
    from tap_omnitron.connection import Connection

API_PATH = "/api/i1"


def _schema_dir() -> Path:
    """Schemas ship inside the wheel; an editable install reads them from the checkout."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


_decoder = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(content: bytes) -> t.Any:  # noqa: ANN401
    """Parse JSON with every non-integer number as `Decimal`: money never meets a float."""
    return _decoder.decode(content)


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
    def authenticator(self) -> OmnitronAuth:
        return self.connection.auth

    @property
    def http_headers(self) -> dict:
        return dict(self.connection.headers)

    @property
    def user_agent(self) -> str:
        return self.connection.headers["User-Agent"]

    @cached_property
    def _decimal_plan(self) -> dict:
        return decimal_plan(self.schema)

    def _request(
        self, prepared: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """Send and check, once: the SDK's request hook, and each retry of `start_request`."""
        return self._checked(self.connection.send(prepared), context)

    def start_request(
        self, prepared: requests.PreparedRequest, context: Context | None
    ) -> t.Callable[[], requests.Response]:
        """Send `prepared` now; the result reads, checks and if need be retries its answer.

        The first attempt is the one in flight; retries are sent one at a time.
        """
        first = self.connection.start(prepared)
        attempts = itertools.chain(
            (lambda: self._checked(first(), context),),
            itertools.repeat(lambda: self._request(prepared, context)),
        )

        def response() -> requests.Response:
            return self.connection.retry.call(lambda: next(attempts)(), _what(prepared))

        return response

    def _checked(self, response: requests.Response, context: Context | None) -> requests.Response:
        self._write_request_duration_log(
            endpoint=self.path, response=response, context=context, extra_tags=None
        )
        self.validate_response(response)
        return response

    def request_pages(self, context: Context | None) -> t.Iterator[requests.Response]:
        """Each checked page response in turn (the SDK's loop hides page boundaries).

        With `max_concurrency` above 1, the next page is requested as soon as this one has
        arrived, so that its round trip overlaps the work on this one.
        """
        paginator = self.get_new_paginator()
        ahead = self.connection.max_in_flight > 1

        def request_next() -> t.Callable[[], requests.Response]:
            def start() -> t.Callable[[], requests.Response]:
                prepared = self._prepare_request(context=context, page=paginator)
                return self.start_request(prepared, context)

            return start() if ahead else lambda: start()()

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
        what = _what(response.request)
        if status == 429 or status >= 500:  # noqa: PLR2004
            raise RetriableAPIError(f"HTTP {status} {_short_reason(response)}", response)
        if 300 <= status < 400:  # noqa: PLR2004  (not followed: it would carry the token along)
            location = urljoin(response.url, response.headers.get("Location") or "")
            moved = urlsplit(location)._replace(query="").geturl()
            msg = f"{what} answered {status}, moved to {moved}: check base_url"
            raise OmnitronError(msg)
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


def _what(request: requests.PreparedRequest) -> str:
    return f"{request.method} {_path_of(request.url)}"


def _path_of(url: str | None) -> str:
    """The path of a URL, without its query (which may carry filters) or host."""
    return requests.utils.urlparse(url or "").path or "/"


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "no content type").split(";")[0]


def _short_reason(response: requests.Response) -> str:
    return f"{response.reason or ''}".strip() or _content_type(response)
