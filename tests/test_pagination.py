"""Following `next`: its page number only, never its host; stepping back when rows vanish."""

from __future__ import annotations

import requests

from tap_omnitron.client import decode_json
from tap_omnitron.pagination import NextPagePaginator, next_page_number


def page(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body  # noqa: SLF001
    response.omnitron_payload = decode_json(body) if status == 200 else {}  # noqa: PLR2004
    return response


def test_next_gives_a_page_number_and_never_a_host() -> None:
    assert next_page_number("https://elsewhere.example/api/i1/orders/?limit=2&page=7", 6) == 7
    assert next_page_number("/api/i1/orders/?page=3&sort=id", 2) == 3
    assert next_page_number("https://x.example/api/i1/orders/?cursor=abc", 4) == 5  # noqa: PLR2004
    assert next_page_number(None, 4) is None


def test_the_server_decides_when_pages_end_not_our_arithmetic() -> None:
    paginator = NextPagePaginator(lambda r: r.omnitron_payload)
    paginator.advance(page(200, b'{"count": 500, "next": "http://h/?page=2", "results": [1]}'))
    assert paginator.current_value == 2  # noqa: PLR2004
    paginator.advance(page(200, b'{"count": 500, "next": null, "results": [1]}'))
    assert paginator.finished


def test_steps_back_when_the_list_shrinks_or_a_page_vanishes() -> None:
    paginator = NextPagePaginator(lambda r: r.omnitron_payload)
    paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=2", "results": [1]}'))
    paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=3", "results": [1]}'))
    paginator.advance(page(200, b'{"count": 28, "next": "http://h/?page=4", "results": [1]}'))
    assert paginator.current_value == 2, "rows shifted back onto page 2 must be read"  # noqa: PLR2004
    paginator.advance(page(200, b'{"count": 28, "next": "http://h/?page=3", "results": [1]}'))
    paginator.advance(page(404, b'{"detail": "Invalid page."}'))
    assert paginator.current_value == 2  # noqa: PLR2004
    assert paginator.rewinds == 2  # noqa: PLR2004
