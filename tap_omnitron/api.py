"""Omnitron's API as the tap uses it: its paths, what a good answer is, and what the streams share.

`read` is the one judge of an answer: a checked `Answer` with the decoded JSON, a 404 for
the caller to weigh, or the error it stands for (retried or not, see `retry`). Bodies are
decoded with every non-integer number as `Decimal`: money never meets a float.
"""

from __future__ import annotations

import re
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urljoin, urlsplit

import msgspec

from tap_omnitron import settings
from tap_omnitron.auth import LOGIN_PATH, TokenAuth
from tap_omnitron.errors import OmnitronError, server_detail
from tap_omnitron.retry import AWAY_STATUSES, Away, Broken, RetryPolicy, retry_after
from tap_omnitron.session import MIB, Limits, OmnitronSession

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests

API_PATH = "/api/i1"
ORDERS_PATH = f"{API_PATH}/orders/"
DETAIL_PATH = f"{API_PATH}/orders_integration/{{order_id}}/detailed_integration/"

Shape = t.Callable[[t.Any], "str | None"]  # what is wrong with a decoded body, or None

_decoder = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(content: bytes) -> t.Any:
    """Parse JSON with every non-integer number as `Decimal`."""
    return _decoder.decode(content)


def a_page(body: t.Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "expected an object with a 'results' list"
    if not all(isinstance(order, dict) for order in body["results"]):
        return "expected a 'results' list of objects"
    return None


def an_order(body: t.Any) -> str | None:
    if not isinstance(body, dict) or "pk" not in body:
        return "expected an order object with a 'pk'"
    return None


@dataclass(frozen=True)
class Answer:
    """A checked answer: the decoded JSON of a 200, or a 404 (`body` None) for the caller."""

    what: str  # "GET /api/i1/orders/", for messages
    status: int
    body: t.Any
    date: str | None  # the server's Date header

    @property
    def found(self) -> bool:
        return self.status != 404  # noqa: PLR2004  (HTTP status codes read better as numbers)


class Unauthorized(OmnitronError):
    """A 401: the stream decides whether a new login can help."""


def read(response: requests.Response, what: str, shape: Shape) -> Answer:
    """The `Answer` a response stands for, or the error it is (see the module docstring)."""
    status = response.status_code
    if status in AWAY_STATUSES:
        raise Away(
            f"HTTP {status} {_reason(response)}".strip(), retry_after=retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500:  # noqa: PLR2004  (HTTP status codes read better as numbers)
        raise Broken(f"HTTP {status} {_reason(response)}".strip())
    date = response.headers.get("Date")
    if status == 404:  # noqa: PLR2004  (HTTP status codes read better as numbers)
        return Answer(what, status, None, date)
    if 300 <= status < 400:  # noqa: PLR2004  (a redirect, not followed: it would carry the token along)
        location = urljoin(response.url, response.headers.get("Location") or "")
        moved = urlsplit(location)._replace(query="", fragment="").geturl()
        raise OmnitronError(f"{what} answered {status}, moved to {moved}: check base_url")
    if status == 401:  # noqa: PLR2004  (HTTP status codes read better as numbers)
        raise Unauthorized(f"{what} answered 401 ({server_detail(response.content) or 'unauthorized'})")
    if status != 200:  # noqa: PLR2004  (HTTP status codes read better as numbers)
        detail = server_detail(response.content) or _reason(response)
        raise OmnitronError(f"{what} answered HTTP {status}: {detail}")
    try:
        body = decode_json(response.content)
    except msgspec.DecodeError:
        content_type = response.headers.get("Content-Type", "no content type").split(";")[0][:60]
        raise Broken(f"HTTP 200 with a body that is not valid JSON ({content_type})") from None
    if problem := shape(body):
        raise Broken(f"HTTP 200 with an unexpected body: {problem}")
    return Answer(what, status, body, date)


def _reason(response: requests.Response) -> str:
    """The status line's reason, if it is plain text (a server may send anything there)."""
    reason = response.reason if isinstance(response.reason, str) else ""
    return reason if re.fullmatch(r"[A-Za-z \-]{0,40}", reason) else ""


def endpoint(path: str) -> tuple[str, str]:
    """(stream, endpoint) for a request path: the tags of its metrics."""
    if path.endswith(LOGIN_PATH):
        return "login", LOGIN_PATH
    if path.endswith(ORDERS_PATH):
        return "orders", ORDERS_PATH
    if "/orders_integration/" in path:
        return "order_details", DETAIL_PATH
    return "unknown", path


_T = t.TypeVar("_T")


def _once(make: Callable[[Omnitron], _T]) -> property:
    """A property made on first use, once, whichever threads ask at the same moment.

    `functools.cached_property` lost its lock in Python 3.12: the pools' threads, all asking for
    the session, the token and the retry policy as the run starts, then each made their own (a
    pause not shared, requests not counted, connections not closed)."""
    name = make.__name__

    def get(self: Omnitron) -> _T:
        try:
            return self.__dict__[name]
        except KeyError:
            with self._making:
                if name not in self.__dict__:
                    self.__dict__[name] = make(self)
                return self.__dict__[name]

    return property(get, doc=make.__doc__)


class Omnitron:
    """What every stream shares: where Omnitron is, one session, one token, one retry policy,
    and the threads that keep requests in flight: `max_concurrency` for order details, and as
    many for list pages, of which one runs beside the details (the next page) and all when a
    pass only reads the list. At 1, one thread sends every request, one at a time.

    Nothing is opened before the first request, so discovery needs no settings.
    """

    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self._config = config
        self._making = threading.RLock()  # for `_once`; re-entrant, as the session needs the retry policy
        self.max_concurrency = int(config.get("max_concurrency") or settings.DEFAULT_MAX_CONCURRENCY)

    @_once
    def base_url(self) -> str:
        return settings.normalise_base_url(self._config["base_url"])

    @_once
    def limits(self) -> Limits:
        config = self._config
        return Limits(
            connect_timeout=float(config.get("connect_timeout", settings.DEFAULT_CONNECT_TIMEOUT)),
            read_timeout=float(config.get("read_timeout", settings.DEFAULT_READ_TIMEOUT)),
            deadline=float(config.get("request_timeout", settings.DEFAULT_REQUEST_TIMEOUT)),
            max_body=int(config.get("max_response_mb", settings.DEFAULT_MAX_RESPONSE_MB)) * MIB,
        )

    @_once
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=int(self._config.get("max_retries", settings.DEFAULT_MAX_RETRIES)),
            max_seconds=float(self._config.get("max_retry_seconds", settings.DEFAULT_MAX_RETRY_SECONDS)),
        )

    @_once
    def session(self) -> OmnitronSession:
        session = OmnitronSession(
            limits=self.limits, pool_size=2 * self.max_concurrency + 1, pause=self.retry.pause, name=endpoint
        )
        # The environment is read once, here, for the one host every request goes to.
        session.trust_env = False
        session.verify = settings.ca_bundle(self._config)
        if proxy := settings.environment_proxy(self.base_url):
            session.proxies = {urlsplit(self.base_url).scheme: proxy}
        return session

    @_once
    def auth(self) -> TokenAuth:
        config = self._config
        return TokenAuth(
            self.session,
            self.base_url,
            self.retry,
            api_token=config.get("api_token"),
            username=config.get("username"),
            password=config.get("password"),
        )

    @_once
    def details(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="omnitron-details")

    @_once
    def pages(self) -> ThreadPoolExecutor:
        if self.max_concurrency == 1:
            return self.details
        return ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="omnitron-pages")

    def close(self) -> None:
        """Drop what is queued, end what is in flight or waiting to be retried, and close the
        connections: a run that ends, ends now, and once this returns no thread sends again
        (the summary's count of requests is final)."""
        if "retry" in self.__dict__:
            self.retry.stop()
        if "session" in self.__dict__:
            self.session.close()
        for pool in ("details", "pages"):
            if pool in self.__dict__:
                self.__dict__[pool].shutdown(wait=True, cancel_futures=True)
