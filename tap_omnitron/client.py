"""Every request to Omnitron goes through `OmnitronClient`: one path from a stream to the socket.

`start` builds the request (path, query, the token) and hands it to the transport, which
writes it on a free keep-alive connection and returns at once. `Pending.answer` reads the
answer later, logs in again once on a 401, retries what is worth retrying, and checks what
came back: an `Answer` with the decoded JSON, a 404 for the caller to judge, or one clear
error. Why the tap speaks HTTP itself instead of through the SDK's `RESTStream`: see the
README's design notes.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import quote, urlencode, urljoin, urlsplit

import msgspec

from tap_omnitron import settings
from tap_omnitron.auth import Token
from tap_omnitron.errors import AuthenticationError, GaveUp, OmnitronError, TransientError, server_detail
from tap_omnitron.retry import RetryPolicy, retry_after
from tap_omnitron.transport import Exchange, HttpResponse, Transport

API_PATH = "/api/i1"
ORDERS_PATH = f"{API_PATH}/orders/"
DETAIL_PATH = f"{API_PATH}/orders_integration/{{order_id}}/detailed_integration/"
REQUEST_TIMEOUT = 60  # seconds; a hung server is a transient fault, retried

Shape = t.Callable[[t.Any], "str | None"]  # what is wrong with a decoded body, or None

_decoder = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(content: bytes) -> t.Any:  # noqa: ANN401
    """Parse JSON with every non-integer number as `Decimal`: money never meets a float."""
    return _decoder.decode(content)


def a_page(body: t.Any) -> str | None:  # noqa: ANN401
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "expected an object with a 'results' list"
    return None


def an_order(body: t.Any) -> str | None:  # noqa: ANN401
    if not isinstance(body, dict) or "pk" not in body:
        return "expected an order object with a 'pk'"
    return None


def detail_path(order_id: t.Any) -> str:  # noqa: ANN401
    return DETAIL_PATH.format(order_id=quote(str(order_id), safe=""))


@dataclass(frozen=True)
class Answer:
    """A checked answer: the decoded JSON of a 200, or a 404 (`body` None) for the caller."""

    what: str  # "GET /api/i1/orders/", for messages
    status: int
    body: t.Any
    date: str | None  # the server's Date header

    @property
    def found(self) -> bool:
        return self.status != 404  # noqa: PLR2004


class OmnitronClient:
    """Requests to one Omnitron with the current token; up to `max_in_flight` at once.

    Nothing is opened before the first request, so discovery needs no settings.
    """

    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self._config = config
        self.max_in_flight = int(config.get("max_concurrency") or settings.DEFAULT_MAX_CONCURRENCY)
        self.retry = RetryPolicy(int(config.get("max_retries", settings.DEFAULT_MAX_RETRIES)))
        self.requests = 0  # sent, retries included: for the run's summary

    @cached_property
    def _base(self) -> str:
        return settings.normalise_base_url(self._config["base_url"])

    @cached_property
    def _transport(self) -> Transport:
        # One connection more than detail requests in flight: the next list page's.
        return Transport(self._base, timeout=REQUEST_TIMEOUT, keep_idle=self.max_in_flight + 1)

    @cached_property
    def _token(self) -> Token:
        config = self._config
        return Token(
            post=self._post,
            api_token=config.get("api_token"),
            username=config.get("username"),
            password=config.get("password"),
        )

    @cached_property
    def _headers(self) -> str:
        return f"Accept: application/json\r\nUser-Agent: {user_agent()}\r\n"

    def start(self, path: str, params: t.Mapping[str, t.Any] | None = None, *, shape: Shape) -> Pending:
        """Send a GET now; `Pending.answer()` reads it later."""
        target = urlsplit(self._base).path + path + (f"?{urlencode(params)}" if params else "")
        key = self._token.key()
        return Pending(self, target, f"GET {path}", shape, key, self._send(target, key))

    def get(self, path: str, params: t.Mapping[str, t.Any] | None = None, *, shape: Shape) -> Answer:
        return self.start(path, params, shape=shape).answer()

    def read(self, pending: Pending) -> Answer:
        """The answer to `pending`; retries are sent one at a time, after it."""

        def attempt(number: int) -> Answer:
            exchange = pending.exchange if number == 0 else None
            if exchange is None:
                pending.key = self._token.key()
                exchange = self._send(pending.target, pending.key)
            response = exchange.response()
            if response.status == 401 and self._token.can_login:  # noqa: PLR2004
                pending.key = self._token.renew(rejected=pending.key)
                response = self._send(pending.target, pending.key).response()
            return self.check(response, pending.what, pending.shape)

        return self.retry.call(attempt, pending.what)

    def close(self) -> None:
        if "_transport" in self.__dict__:
            self._transport.close()

    def _send(self, target: str, key: str) -> Exchange:
        self.requests += 1
        return self._transport.start("GET", target, f"{self._headers}Authorization: Token {key}\r\n")

    def _post(self, path: str, body: bytes) -> HttpResponse:
        """The login request: retried like any other, but never with a token."""
        target = urlsplit(self._base).path + path
        headers = f"{self._headers}Content-Type: application/json\r\n"

        def attempt(_: int) -> HttpResponse:
            self.requests += 1
            response = self._transport.start("POST", target, headers, body).response()
            if error := _transient(response):
                raise error
            return response

        try:
            return self.retry.call(attempt, f"POST {path}")
        except GaveUp as exc:  # without a token no request can succeed: not one order's fault
            raise OmnitronError(f"login failed: {exc}") from None

    def check(self, response: HttpResponse, what: str, shape: Shape) -> Answer:
        """An `Answer`, or the error the response stands for."""
        status = response.status
        if error := _transient(response):
            raise error
        date = response.headers.get("date")
        if status == 404:  # noqa: PLR2004
            return Answer(what, status, None, date)
        if 300 <= status < 400:  # noqa: PLR2004  (not followed: it would carry the token along)
            location = urljoin(self._base + "/", response.headers.get("location") or "")
            moved = urlsplit(location)._replace(query="").geturl()
            msg = f"{what} answered {status}, moved to {moved}: check base_url"
            raise OmnitronError(msg)
        if status == 401:  # noqa: PLR2004
            detail = server_detail(response.body) or "unauthorized"
            hint = (
                "the login key was refused even after logging in again"
                if self._token.can_login
                else "check the api_token setting"
            )
            raise AuthenticationError(f"{what} answered 401 ({detail}): {hint}")
        if status != 200:  # noqa: PLR2004
            detail = server_detail(response.body) or _short_reason(response)
            raise OmnitronError(f"{what} answered HTTP {status}: {detail}")
        try:
            body = decode_json(response.body)
        except msgspec.DecodeError:
            # A proxy's HTML page or a cut-off body: transient, never emitted as records.
            content_type = response.headers.get("content-type", "no content type").split(";")[0]
            msg = f"HTTP {status} with a body that is not valid JSON ({content_type})"
            raise TransientError(msg, age=response.elapsed) from None
        if problem := shape(body):
            raise TransientError(f"HTTP {status} with an unexpected body: {problem}", age=response.elapsed)
        return Answer(what, status, body, date)


@dataclass
class Pending:
    """A request on the wire: `answer()` reads, checks and if need be repeats it."""

    client: OmnitronClient
    target: str  # path and query
    what: str  # "GET /api/i1/orders/", for messages
    shape: Shape
    key: str  # the token it was sent with
    exchange: Exchange

    def answer(self) -> Answer:
        return self.client.read(self)

    def cancel(self) -> None:
        """Not wanted after all: drop its connection instead of reading the answer."""
        self.exchange.abandon()


def _transient(response: HttpResponse) -> TransientError | None:
    """429 and 5xx (proxies' pages included) are worth retrying."""
    if response.status == 429 or response.status >= 500:  # noqa: PLR2004
        return TransientError(
            f"HTTP {response.status} {_short_reason(response)}".strip(),
            retry_after=retry_after(response.headers.get("retry-after")),
            age=response.elapsed,
        )
    return None


def _short_reason(response: HttpResponse) -> str:
    return response.reason.strip() or response.headers.get("content-type", "").split(";")[0]


def user_agent() -> str:
    try:
        return f"tap-omnitron/{version('tap-omnitron')}"
    except PackageNotFoundError:
        return "tap-omnitron"
