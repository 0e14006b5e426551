"""pagination in-process: `next` and the paginator's steps back, and `read_pages` against a list that a test
holds and changes, with futures made here that answer when read, so that what was requested early, read,
yielded and cancelled can be told apart (`make mutation` runs these)."""

from __future__ import annotations

import logging
from concurrent.futures import Future

import pytest

from tap_omnitron.api import Answer
from tap_omnitron.errors import OmnitronError
from tap_omnitron.pagination import MAX_REWINDS, Page, PageNumbers, next_page_number, read_pages

WHAT = "GET /api/i1/orders/"
PARAMS = {"limit": 2, "sort": "id"}


def answer(body: dict | None) -> Answer:
    return Answer(WHAT, 200 if body is not None else 404, body, None)


def body(count: int | None, next_page: int | None, *ids: int) -> dict:
    found: dict = {"results": [{"id": i} for i in ids], "next": next_page and f"https://h.example/?page={next_page}"}
    if count is not None:
        found["count"] = count
    return found


class Lazy(Future):
    """A request in flight: it answers when first read, from the list as it is then."""

    def __init__(self, server: Server, number: int) -> None:
        super().__init__()
        self.server, self.number = server, number

    def result(self, timeout: float | None = None) -> Answer:
        if not self.done():
            self.server.events.append(f"read {self.number}")
            self.set_result(self.server.answer(self.number))
        return super().result(timeout)


class Server:
    """A DRF page-number list of orders that a test may change between requests."""

    def __init__(self, ids: list[int], per_page: int = 2, *, count: bool = True) -> None:
        self.ids, self.per_page, self.with_count = list(ids), per_page, count
        self.events: list[str] = []
        self.futures: dict[int, list[Lazy]] = {}
        self.params: list[dict] = []

    def request(self, params: dict) -> Future[Answer]:
        self.params.append(params)
        number = params["page"]
        self.events.append(f"request {number}")
        future = Lazy(self, number)
        self.futures.setdefault(number, []).append(future)
        return future

    def answer(self, number: int) -> Answer:
        rows = self.ids[(number - 1) * self.per_page : number * self.per_page]
        if number > 1 and not rows:
            return answer(None)  # DRF: "Invalid page."
        following = number + 1 if number * self.per_page < len(self.ids) else None
        return answer(body(len(self.ids) if self.with_count else None, following, *rows))

    def requested(self) -> list[int]:
        return [int(event.split()[1]) for event in self.events if event.startswith("request")]

    def cancelled(self) -> list[int]:
        return sorted(number for number, futures in self.futures.items() for f in futures if f.cancelled())


def summary(page: Page) -> tuple[int, list[int], bool]:
    return page.number, [r["id"] for r in page.results], page.shrank


def read_all(server: Server, **options) -> list[tuple[int, list[int], bool]]:
    """(page number, order ids, shrank) of every page yielded; each yield is also an event."""
    pages = []
    for page in read_pages(server.request, PARAMS, **options):
        server.events.append(f"yield {page.number}")
        pages.append(summary(page))
    return pages


# --------------------------------------------------------------------------- next


@pytest.mark.parametrize("next_url", [None, "", 7, ["https://h.example/?page=2"], {"page": 2}])
def test_a_next_that_is_no_link_ends_the_list(next_url: object) -> None:
    assert next_page_number(next_url, 3) is None


@pytest.mark.parametrize(
    ("next_url", "page"),
    [("?page=12", 12), ("https://h.example/?page=abc", 4), ("https://h.example/?limit=5", 4), ("?page=-2", 4)],
)
def test_a_next_without_a_page_number_means_the_page_after(next_url: str, page: int) -> None:
    assert next_page_number(next_url, 3) == page


def test_the_paginator_follows_a_next_without_a_page_number_to_the_page_after() -> None:
    paginator = PageNumbers()
    paginator.advance(answer({"count": 9, "next": "https://h.example/?cursor=x", "results": [{"id": 1}]}))
    assert paginator.current_value == 2
    assert not paginator.finished


# --------------------------------------------------------------------------- stepping back


def test_the_list_shrinking_between_pages_one_and_two_reads_page_one_again(caplog) -> None:
    paginator = PageNumbers()
    with caplog.at_level(logging.INFO, logger="tap-omnitron"):
        paginator.advance(answer(body(10, 2, 1, 2)))
        assert not paginator.shrank
        paginator.advance(answer(body(9, 3, 4, 5)))
    assert paginator.shrank
    assert paginator.current_value == 1
    assert [r.getMessage() for r in caplog.records] == ["the order list shrank while paging: reading page 1 again"]


def test_a_vanished_page_is_read_again_from_the_page_before_and_said_so(caplog) -> None:
    paginator = PageNumbers()
    with caplog.at_level(logging.INFO, logger="tap-omnitron"):
        paginator.advance(answer(body(6, 2, 1, 2)))
        paginator.advance(answer(body(6, 3, 3, 4)))
        paginator.advance(answer(None))
    assert paginator.current_value == 2
    assert [r.getMessage() for r in caplog.records] == [
        "a listed page no longer exists while paging: reading page 2 again"
    ]


def test_after_max_rewinds_a_vanished_page_ends_the_list(caplog) -> None:
    paginator = PageNumbers()
    paginator.rewinds = MAX_REWINDS
    paginator.advance(answer(body(6, 2, 1, 2)))
    with caplog.at_level(logging.WARNING, logger="tap-omnitron"):
        paginator.advance(answer(None))
    assert paginator.finished
    assert [r.getMessage() for r in caplog.records] == [
        "The order list keeps shrinking; reading on without stepping back."
    ]


def test_page_one_missing_is_the_wrong_url_not_a_step_back() -> None:
    with pytest.raises(OmnitronError, match=r"^GET /api/i1/orders/ answered 404 \(not found\): check base_url$"):
        PageNumbers().advance(answer(None))


# --------------------------------------------------------------------------- read_pages


def test_pages_are_read_one_after_the_other_with_the_params_and_their_page_number() -> None:
    server = Server([1, 2, 3, 4, 5])
    assert read_all(server, ahead=0) == [(1, [1, 2], False), (2, [3, 4], False), (3, [5], False)]
    assert server.params == [{**PARAMS, "page": 1}, {**PARAMS, "page": 2}, {**PARAMS, "page": 3}]
    assert server.events == [
        *("request 1", "read 1", "yield 1"),
        *("request 2", "read 2", "yield 2"),
        *("request 3", "read 3", "yield 3"),
    ]
    assert server.cancelled() == []


def test_pages_ahead_are_requested_before_a_page_is_handed_over_and_never_past_the_count() -> None:
    server = Server([1, 2, 3, 4, 5, 6, 7])
    assert [number for number, _, _ in read_all(server, ahead=2)] == [1, 2, 3, 4]
    assert server.events == [
        *("request 1", "read 1", "request 2", "request 3", "yield 1"),
        *("read 2", "request 4", "yield 2"),
        *("read 3", "yield 3"),
        *("read 4", "yield 4"),
    ]
    assert server.cancelled() == []


def test_the_page_count_follows_the_servers_page_size_not_the_limit_asked_for() -> None:
    server = Server([1, 2, 3, 4, 5], per_page=3)  # limit 2 asked, 3 sent
    assert [number for number, _, _ in read_all(server, ahead=5)] == [1, 2]
    assert server.requested() == [1, 2]


def test_without_a_count_pages_ahead_are_requested_and_those_past_the_end_cancelled() -> None:
    server = Server([1, 2, 3], count=False)
    assert [number for number, _, _ in read_all(server, ahead=2)] == [1, 2]
    assert server.requested() == [1, 2, 3]
    assert server.cancelled() == [3]


def test_pages_a_short_list_does_not_have_are_cancelled_at_its_end() -> None:
    """The count promised four pages; `next` ends the list at the second."""
    server = Server([1, 2, 3, 4])
    server.answer = lambda number: answer(body(8, None if number == 2 else number + 1, number))  # type: ignore[method-assign]
    assert [number for number, _, _ in read_all(server, ahead=3)] == [1, 2]
    assert server.requested() == [1, 2, 3, 4]
    assert server.cancelled() == [3, 4]


def test_page_one_requested_with_the_probes_is_read_not_requested_again() -> None:
    server = Server([1, 2, 3])
    first = server.request({**PARAMS, "page": 1})
    assert read_all(server, ahead=0, first=first) == [(1, [1, 2], False), (2, [3], False)]
    assert server.requested() == [1, 2]


def test_with_the_pages_a_pass_found_the_first_ones_are_requested_before_page_one_answers() -> None:
    server = Server([1, 2, 3, 4, 5, 6, 7])
    first = server.request({**PARAMS, "page": 1})
    read_all(server, ahead=1, first=first, expected=4)
    assert server.events[:3] == ["request 1", "request 2", "read 1"]
    server = Server([1, 2, 3, 4, 5, 6, 7])
    read_all(server, ahead=2, expected=4)
    assert server.events[:4] == ["request 1", "request 2", "request 3", "read 1"]
    assert server.cancelled() == []


def test_no_more_pages_are_requested_at_once_than_the_pass_before_found() -> None:
    server = Server([1, 2])
    read_all(server, ahead=3, expected=1)
    assert server.events[:2] == ["request 1", "read 1"]
    assert server.requested() == [1]


def test_a_shrinking_list_steps_back_and_drops_the_pages_asked_for_early() -> None:
    server = Server([1, 2, 3, 4, 5, 6, 7, 8])
    pages = read_pages(server.request, PARAMS, ahead=2)
    assert next(pages).number == 1
    server.ids.remove(1)  # rows shift back: order 3 moves onto page 1
    assert summary(next(pages)) == (2, [4, 5], True)
    assert server.cancelled() == [3], "page 3, asked for before the list shrank, is not the next one"
    rest = [summary(p) for p in pages]
    assert rest == [(1, [2, 3], False), (2, [4, 5], False), (3, [6, 7], False), (4, [8], False)]


def test_a_vanished_page_is_not_handed_over_and_the_page_before_is_read_again() -> None:
    server = Server([1, 2, 3, 4, 5])
    pages = read_pages(server.request, PARAMS, ahead=0)
    assert [r["id"] for r in next(pages).results] == [1, 2]
    assert [r["id"] for r in next(pages).results] == [3, 4]
    del server.ids[3:]  # page 3 is gone
    rest = [summary(p) for p in pages]
    assert rest == [(2, [3], True), (1, [1, 2], False), (2, [3], False)]
    assert server.requested() == [1, 2, 3, 2, 1, 2]


def test_a_reading_stopped_early_cancels_the_pages_asked_for_early() -> None:
    server = Server(list(range(1, 11)))
    pages = read_pages(server.request, PARAMS, ahead=3)
    next(pages)
    pages.close()
    assert server.cancelled() == [2, 3, 4]
