"""Following `next`: its page number only, never its host; stepping back when rows vanish."""

from __future__ import annotations

import pytest

from tap_omnitron.client import Answer, decode_json
from tap_omnitron.errors import OmnitronError
from tap_omnitron.pagination import PageNumbers, next_page_number


def page(status: int, body: bytes) -> Answer:
    return Answer("GET /api/i1/orders/", status, decode_json(body) if status == 200 else None, None)  # noqa: PLR2004


def test_next_gives_a_page_number_and_never_a_host() -> None:
    assert next_page_number("https://elsewhere.example/api/i1/orders/?limit=2&page=7", 6) == 7
    assert next_page_number("/api/i1/orders/?page=3&sort=id", 2) == 3
    assert next_page_number("https://x.example/api/i1/orders/?cursor=abc", 4) == 5  # noqa: PLR2004
    assert next_page_number(None, 4) is None


def test_the_server_decides_when_pages_end_not_our_arithmetic() -> None:
    paginator = PageNumbers()
    paginator.advance(page(200, b'{"count": 500, "next": "http://h/?page=2", "results": [1]}'))
    assert paginator.current_value == 2  # noqa: PLR2004
    paginator.advance(page(200, b'{"count": 500, "next": null, "results": [1]}'))
    assert paginator.finished


def test_steps_back_when_the_list_shrinks_or_a_page_vanishes() -> None:
    paginator = PageNumbers()
    paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=2", "results": [1]}'))
    paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=3", "results": [1]}'))
    paginator.advance(page(200, b'{"count": 28, "next": "http://h/?page=4", "results": [1]}'))
    assert paginator.shrank
    assert paginator.current_value == 2, "rows shifted back onto page 2 must be read"  # noqa: PLR2004
    paginator.advance(page(200, b'{"count": 28, "next": "http://h/?page=3", "results": [1]}'))
    assert not paginator.shrank
    paginator.advance(page(404, b'{"detail": "Invalid page."}'))
    assert paginator.current_value == 2  # noqa: PLR2004
    assert paginator.rewinds == 2  # noqa: PLR2004


def test_a_page_that_names_itself_as_next_is_an_error_not_a_loop() -> None:
    paginator = PageNumbers()
    with pytest.raises(OmnitronError, match="page 1 names itself as the next page"):
        paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=1", "results": [1]}'))
