"""HTTP side of the Omnitron sandbox: routing, auth, pagination, faults, the Sandbox API and the CLI."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import os
import random
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import zlib
from email.utils import formatdate
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .data import SHAPES, STATUSES, Store, dumps, parse_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from datetime import datetime

FAULT_KINDS = ("429", "500", "502", "503", "504", "drop", "html200", "truncated")
DEFAULT_FAULT_KINDS = ("429", "502", "503", "drop")
# Answers that break HTTP or JSON clients in ways a status code cannot (Sandbox.hostile_plan).
# The first six deliver the normal answer in a hostile way; the last three replace it.
HOSTILE_KINDS = (
    "drip_body",
    "drip_head",
    "bad_status",
    "multi_gzip",
    "gzip_chunked",
    "truncated_close",
    "gzip_bomb",
    "not_json",
    "wrong_shape",
)
_BOMB_PREFIX = b'{"results": ['

JSON = "application/json"
HTML = "text/html; charset=utf-8"
_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_NGINX = (
    "<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_FAULT_PAGES = {
    500: b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n'
    b"  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n",
    **{code: _NGINX.format(code, _REASONS[code]).encode() for code in (502, 503, 504)},
}
_HTML200 = (
    '<!DOCTYPE html><html lang="tr"><head><meta charset="utf-8"><title>Omnitron</title></head>'
    "<body><h1>Bakım çalışması</h1><p>Omnitron is under maintenance, please try again later.</p>"
    "</body></html>"
).encode()
_NOT_FOUND_HTML = (
    b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    b"  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n"
)
_NOT_FOUND = dumps({"detail": "Not found."})
_MOVED = _NGINX.format(301, _REASONS[301]).encode()
_INVALID_PAGE = dumps({"detail": "Invalid page."})
_INVALID_TOKEN = "Invalid token."
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")  # what can follow "Token " in an Authorization header

_API = re.compile(r"^/api/(?:i1|v1)/(?:(auth/login)|(orders)|orders_integration/([^/.]+)/detailed_integration)/$")
_DATE_PARAM = re.compile(r"^(modified_date|created_date|date_placed)__(gte|gt|lte|lt)$")
_SORTABLE = ("id", "pk", "modified_date", "created_date", "date_placed")
LIST_ORDERS = ("id", "-id", "modified_date", "-modified_date")  # for a server that ignores ?sort=
_TRUTHY = {"true": True, "True": True, "1": True, "false": False, "False": False, "0": False}


@lru_cache(maxsize=8)  # a few clocks (skews) at once, each formatted once a second
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)


def _kinds(kinds: Iterable[Any] | str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A list or comma string of kinds, checked against ``allowed``."""
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k.strip()]
    out = tuple(str(k).strip() for k in kinds)
    bad = [k for k in out if k not in allowed]
    if bad:
        raise ValueError(f"unknown {what} kinds {bad}; choose from {', '.join(allowed)}")
    return out


def _normalise_kinds(kinds: Iterable[Any] | str | None) -> tuple[str, ...]:
    return DEFAULT_FAULT_KINDS if kinds is None else _kinds(kinds, FAULT_KINDS, "fault")


_bombs: dict[int, bytes] = {}
_bombs_lock = threading.Lock()


def _gzip_bomb(mib: int) -> bytes:
    """A gzip stream of about 1/1000 of ``mib`` MiB that inflates to ``mib`` MiB: a JSON-looking
    prefix, then spaces. Built once per size (under a lock: it takes about a second for 200 MiB),
    1 MiB at a time, so the inflated size is never in memory."""
    with _bombs_lock:
        if mib not in _bombs:
            z = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
            spaces = memoryview(b" " * (1 << 20))
            out = [z.compress(_BOMB_PREFIX)]
            left = (mib << 20) - len(_BOMB_PREFIX)
            while left > 0:
                n = min(left, len(spaces))
                out.append(z.compress(spaces[:n]))
                left -= n
            out.append(z.flush())
            _bombs[mib] = b"".join(out)
        return _bombs[mib]


def _gzip_members(body: bytes, members: int) -> bytes:
    """``body`` gzipped as this many concatenated gzip members (RFC 1952 allows several)."""
    cuts = [len(body) * i // members for i in range(members + 1)]
    return b"".join(gzip.compress(body[a:b], compresslevel=6) for a, b in itertools.pairwise(cuts))


def _chunked(body: bytes, pieces: int = 4) -> bytes:
    """``body`` in HTTP/1.1 chunked transfer coding, in a few chunks (never an empty one before the end)."""
    size = max(1, -(-len(body) // pieces))
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]  # TCP: requests are sockets
        with self._conns_lock:
            self._conns.add(request)
            self.sandbox.connections_accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]  # TCP: requests are sockets
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: _Server
    _hostile: str | None = None

    def setup(self) -> None:
        self.timeout = self.server.sandbox.keepalive_timeout or self.timeout
        super().setup()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (http.server's parameter name)
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = JSON,
        headers: Iterable[tuple[str, Any]] = (),
        encoding: str | None = None,
    ) -> None:
        """Answer; ``encoding`` names the Content-Encoding ``body`` already has. A planned hostile
        kind (``self._hostile``) changes how the answer is encoded and delivered, not what it says."""
        sb = self.server.sandbox
        hostile = self._hostile
        head = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            "Server: nginx",
            f"Date: {_http_date(int(sb.now().timestamp()))}",
            f"Content-Type: {ctype}",
        ]
        if hostile == "bad_status":
            head[0] = f"HTTP/1.1 \xb2{head[0][10:]}"  # superscript two for the first digit, as latin-1
        if hostile in ("multi_gzip", "gzip_chunked"):
            body, encoding = _gzip_members(body, 2 if hostile == "multi_gzip" else 1), "gzip"
        elif encoding is None and sb.gzip and ctype == JSON and "gzip" in self.headers.get("Accept-Encoding", ""):
            body, encoding = gzip.compress(body, compresslevel=1), "gzip"  # like nginx's gzip_types application/json
        if encoding:
            head.append(f"Content-Encoding: {encoding}")
        if hostile == "gzip_chunked":
            head.append("Transfer-Encoding: chunked")
            body = _chunked(body)
        else:
            head.append(f"Content-Length: {len(body)}")
        head.extend(f"{k}: {v}" for k, v in headers)
        self._served = getattr(self, "_served", 0) + 1
        if sb.keepalive_requests and self._served >= sb.keepalive_requests:
            self.close_connection = True  # like nginx's keepalive_requests
        if self.close_connection:
            head.append("Connection: close")
        head.append("\r\n")
        if sb.log_requests:  # stamped before the client can have read the answer
            sb._log(self.command, self.path, status)
        self._deliver("\r\n".join(head).encode("latin-1"), body)
        if sb.verbose:
            self.log_request(status, len(body))

    def _deliver(self, head: bytes, body: bytes) -> None:
        hostile = self._hostile
        if hostile in ("bad_status", "truncated_close"):
            self.close_connection = True  # after the answer, unannounced, as a crashing server would
        if hostile == "drip_head":
            self._drip(head)
            self.wfile.write(body)
        elif hostile == "drip_body":
            self.wfile.write(head)
            self._drip(body)
        elif hostile == "truncated_close":
            self.wfile.write(head + body[: len(body) // 2])
        else:
            self.wfile.write(head + body)

    def _drip(self, data: bytes) -> None:
        """One byte every ``drip_interval`` seconds; a client that goes away ends it (the write fails)."""
        interval = self.server.sandbox.drip_interval
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            if i + 1 < len(data):
                time.sleep(interval)

    def _json(self, status: int, obj: Any, headers: Iterable[tuple[str, Any]] = ()) -> None:
        self._send(status, dumps(obj), JSON, headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # not supported; do not try to resync the stream
            return b""
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method: str) -> None:
        sb = self.server.sandbox
        self._hostile = None  # the hostile kind planned for this request, if any
        if sb.log_requests or sb.login_key is not None:
            sb._saw_headers(self.headers.items())
        try:
            split = urlsplit(self.path)
            body = self._read_body()
            if split.path.startswith("/_sandbox/"):
                return self._control(method, split.path, body)
            self._serve_api(sb, method, split.path, split.query, body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # noqa: BLE001  (a bug or a failing hook: answer 500 like Django would, and show it)
            traceback.print_exc()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send(500, _FAULT_PAGES[500], HTML)

    # -- the Omnitron API -----------------------------------------------------------
    def _serve_api(self, sb: Sandbox, method: str, path: str, query: str, body: bytes) -> None:
        sb._count(path)
        self._hostile = sb._planned_hostile(path)
        if self._hostile == "gzip_bomb":
            return self._send(200, _gzip_bomb(sb.bomb_mib), JSON, encoding="gzip")
        if self._hostile == "not_json":
            return self._send(200, b"<html>oops</html>", JSON)
        if self._hostile == "wrong_shape":
            return self._send(200, b"[1, 2, 3]", JSON)
        if sb.redirect_to:
            location = sb.redirect_to + path + (f"?{query}" if query else "")
            return self._send(301, _MOVED, HTML, [("Location", location)])
        with sb._in_flight():
            self._answer_api(sb, method, path, query, body)

    def _answer_api(self, sb: Sandbox, method: str, path: str, query: str, body: bytes) -> None:
        if sb.latency_ms:
            time.sleep(sb.latency_ms / 1000.0)
        m = _API.match(path)
        if m is None:
            if method == "GET" and not path.endswith("/") and _API.match(path + "/"):
                return self._send(301, b"", HTML, [("Location", path + "/" + (f"?{query}" if query else ""))])
            return self._send(404, _NOT_FOUND_HTML, HTML)
        login, orders, detail_id = m.groups()
        if login:
            if method != "POST":
                return self._not_allowed(method, "POST, OPTIONS")
            return self._login(sb, body)
        # a hostile answer replaces this request's faults, planned or drawn
        fault = None if self._hostile else sb._planned_fault(path) or sb._draw_fault()
        if fault is not None and fault != "truncated":
            return self._fault(sb, fault)
        if fault == "truncated":
            self.wfile = _Truncating(self.wfile)
        try:
            err = sb._authenticate(self.headers.get("Authorization"))
            if err:
                return self._json(401, {"detail": err}, [("WWW-Authenticate", "Token")])
            if method != "GET":
                return self._not_allowed(method, "GET, HEAD, OPTIONS")
            if orders:
                return self._list(sb, path, query)
            try:
                oid = int(detail_id)
            except ValueError:
                oid = None
            if sb.forbid_details:  # a token without the permission to read orders_integration
                return self._json(403, {"detail": "You do not have permission to perform this action."})
            if oid in sb.broken_details:  # a serializer tripping over this one order, every time
                return self._send(500, _FAULT_PAGES[500], HTML)
            payload = None if oid is None or oid in sb.missing_details else sb.store.detail_bytes(oid)
            if payload is None:
                return self._send(404, _NOT_FOUND)
            self._send(200, payload)
        finally:
            if isinstance(self.wfile, _Truncating):
                self.wfile = self.wfile.raw

    def _not_allowed(self, method: str, allow: str) -> None:
        self._json(405, {"detail": f'Method "{method}" not allowed.'}, [("Allow", allow)])

    def _login(self, sb: Sandbox, body: bytes) -> None:
        ctype = self.headers.get("Content-Type", "")
        try:
            if "json" in ctype or body[:1] == b"{":
                data = json.loads(body or b"{}")
            else:
                data = {k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()}
            if not isinstance(data, dict):
                raise ValueError("JSON object expected")  # noqa: TRY004, TRY301  (Django's 400 below, as for bad JSON)
        except ValueError as exc:
            return self._json(400, {"detail": f"JSON parse error - {exc}"})
        missing = {f: ["This field is required."] for f in ("username", "password") if not data.get(f)}
        if missing:
            return self._json(400, missing)
        if data["username"] != sb.username or data["password"] != sb.password:
            return self._json(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        self._json(200, {"key": sb.issue_token(sb.login_key)})

    def _fault(self, sb: Sandbox, kind: str) -> None:
        if kind == "drop":
            self.close_connection = True  # the socket is closed without writing anything
        elif kind == "429":
            ra = sb.retry_after
            ra_text = str(int(ra)) if float(ra).is_integer() else str(ra)
            unit = "second" if ra_text == "1" else "seconds"
            self._json(
                429,
                {"detail": f"Request was throttled. Expected available in {ra_text} {unit}."},
                [("Retry-After", ra_text)],
            )
        elif kind == "html200":
            self._send(200, _HTML200, HTML)
        else:
            self._send(int(kind), _FAULT_PAGES[int(kind)], HTML)

    def _list(self, sb: Sandbox, path: str, query: str) -> None:
        q = parse_qs(query, keep_blank_values=True)

        def get(k: str, default: str | None = None) -> str | None:
            return q[k][-1] if k in q else default

        try:
            limit = int(get("limit", str(sb.default_limit)))
            page_raw = get("page", "1")
            page = -1 if page_raw == "last" else int(page_raw)
            if limit < 1:
                raise ValueError  # noqa: TRY301  (the same 404 as a limit that is no number)
        except ValueError:
            return self._send(404, _INVALID_PAGE)
        limit = min(limit, sb.max_limit)
        filters, errors = self._filters(sb, q)
        if errors:
            return self._json(400, errors)
        sort = self._sort(sb.list_order or get("sort"))
        if sb.on_list_page is not None:
            sb.on_list_page(sb, page)
        if sb.mutate_every_page:
            sb.store.mutate(**sb.mutate_every_page)
        store = sb.store
        with store.lock:
            recs = store.view(sort, filters)
            count = len(recs)
            pages = max(1, -(-count // limit))
            if page == -1:
                page = pages
            if page < 1 or page > pages:
                return self._send(404, _INVALID_PAGE)
            chunk = b",".join(store.list_bytes(r) for r in recs[(page - 1) * limit : page * limit])
        scheme = "https" if self.server.sandbox.tls else "http"
        address, port = self.server.server_address[:2]
        base = f"{scheme}://{self.headers.get('Host') or f'{address}:{port}'}{path}"
        nxt = _page_url(base, q, page + 1) if page < pages else None
        prev = _page_url(base, q, page - 1) if page > 1 else None
        head = dumps({"count": count, "next": nxt, "previous": prev})[:-1]
        self._send(200, head + b',"results":[' + chunk + b"]}")

    @staticmethod
    def _sort(value: str | None) -> tuple[tuple[str, bool], ...]:
        terms = []
        for raw in (value or "").split(","):
            term = raw.strip()
            name = term.lstrip("-")
            if name in _SORTABLE:
                terms.append((name, term.startswith("-")))
        return tuple(terms) or (("id", True),)

    @staticmethod
    def _filters(sb: Sandbox, q: dict[str, list[str]]) -> tuple[tuple, dict[str, list[str]]]:
        filters: list[tuple] = []
        errors: dict[str, list[str]] = {}
        for key in sorted(q):
            value = q[key][-1]
            if value == "":
                continue  # django-filter ignores empty values
            m = _DATE_PARAM.match(key)
            if m:
                if sb.ignore_filters:
                    continue
                try:
                    filters.append(("date", m.group(1), m.group(2), parse_iso(value)))
                except ValueError:
                    errors[key] = ["Enter a valid date/time."]
            elif key in ("status", "status__in"):
                codes = [c.strip() for c in value.split(",")] if key == "status__in" else [value]
                bad = [c for c in codes if c not in STATUSES]
                if bad:
                    errors[key] = [f"Select a valid choice. {bad[0]} is not one of the available choices."]
                else:
                    filters.append(("status", frozenset(codes)))
            elif key == "is_send":
                if value in _TRUTHY:
                    filters.append(("is_send", _TRUTHY[value]))
            elif key == "pk__in":
                try:
                    filters.append(("pk_in", frozenset(int(v) for v in value.split(","))))
                except ValueError:
                    errors[key] = ["Enter a number."]
        return tuple(filters), errors

    # -- control endpoints (no auth, no faults, not counted) ----------------------------
    def _control(self, method: str, path: str, body: bytes) -> None:
        sb = self.server.sandbox
        try:
            data = json.loads(body) if body else {}
        except ValueError as exc:
            return self._json(400, {"detail": f"JSON parse error - {exc}"})
        name = path[len("/_sandbox/") :].strip("/")
        if (name, method) == ("stats", "GET"):
            return self._json(200, sb.stats())
        if (name, method) == ("orders", "GET"):
            return self._json(200, sb.store.ground_truth())
        if (name, method) == ("mutate", "POST"):
            spec = {k: int(data.get(k, 0)) for k in ("modify", "create", "delete")}
            out = sb.store.mutate(**spec)
            if data.get("modify_ids"):
                out["modified"] += sb.modify(ids=data["modify_ids"])
            if data.get("delete_ids"):
                out["deleted"] += sb.delete(ids=data["delete_ids"])
            return self._json(200, out)
        if name == "faults" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    sb.set_faults(**{k: v for k, v in data.items() if k in _FAULT_SETTINGS})
                except (TypeError, ValueError) as exc:
                    return self._json(400, {"detail": str(exc)})
            return self._json(200, sb.fault_settings())
        if (name, method) == ("expire-tokens", "POST"):
            return self._json(200, {"expired": sb.expire_tokens()})
        if (name, method) == ("reset-stats", "POST"):
            sb.reset_stats()
            return self._json(200, sb.stats())
        self._json(404, {"detail": "Not found."})


_FAULT_SETTINGS = (
    "rate",
    "kinds",
    "retry_after",
    "seed",
    "latency_ms",
    "missing_details",
    "broken_details",
    "clock_skew",
)


class _Truncating:
    """Wraps wfile for the 'truncated' fault: cuts the body in half and fixes Content-Length."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        head, sep, body = data.partition(b"\r\n\r\n")
        cut = body[: max(1, len(body) // 2)]
        head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(cut), head)
        return self.raw.write(head + sep + cut)

    def flush(self) -> None:
        self.raw.flush()


def _page_url(base: str, q: dict[str, list[str]], page: int) -> str:
    """Like DRF's replace_query_param / remove_query_param (page 1 drops the parameter)."""
    q = dict(q)
    if page == 1:
        q.pop("page", None)
    else:
        q["page"] = [str(page)]
    return f"{base}?{urlencode(sorted(q.items()), doseq=True)}" if q else base


class Sandbox:
    """A local fake Omnitron. Use as a context manager or call start()/stop().

    Data is generated at construction; the server starts on ``start()`` (127.0.0.1, free port by default).
    ``outage()`` and ``resume()`` take it down and up again on the same port, keeping everything else.
    """

    def __init__(
        self,
        *,
        orders: int = 50,
        seed: int | str = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        api_token: str | None = "sandbox-token",
        username: str = "sandbox",
        password: str = "sandbox-password",
        max_limit: int = 200,
        default_limit: int = 10,
        ignore_filters: bool = False,
        token_ttl_requests: int | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[Any] | str | None = None,
        retry_after: float = 1,
        on_list_page: Callable[[Sandbox, int], Any] | None = None,
        mutate_between_pages: Callable[[Sandbox, int], Any] | None = None,
        mutate_every_page: dict[str, int] | None = None,
        missing_details: Iterable[int] = (),
        broken_details: Iterable[int] = (),
        forbid_details: bool = False,
        fault_plan: dict[str, Iterable[str]] | None = None,
        keepalive_requests: int = 0,
        keepalive_timeout: float = 0,
        gzip: bool = False,
        tls: tuple[str, str] | None = None,
        redirect_to: str | None = None,
        log_requests: bool = False,
        now: datetime | None = None,
        shape: str = "documented",
        list_order: str | None = None,
        documents: tuple[list[dict[str, Any]], dict[int, dict[str, Any]]] | None = None,
        clock_skew: float = 0,
        hostile_plan: dict[str, Iterable[str] | str] | None = None,
        drip_interval: float = 1.0,
        bomb_mib: int = 200,
        login_key: str | None = None,
        verbose: bool = False,
    ) -> None:
        if list_order is not None and list_order not in LIST_ORDERS:
            raise ValueError(f"unknown list order {list_order!r}; choose from {', '.join(LIST_ORDERS)}")
        self.store = Store(
            orders=0 if documents else orders, seed=seed, now=now, shape=shape, clock_skew=float(clock_skew)
        )
        if documents:
            self.store.load_documents(*documents)
        self.shape = shape  # "documented": no order-level modified_date/created_date served
        self.list_order = list_order  # ignore ?sort= and list in this order instead
        self.seed = seed
        self.host, self._port = host, port
        self.latency_ms = latency_ms
        self.api_token = api_token or None
        self.username, self.password = username, password
        self.max_limit, self.default_limit = max_limit, default_limit
        self.ignore_filters = ignore_filters
        self.token_ttl_requests = token_ttl_requests
        self.on_list_page = on_list_page or mutate_between_pages
        self.mutate_every_page = dict(mutate_every_page or {})
        self.missing_details = set(missing_details)
        self.broken_details = set(broken_details)  # detailed views that always answer 500
        self.forbid_details = forbid_details  # every detailed view answers 403, as to a token without the right
        # path -> fault kinds served, in turn, to its next requests (then back to normal)
        self.fault_plan = {path: list(_normalise_kinds(kinds)) for path, kinds in (fault_plan or {}).items()}
        self.keepalive_requests = keepalive_requests  # close a connection after this many answers
        self.keepalive_timeout = keepalive_timeout  # close, silently, one idle this long (seconds)
        self.gzip = gzip  # compress JSON when the client accepts gzip
        self.tls = tls  # (certificate file, key file): serve https
        self.redirect_to = redirect_to  # answer every API request with a 301 to this origin
        self.log_requests = log_requests
        self.request_log: list[tuple[float, str, str, int]] = []  # (monotonic, method, path, status)
        # path -> hostile kinds (HOSTILE_KINDS) served, in turn, to its next requests, login included
        self.hostile_plan = hostile_plan  # the setter checks the kinds
        self.drip_interval = drip_interval  # seconds between the bytes of drip_body / drip_head
        self.bomb_mib = bomb_mib  # the inflated size of the gzip_bomb answer
        self.login_key = login_key  # a login answers this key verbatim (valid only if a plain token)
        # the header lines of every request, when log_requests is on or login_key is set
        self.headers_seen: list[dict[str, str]] = []
        self.connections_accepted = 0
        self.in_flight = self.max_in_flight = 0  # API requests being answered at once
        self.verbose = verbose
        self._tokens: dict[str, int | None] = {}
        self._stats_lock = threading.Lock()
        self.request_count = 0
        self._by_path: dict[str, int] = {}
        self.faults_injected = 0
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = DEFAULT_FAULT_KINDS
        self.retry_after: float = 1
        self._fault_rng = random.Random(f"faults:{seed}")
        self.set_faults(rate=fault_rate, kinds=fault_kinds, retry_after=retry_after)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._live_port: int | None = None  # the bound port, from start() to stop(), outages included
        self._resume_timer: threading.Timer | None = None
        self._lifecycle = threading.RLock()

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> Sandbox:
        with self._lifecycle:
            if self._live_port is None:
                self._listen(self._port)
                self._live_port = self.port
        return self

    def stop(self) -> None:
        with self._lifecycle:
            self._live_port = None
            self._cancel_resume()
            self._close()

    def outage(self, seconds: float | None) -> None:
        """Go down now: close the listening socket and every open connection, so that connections
        are refused; listen again on the same port after ``seconds`` (None: at ``resume()``).
        Data, tokens and stats are kept."""
        with self._lifecycle:
            if self._live_port is None:
                raise RuntimeError("Sandbox is not started")
            self._cancel_resume()
            self._close()
            if seconds is not None:
                self._resume_timer = threading.Timer(seconds, self.resume)
                self._resume_timer.daemon = True
                self._resume_timer.start()

    def resume(self, bind_timeout: float = 5.0) -> None:
        """End an outage: listen on the same port again (no-op when up or stopped). Retries the bind
        for ``bind_timeout`` seconds, as a client connecting meanwhile may hold the port for a moment."""
        with self._lifecycle:
            self._cancel_resume()
            if self._live_port is None or self._httpd is not None:
                return None
            deadline = time.monotonic() + bind_timeout
            while True:
                try:
                    return self._listen(self._live_port)
                except OSError:  # noqa: PERF203  (a retry loop: the try is its point)
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    @property
    def down(self) -> bool:
        """In an outage: started, not stopped, and not listening."""
        return self._live_port is not None and self._httpd is None

    def _listen(self, port: int) -> None:
        httpd = _Server((self.host, port), self)
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"omnitron-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def _cancel_resume(self) -> None:
        timer, self._resume_timer = self._resume_timer, None
        if timer is not None:
            timer.cancel()  # harmless from the timer's own thread

    def __enter__(self) -> Sandbox:  # noqa: PYI034  (typing.Self is Python 3.11+; the sandbox runs on 3.10)
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._live_port or self._port

    @property
    def url(self) -> str:
        if self._live_port is None:
            raise RuntimeError("Sandbox is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    # -- data -----------------------------------------------------------------------
    def modify(self, ids: Iterable[int] | None = None, count: int = 3, at: datetime | None = None) -> list[int]:
        return self.store.modify(ids=ids, count=count, at=at)

    def create(self, count: int = 1) -> list[int]:
        return self.store.create(count)

    def delete(self, ids: Iterable[int] | None = None, count: int = 0) -> list[int]:
        return self.store.delete(ids=ids, count=count)

    def orders_snapshot(self) -> dict[int, str]:
        """{order id: modified_date} for every order that exists now."""
        return self.store.snapshot()

    def ground_truth(self) -> list[dict[str, Any]]:
        """[{id, modified_date, status, amount}] for every order (what GET /_sandbox/orders serves)."""
        return self.store.ground_truth()

    def list_record(self, oid: int) -> dict[str, Any]:
        """The order exactly as the list endpoint serves it."""
        with self.store.lock:
            return json.loads(self.store.list_bytes(self.store.records[oid]))

    def detail_record(self, oid: int) -> dict[str, Any]:
        """The order exactly as the detailed_integration endpoint serves it."""
        payload = self.store.detail_bytes(oid)
        if payload is None:
            raise KeyError(oid)
        return json.loads(payload)

    # -- clock ------------------------------------------------------------------------
    @property
    def clock_skew(self) -> float:
        """Seconds the server's clock runs ahead of the real one (< 0: behind): its Date header and the
        modified_date/created_date it stamps from now on."""
        return self.store.clock_skew

    @clock_skew.setter
    def clock_skew(self, seconds: float) -> None:
        self.store.clock_skew = float(seconds)

    def now(self) -> datetime:
        """The server's current time (UTC, aware): the real clock plus ``clock_skew``."""
        return self.store.now()

    # -- auth -------------------------------------------------------------------------
    def issue_token(self, key: str | None = None) -> str:
        """A new login key (or ``key``, verbatim), valid for authentication if it is a plain token."""
        key = secrets.token_hex(20) if key is None else key
        if _PLAIN_TOKEN.fullmatch(key):
            with self._stats_lock:
                self._tokens[key] = self.token_ttl_requests
        return key

    def expire_tokens(self) -> int:
        """Invalidate every login key (the static api_token keeps working)."""
        with self._stats_lock:
            n = len(self._tokens)
            self._tokens.clear()
        return n

    def _authenticate(self, header: str | None) -> str | None:
        parts = (header or "").split()
        if not parts or parts[0].lower() != "token":
            return "Authentication credentials were not provided."
        if len(parts) == 1:
            return "Invalid token header. No credentials provided."
        if len(parts) > 2:
            return "Invalid token header. Token string should not contain spaces."
        key = parts[1]
        if self.api_token is not None and secrets.compare_digest(key, self.api_token):
            return None
        with self._stats_lock:
            if key not in self._tokens:
                return _INVALID_TOKEN
            left = self._tokens[key]
            if left is not None:
                if left <= 0:
                    return _INVALID_TOKEN
                self._tokens[key] = left - 1
        return None

    # -- faults and stats ---------------------------------------------------------------
    def set_faults(
        self,
        rate: float | None = None,
        kinds: Iterable[Any] | str | None = None,
        retry_after: float | None = None,
        seed: int | str | None = None,
        latency_ms: float | None = None,
        missing_details: Iterable[int] | None = None,
        broken_details: Iterable[int] | None = None,
        clock_skew: float | None = None,
    ) -> None:
        with self._stats_lock:
            if rate is not None:
                if not 0 <= float(rate) <= 1:
                    raise ValueError("fault rate must be within 0..1")
                self.fault_rate = float(rate)
            if kinds is not None:
                self.fault_kinds = _normalise_kinds(kinds)
            if retry_after is not None:
                if float(retry_after) < 0:
                    raise ValueError("retry_after must be >= 0")
                self.retry_after = retry_after
            if seed is not None:
                self._fault_rng = random.Random(f"faults:{seed}")
            if latency_ms is not None:
                self.latency_ms = float(latency_ms)
            if missing_details is not None:
                self.missing_details = {int(i) for i in missing_details}
            if broken_details is not None:
                self.broken_details = {int(i) for i in broken_details}
            if clock_skew is not None:
                self.clock_skew = float(clock_skew)

    def fault_settings(self) -> dict[str, Any]:
        return {
            "rate": self.fault_rate,
            "kinds": list(self.fault_kinds),
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "missing_details": sorted(self.missing_details),
            "broken_details": sorted(self.broken_details),
            "clock_skew": self.clock_skew,
        }

    def _draw_fault(self) -> str | None:
        if self.fault_rate <= 0 or not self.fault_kinds:
            return None
        with self._stats_lock:
            if self._fault_rng.random() >= self.fault_rate:
                return None
            self.faults_injected += 1
            return self._fault_rng.choice(self.fault_kinds)

    def _planned_fault(self, path: str) -> str | None:
        return self._next_planned(self.fault_plan, path)

    def _planned_hostile(self, path: str) -> str | None:
        kind = self._next_planned(self._hostile_plan, path)
        if kind is not None:
            _kinds([kind], HOSTILE_KINDS, "hostile")  # put in the plan by hand, past the setter's check
        return kind

    def _next_planned(self, plan: dict[str, list[str]], path: str) -> str | None:
        with self._stats_lock:
            planned = plan.get(path)
            if not planned:
                return None
            self.faults_injected += 1
            return planned.pop(0)

    @property
    def hostile_plan(self) -> dict[str, list[str]]:
        """Path -> hostile kinds (HOSTILE_KINDS) answered, in turn, to its next requests (login included),
        then back to normal. A hostile answer replaces the faults of its request."""
        return self._hostile_plan

    @hostile_plan.setter
    def hostile_plan(self, plan: dict[str, Iterable[str] | str] | None) -> None:
        self._hostile_plan = {
            path: list(_kinds(kinds, HOSTILE_KINDS, "hostile")) for path, kinds in (plan or {}).items()
        }

    def _saw_headers(self, items: Iterable[tuple[str, str]]) -> None:
        seen = dict(items)
        with self._stats_lock:
            self.headers_seen.append(seen)

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._stats_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._stats_lock:
                self.in_flight -= 1

    def _log(self, method: str, path: str, status: int) -> None:
        with self._stats_lock:
            self.request_log.append((time.monotonic(), method, path, status))

    def _count(self, path: str) -> None:
        with self._stats_lock:
            self.request_count += 1
            self._by_path[path] = self._by_path.get(path, 0) + 1

    @property
    def requests_by_path(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._by_path)

    def reset_stats(self) -> None:
        with self._stats_lock:
            self.request_count = self.faults_injected = self.max_in_flight = 0
            self._by_path.clear()

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            return {
                "requests": self.request_count,
                "by_path": dict(self._by_path),
                "orders": len(self.store.records),
                "faults_injected": self.faults_injected,
                "connections": self.connections_accepted,
                "max_in_flight": self.max_in_flight,
            }


# -- CLI -------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omnitron-sandbox",
        description="Local fake Akinon Omnitron API (orders list, detailed_integration, login) for tests and demos. "
        "Prints one JSON line {url, api_token, username, password} to stdout, then serves until "
        "SIGTERM/SIGINT. Control endpoints without auth: GET /_sandbox/stats, GET /_sandbox/orders, "
        "POST /_sandbox/mutate {modify,create,delete}, GET|POST /_sandbox/faults (also clock_skew), "
        "POST /_sandbox/expire-tokens, POST /_sandbox/reset-stats.",
    )
    a = p.add_argument
    a("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    a("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    a("--port-file", help="also write the base URL to this file (removed again on exit)")
    a("--orders", type=int, default=50, help="number of generated orders (default 50)")
    a("--seed", default="0", help="seed for data, mutations and faults (default 0)")
    a("--now", help="ISO anchor time for generated dates (default: today 00:00 UTC); dates span 2 years before it")
    a("--latency-ms", type=float, default=0, help="sleep this long on every API request (default 0)")
    a("--api-token", default="sandbox-token", help="static token accepted as 'Token <key>'; '' disables it")
    a("--username", default="sandbox", help="login username (default sandbox)")
    a("--password", default="sandbox-password", help="login password (default sandbox-password)")
    a("--max-limit", type=int, default=200, help="larger ?limit= values are silently capped (default 200)")
    a("--default-limit", type=int, default=10, help="page size without ?limit= (default 10)")
    a("--ignore-filters", action="store_true", help="ignore the date filters like a server that does not know them")
    a("--token-ttl-requests", type=int, help="a login key stops working after this many requests (default: never)")
    a("--fault-rate", type=float, default=0.0, help="probability 0..1 that an API request (not login) faults")
    a(
        "--fault-kinds",
        default=",".join(DEFAULT_FAULT_KINDS),
        help=f"comma list from {','.join(FAULT_KINDS)} (default {','.join(DEFAULT_FAULT_KINDS)})",
    )
    a("--retry-after", type=float, default=1, help="Retry-After seconds sent with 429 (default 1; 0 allowed)")
    a(
        "--mutate-every-page",
        type=json.loads,
        metavar="JSON",
        help='mutate before every list page, e.g. \'{"modify": 1, "create": 1, "delete": 0}\'',
    )
    a(
        "--missing-details",
        default="",
        metavar="IDS",
        help="comma list of order ids whose detailed view answers 404 although they are listed",
    )
    a(
        "--broken-details",
        default="",
        metavar="IDS",
        help="comma list of order ids whose detailed view always answers 500 (POST /_sandbox/faults heals)",
    )
    a(
        "--keepalive-requests",
        type=int,
        default=0,
        metavar="N",
        help="close each connection after N answers, like nginx's keepalive_requests (default: never)",
    )
    a(
        "--keepalive-timeout",
        type=float,
        default=0,
        metavar="S",
        help="close idle connections after S seconds without a word, like nginx (default 120)",
    )
    a("--gzip", action="store_true", help="gzip JSON answers for clients that accept it")
    a("--tls-cert", help="serve https with this certificate (PEM); needs --tls-key")
    a("--tls-key", help="the private key (PEM) of --tls-cert")
    a("--redirect-to", metavar="URL", help="answer every API request with a 301 to this origin")
    a(
        "--shape",
        choices=SHAPES,
        default="documented",
        help="documented: orders without modified_date/created_date, as Omnitron's documentation shows them "
        "(the server still filters and sorts on them); extended: with both (default documented)",
    )
    a(
        "--list-order",
        choices=LIST_ORDERS,
        metavar="ORDER",
        help=f"ignore ?sort= and list in this order, one of {', '.join(LIST_ORDERS)} (default: honour ?sort=)",
    )
    a(
        "--clock-skew",
        type=float,
        default=0,
        metavar="SECONDS",
        help="the server's clock runs this far ahead (< 0: behind) the real one: its Date header and the "
        "modified_date/created_date of orders it changes (default 0)",
    )
    a("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    sb = Sandbox(
        orders=args.orders,
        seed=seed,
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        api_token=args.api_token,
        username=args.username,
        password=args.password,
        max_limit=args.max_limit,
        default_limit=args.default_limit,
        ignore_filters=args.ignore_filters,
        token_ttl_requests=args.token_ttl_requests,
        fault_rate=args.fault_rate,
        fault_kinds=args.fault_kinds,
        retry_after=args.retry_after,
        mutate_every_page=args.mutate_every_page,
        missing_details=[int(i) for i in args.missing_details.split(",") if i.strip()],
        broken_details=[int(i) for i in args.broken_details.split(",") if i.strip()],
        keepalive_requests=args.keepalive_requests,
        keepalive_timeout=args.keepalive_timeout,
        gzip=args.gzip,
        tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
        redirect_to=args.redirect_to,
        now=parse_iso(args.now) if args.now else None,
        shape=args.shape,
        list_order=args.list_order,
        clock_skew=args.clock_skew,
        verbose=args.verbose,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sb.start()
    if args.port_file:  # written (atomically) before the stdout line, so either signal means "ready"
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        Path(tmp).write_text(sb.url + "\n")
        Path(tmp).replace(args.port_file)
    print(  # noqa: T201  (the one line on stdout a caller waits for)
        json.dumps({"url": sb.url, "api_token": sb.api_token, "username": sb.username, "password": sb.password}),
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sb.stop()
        if args.port_file:
            with contextlib.suppress(OSError):
                Path(args.port_file).unlink()
    return 0
