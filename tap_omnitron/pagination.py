"""Page-number pagination that trusts the server's `next` and survives a shrinking list.

The server may cap `limit` silently, so the next page comes from `next`, never from our own
arithmetic. Only its `page` number is used: requests always go to the configured host,
whatever host `next` names.

Orders deleted while the tap pages shift every later row one place back, so the first rows
of the next page would never be read. When `count` drops between two pages, or a page that
`next` promised answers 404, the paginator steps back one page: rows are read twice rather
than never (targets upsert on the key). This is the one place that knows about either.
"""

from __future__ import annotations

import logging
import typing as t
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from singer_sdk.pagination import BaseAPIPaginator

from tap_omnitron.errors import OmnitronError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future

    from tap_omnitron.api import Answer

    Request = Callable[[dict[str, t.Any]], Future[Answer]]  # starts a list request with these params

logger = logging.getLogger("tap-omnitron")

MAX_REWINDS = 50  # steps back in one pass; after them, the pass reads on to the end


@dataclass(frozen=True)
class Page:
    """One page of the order list, as the server sent it."""

    number: int
    body: dict
    shrank: bool = False  # the list shrank since the page before: rows may have slipped past

    @property
    def results(self) -> list[dict]:
        return self.body["results"]

    @property
    def count(self) -> int | None:
        count = self.body.get("count")
        return count if isinstance(count, int) else None


class PageNumbers(BaseAPIPaginator[int]):
    """Pages 1, 2, ... as long as the server answers with a `next` link."""

    def __init__(self) -> None:
        super().__init__(1)
        self._count: int | None = None
        self._last_good = 0
        self.rewinds = 0
        self.shrank = False  # the last page read found the list shorter than the one before

    def get_next(self, response: Answer) -> int | None:  # type: ignore[override]  # pages are read as `Answer`s
        if not response.found:  # the promised page vanished: the list ends before it
            if self.current_value == 1:
                raise not_a_list(response)
            back = min(self._last_good, self.current_value - 1)
            return self._rewind(back, "a listed page no longer exists") if self._may_rewind else None
        self._last_good = self.current_value
        count = response.body.get("count")
        self.shrank = isinstance(count, int) and self._count is not None and count < self._count
        if isinstance(count, int):
            self._count = count
        if self.shrank and self.current_value > 1 and self._may_rewind:
            return self._rewind(self.current_value - 1, "the order list shrank")
        following = next_page_number(response.body.get("next"), self.current_value)
        if following == self.current_value:
            msg = f"{response.what}: page {following} names itself as the next page"
            raise OmnitronError(msg)
        return following

    @property
    def _may_rewind(self) -> bool:
        """A list that keeps shrinking is read on to its end: the next pass finds what slipped."""
        if self.rewinds == MAX_REWINDS:
            logger.warning("The order list keeps shrinking; reading on without stepping back.")
            self.rewinds += 1
        return self.rewinds < MAX_REWINDS

    def _rewind(self, page: int, why: str) -> int:
        self.rewinds += 1
        logger.info("%s while paging: reading page %d again", why, page)
        return page


def read_pages(
    request: Request,
    params: t.Mapping[str, t.Any],
    *,
    ahead: int,
    first: Future[Answer] | None = None,
    expected: int | None = None,
) -> Iterator[Page]:
    """Every page of the order list under `params`, in the server's order.

    Up to `ahead` pages after the one being read are requested early (n + 1, n + 2, ... as
    DRF numbers them, no further than `count` says), so that their round trips overlap the
    work on this one; one that `next` turns out not to want is dropped. `first` is page 1,
    already requested; with `expected` (the pages an earlier pass found), the first pages are
    requested at once, without waiting for page 1 to say how many there are.
    """
    paginator = PageNumbers()
    early: deque[tuple[int, Future[Answer]]] = deque([(1, first)] if first else [])
    last_page = expected
    per_page: int | None = None  # as the server pages (it may cap `limit`)

    def fill(pages: int) -> None:
        following = early[-1][0] + 1 if early else paginator.current_value
        while len(early) < pages and (last_page is None or following <= last_page):
            early.append((following, request({**params, "page": following})))
            following += 1

    try:
        if expected:
            fill(ahead + 1)
        while not paginator.finished:
            number = paginator.current_value
            pending = early.popleft()[1] if early else request({**params, "page": number})
            answer = pending.result()
            paginator.advance(answer)  # type: ignore[arg-type]  # pages are read as `Answer`s (see `get_next`)
            if answer.found and answer.body["results"]:
                per_page = per_page or len(answer.body["results"])
                count = answer.body.get("count")
                last_page = -(-count // per_page) if isinstance(count, int) else None
            if paginator.finished or (early and early[0][0] != paginator.current_value):
                _cancel(early)  # the end, or a step back: the pages asked for early are not next
            if not paginator.finished:
                fill(ahead)
            if answer.found:
                yield Page(number, answer.body, paginator.shrank)
    finally:
        _cancel(early)


def _cancel(early: deque[tuple[int, Future[Answer]]]) -> None:
    while early:
        early.popleft()[1].cancel()


def not_a_list(answer: Answer) -> OmnitronError:
    """The first page of the order list is missing: the URL is wrong, not the data."""
    return OmnitronError(f"{answer.what} answered 404 (not found): check base_url")


def next_page_number(next_url: t.Any, current: int) -> int | None:
    """The page number a DRF `next` link points to; None at the end."""
    if not next_url or not isinstance(next_url, str):
        return None
    pages = parse_qs(urlsplit(next_url).query).get("page")
    if pages and pages[0].isdigit():
        return int(pages[0])
    return current + 1
