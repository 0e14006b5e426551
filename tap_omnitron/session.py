"""The one HTTP stack: a `requests.Session` per tap, with the bounds a hostile network needs.

requests brings proxies from the environment, TLS with the CA bundle users expect, IDNA,
chunked and gzip answers. What it leaves open is bounded here, for every request the tap
sends (list pages, details, the login, retries):

* a **deadline** per request. A read timeout applies to each read, so a server that drips
  a byte at a time holds a request for ever; as urllib3's documentation advises, a watcher
  thread ends a request that runs past its deadline (it shortens the socket's timeout, so
  the next read fails and the request is retried);
* a **cap on the decompressed body**, counted while it is read: a 200 KB gzip body can
  inflate to 200 MiB;
* **one pause** that holds back every thread while a server's `Retry-After` runs (see
  `retry.Pause`);
* **metrics**: every request is timed (`http_request_duration`) and counted
  (`http_request_count`) here, where it is sent, so retries and the login are included
  (`RequestMetrics` writes the lines).
"""

from __future__ import annotations

import contextlib
import functools
import re
import string
import threading
import time
import typing as t
from collections import deque
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from singer_sdk import metrics

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from tap_omnitron.retry import Pause

MIB = 1 << 20
_CHUNK = 64 * 1024  # bytes read at a time while the cap is counted
_ABANDON_TIMEOUT = 0.01  # seconds: what a read may wait once its request is past its deadline


@dataclass(frozen=True)
class Limits:
    """How long a request may take and how large its answer may be (all settings)."""

    connect_timeout: float
    read_timeout: float
    deadline: float  # seconds for the whole request, answer read in full
    max_body: int  # bytes, decompressed


class BodyTooLarge(requests.exceptions.RequestException):
    """The answer grew past `max_response_mb` while it was read."""


class Closed(requests.exceptions.RequestException):
    """The run is ending: no request is sent any more."""


class DeadlineExceeded(requests.exceptions.Timeout):
    """The request ran past `request_timeout`; a Timeout, so it is retried like one."""


class OmnitronSession(requests.Session):
    """A session that holds every request to the shared pause, its deadline and its metrics.

    `name` maps a request's path to the (stream, endpoint) its metrics carry.
    """

    def __init__(self, *, limits: Limits, pool_size: int, pause: Pause, name: Callable[[str], tuple[str, str]]) -> None:
        super().__init__()
        self.limits = limits
        self.pause = pause
        self._name = name
        self._watcher = _Watcher(limits.deadline)
        adapter = _BoundedAdapter(limits.max_body, pool_size)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers.update({"Accept": "application/json", "User-Agent": user_agent()})
        self.cookies = _NoCookies()
        self.sent = 0  # requests sent, retries and the login included: for the run's summary
        self._closed = False
        self._metrics = RequestMetrics()
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        """Send after any pause, within the deadline; redirects are never followed (they would
        carry the token elsewhere)."""
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", (self.limits.connect_timeout, self.limits.read_timeout))
        if not self.trust_env:  # then requests would only copy them, parsing the URL to do so
            kwargs.setdefault("proxies", self.proxies)
        self.pause.wait()
        stream, endpoint = self._name(urlsplit(request.url or "").path)
        with self._lock:
            if self._closed:  # after `close`, `sent` is final: the summary counts what the server saw
                msg = "not sent, the run is ending"
                raise Closed(msg)
            self.sent += 1
        ticket = self._watcher.arm(self.limits.deadline)
        started = time.perf_counter()
        status: int | None = None
        try:
            response = super().send(request, **kwargs)
            status = response.status_code
        except requests.exceptions.RequestException as exc:
            if ticket.expired:
                msg = f"no complete answer within request_timeout ({self.limits.deadline:g} s)"
                raise DeadlineExceeded(msg) from exc
            raise
        finally:
            self._watcher.disarm(ticket)
            self._metrics.add(stream, endpoint, status, time.perf_counter() - started)
        return response

    def close(self) -> None:
        """Close the connections, ending the requests still in flight at once, and write the
        request counts. No request is sent after this."""
        with self._lock:
            self._closed = True
        self._watcher.abandon_all()
        super().close()
        self._metrics.close()


class RequestMetrics:
    """The SDK's `http_request_duration` line for every request, and its `http_request_count`,
    written by one thread in batches, at most `every` seconds after the request.

    Written by the thread that sent the request, amid its HTTP work, a line cost 60 to 85 µs of
    CPU at zero latency (8 % of a sync's, `make bench`'s c3); in batches, about a third of that.
    After `close` (which writes what waits), a request still in flight writes its own line.
    """

    def __init__(self, every: float = 0.5) -> None:
        self._every = every
        self._waiting: deque[tuple[str, str, int | None, float]] = deque()
        self._counters: dict[tuple[str, str], metrics.Counter] = {}
        self._lock = threading.Lock()  # one writer at a time: lines in the order of the requests
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, stream: str, endpoint: str, status: int | None, seconds: float) -> None:
        self._waiting.append((stream, endpoint, status, seconds))
        if self._closed.is_set():
            self._write()
        elif self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="omnitron-metrics", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        """Write what waits, and end the request counts (their closing lines)."""
        self._closed.set()
        self._write()
        with self._lock:
            for counter in self._counters.values():
                counter.exit()
            self._counters.clear()

    def _run(self) -> None:
        while not self._closed.wait(self._every):
            self._write()

    def _write(self) -> None:
        logger = metrics.get_metrics_logger()
        with self._lock:
            while self._waiting:
                stream, endpoint, status, seconds = self._waiting.popleft()
                failed = status is None or status >= 400  # noqa: PLR2004  (HTTP status codes read better as numbers)
                point = metrics.Point(
                    "timer",
                    metric=metrics.Metric.HTTP_REQUEST_DURATION,
                    value=seconds,
                    tags={
                        metrics.Tag.STREAM: stream,
                        metrics.Tag.ENDPOINT: endpoint,
                        metrics.Tag.HTTP_STATUS_CODE: status,
                        metrics.Tag.STATUS: metrics.Status.FAILED if failed else metrics.Status.SUCCEEDED,
                    },
                )
                metrics.log(logger, point)
                counter = self._counters.get((stream, endpoint))
                if counter is None:
                    counter = self._counters[stream, endpoint] = metrics.http_request_counter(stream, endpoint)
                counter.increment()


class _NoCookies(requests.cookies.RequestsCookieJar):
    """A jar that keeps nothing. The tap sends no cookies (`streams.build_prepared_request`
    prepares without them, and the login must not carry a session's); reading every answer's
    headers for them was 2 % of a detail request's CPU."""

    def extract_cookies(self, response: t.Any, request: t.Any) -> None:  # noqa: ARG002  (http.cookiejar's signature)
        return


class _BoundedAdapter(HTTPAdapter):
    """requests' adapter, with each connection watched for its deadline and each body capped."""

    def __init__(self, max_body: int, pool_size: int) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.max_body = max_body
        self._pools: dict[tuple, t.Any] = {}
        self._pools_lock = threading.Lock()

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: t.Any,
        proxies: Mapping[str, str] | None = None,
        cert: t.Any = None,
    ) -> t.Any:
        """The pool for a request, its connections made watchable (`ConnectionCls` is the
        pool's documented class attribute for the connections it makes).

        Found once per origin and TLS settings: every request of a run goes to one host, and
        requests would work its pool key out again for each (a stat of the CA bundle included).
        """
        scheme, netloc, *_ = urlsplit(request.url or "")
        key = (scheme.lower(), netloc, str(verify), str(cert), frozenset((proxies or {}).items()))
        pool: t.Any = self._pools.get(key)  # an HTTP(S)ConnectionPool
        if pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if not getattr(pool.ConnectionCls, "watched", False):
                pool.ConnectionCls = _watched(pool.ConnectionCls)
            with self._pools_lock:
                self._pools[key] = pool
        return pool

    def close(self) -> None:
        with self._pools_lock:
            self._pools.clear()
        super().close()

    def build_response(self, req: requests.PreparedRequest, resp: t.Any) -> requests.Response:
        response = super().build_response(req, resp)
        response.raw = _CappedBody(response.raw, self.max_body)
        return response


class _CappedBody:
    """The raw body, read through a count of its decompressed bytes.

    A body sent as it is, is read 64 KiB at a time whatever requests asks for (10 KiB for
    `Response.content`): a detailed order in one read through urllib3, not two (2 % of a
    detail request's CPU); the tap reads every body whole. A compressed one is read in the
    pieces asked for, at most 64 KiB: urllib3 before 2.6 inflated a whole piece at once.
    """

    def __init__(self, raw: t.Any, limit: int) -> None:
        self._raw = raw
        self._limit = limit

    def stream(self, amt: int = _CHUNK, decode_content: bool | None = None) -> Iterator[bytes]:  # noqa: FBT001  (urllib3's signature)
        total = 0
        piece = min(amt, _CHUNK) if self._raw.headers.get("Content-Encoding") else _CHUNK
        for chunk in self._raw.stream(piece, decode_content=decode_content):
            total += len(chunk)
            if total > self._limit:
                self._raw.close()
                msg = f"an answer larger than max_response_mb ({self._limit // MIB} MiB) once decompressed"
                raise BodyTooLarge(msg)
            yield chunk

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._raw, name)


@dataclass
class _Ticket:
    """One request's deadline, and the connection that carries it once it is sent."""

    due: float
    connection: t.Any = None
    expired: bool = False


_current = threading.local()  # the ticket of the request this thread is sending


class _Watcher:
    """Ends requests that run past their deadline, from one daemon thread.

    It looks at the requests in flight (no more than the pool's threads) a few times per
    deadline, so a request ends at most a quarter of its deadline late.
    """

    def __init__(self, deadline: float) -> None:
        self._every = min(1.0, deadline / 4)
        self._active: dict[int, _Ticket] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> _Ticket:
        ticket = _Ticket(time.monotonic() + seconds)
        _current.ticket = ticket
        with self._lock:
            self._active[id(ticket)] = ticket
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="omnitron-deadlines", daemon=True)
                self._thread.start()
        return ticket

    def abandon_all(self) -> None:
        with self._lock:
            tickets = list(self._active.values())
        for ticket in tickets:
            ticket.expired = True
            _abandon(ticket.connection)

    def disarm(self, ticket: _Ticket) -> None:
        with self._lock:
            self._active.pop(id(ticket), None)
        ticket.connection = None
        _current.ticket = None

    def _run(self) -> None:
        while True:
            time.sleep(self._every)
            now = time.monotonic()
            with self._lock:
                late = [ticket for ticket in self._active.values() if ticket.due <= now and not ticket.expired]
            for ticket in late:
                ticket.expired = True
                _abandon(ticket.connection)


def _abandon(connection: t.Any) -> None:
    """Make the connection's next read fail at once (closing a socket another thread reads
    from is not reliable; shortening its timeout is)."""
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(_ABANDON_TIMEOUT)


_WATCHED: dict[type, type] = {}


def _watched(connection_class: t.Any) -> type:
    """A subclass of the pool's connection class that tells the current request's ticket
    which connection carries it (made once per class)."""
    if connection_class not in _WATCHED:

        def request(self: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            ticket = getattr(_current, "ticket", None)
            if ticket is not None:
                ticket.connection = self
                if ticket.expired:
                    _abandon(self)
            return connection_class.request(self, *args, **kwargs)

        _WATCHED[connection_class] = type(
            f"Watched{connection_class.__name__}", (connection_class,), {"request": request, "watched": True}
        )
    return _WATCHED[connection_class]


_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PATH = re.compile(r"(?:/(?:[A-Za-z0-9_~-]|%[0-9A-F]{2})*)+")  # no dots, so no "." or ".." segments
_QUERY = re.compile(r"(?:[A-Za-z0-9._~=&+-]|%[0-9A-F]{2})*")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


class RequestTemplate:
    """GET requests under one base URL: prepared by requests once, then copied with a URL each.

    requests prepares every request from nothing: it parses and quotes the whole URL again,
    a byte at a time, and makes a cookie jar; a fifth of the CPU of a detail request (counted
    in instructions with valgrind). Here a request is a copy (`PreparedRequest.copy`) of one
    requests prepared, headers included, with its own URL: the prepared base URL followed by
    the path and query, when these hold nothing requests would change (plain characters,
    escapes of reserved ones, no dot segments); any other URL requests prepares itself.
    `tests/test_unit_session.py` checks that both give the same request.
    """

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        self._base = base_url  # as `settings.normalise_base_url` leaves it: no trailing "/"
        self._template = requests.Request("GET", f"{base_url}/", headers=dict(headers)).prepare()
        self._prepared_base = (self._template.url or "")[:-1]

    def prepare(self, url: str, query: str) -> requests.PreparedRequest:
        request = self._template.copy()
        rest = url[len(self._base) :] if url.startswith(self._base) else ""
        if _PATH.fullmatch(rest) and _QUERY.fullmatch(query) and _unchanged_escapes(rest + query):
            request.url = f"{self._prepared_base}{rest}?{query}" if query else f"{self._prepared_base}{rest}"
        else:
            request.prepare_url(url, query)
        return request


def _unchanged_escapes(text: str) -> bool:
    """No escape that requests would turn back into the character (%41 is "A")."""
    return all(chr(int(code, 16)) not in _UNRESERVED for code in _ESCAPE.findall(text))


@functools.cache
def user_agent() -> str:
    """Read once: the package metadata is looked for on every `sys.path` entry."""
    try:
        return f"tap-omnitron/{version('tap-omnitron')}"
    except PackageNotFoundError:
        return "tap-omnitron"
