"""Following `next`: its page number only, never its host; stepping back when rows vanish."""

from __future__ import annotations

import pytest

from tap_omnitron.api import Answer, decode_json
from tap_omnitron.errors import OmnitronError
from tap_omnitron.pagination import MAX_REWINDS, PageNumbers, next_page_number


def page(status: int, body: bytes) -> Answer:
    return Answer("GET /api/i1/orders/", status, decode_json(body) if status == 200 else None, None)


def test_next_gives_a_page_number_and_never_a_host() -> None:
    assert next_page_number("https://elsewhere.example/api/i1/orders/?limit=2&page=7", 6) == 7
    assert next_page_number("/api/i1/orders/?page=3&sort=id", 2) == 3
    assert next_page_number("https://x.example/api/i1/orders/?cursor=abc", 4) == 5
    assert next_page_number(None, 4) is None


def test_the_server_decides_when_pages_end_not_our_arithmetic() -> None:
    paginator = PageNumbers()
    paginator.advance(page(200, b'{"count": 500, "next": "http://h/?page=2", "results": [1]}'))
    assert paginator.current_value == 2
    paginator.advance(page(200, b'{"count": 500, "next": null, "results": [1]}'))
    assert paginator.finished


def test_steps_back_when_the_list_shrinks_or_a_page_vanishes() -> None:
    paginator = PageNumbers()
    paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=2", "results": [1]}'))
    paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=3", "results": [1]}'))
    paginator.advance(page(200, b'{"count": 28, "next": "http://h/?page=4", "results": [1]}'))
    assert paginator.shrank
    assert paginator.current_value == 2, "rows shifted back onto page 2 must be read"
    paginator.advance(page(200, b'{"count": 28, "next": "http://h/?page=3", "results": [1]}'))
    assert not paginator.shrank
    paginator.advance(page(404, b'{"detail": "Invalid page."}'))
    assert paginator.current_value == 2
    assert paginator.rewinds == 2


def test_a_page_that_names_itself_as_next_is_an_error_not_a_loop() -> None:
    paginator = PageNumbers()
    with pytest.raises(OmnitronError, match="page 1 names itself as the next page"):
        paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=1", "results": [1]}'))


def test_two_vanished_pages_in_a_row_step_back_twice_not_into_a_loop() -> None:
    paginator = PageNumbers()
    for number in (2, 3, 4):
        paginator.advance(page(200, b'{"count": 30, "next": "http://h/?page=%d", "results": [1]}' % number))
    assert paginator.current_value == 4
    paginator.advance(page(404, b"{}"))
    assert paginator.current_value == 3
    paginator.advance(page(404, b"{}"))
    assert paginator.current_value == 2


def test_a_list_that_keeps_shrinking_is_read_on_to_its_end() -> None:
    paginator = PageNumbers()
    count = 10_000
    pages_read = 0
    while not paginator.finished and pages_read < 500:
        count -= 1  # an order deleted before every page
        following = paginator.current_value + 1
        nxt = f'"http://h/?page={following}"' if paginator.current_value < 120 else "null"
        paginator.advance(page(200, f'{{"count": {count}, "next": {nxt}, "results": [1]}}'.encode()))
        pages_read += 1
    assert paginator.finished, "it reached the last page"
    assert paginator.rewinds == MAX_REWINDS + 1
