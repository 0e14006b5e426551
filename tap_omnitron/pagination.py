"""Page-number pagination that trusts the server's `next` and survives a shrinking list.

The server may cap `limit` silently, so the next page comes from `next`, never from our
own arithmetic. Only its `page` number is used: requests always go to the configured
host, whatever host `next` names.

Orders deleted while the tap pages shift every later row one place back, so the first
rows of the next page would never be read. When `count` drops between two pages, or a
page that `next` promised answers 404, the paginator steps back one page: rows are read
twice rather than never (targets upsert on the key).
"""

from __future__ import annotations

import logging
import typing as t
from urllib.parse import parse_qs, urlsplit

from singer_sdk.pagination import BaseAPIPaginator

if t.TYPE_CHECKING:
    import requests

logger = logging.getLogger("tap-omnitron")

MAX_REWINDS = 50  # a list that keeps shrinking is read to its end anyway, just not forever


class ShrinkWatch:
    """Tells whether a page's `count` is lower than the previous page's."""

    def __init__(self) -> None:
        self._count: int | None = None

    def shrank(self, body: dict) -> bool:
        count = body.get("count")
        if not isinstance(count, int):
            return False
        shrank = self._count is not None and count < self._count
        self._count = count
        return shrank


class NextPagePaginator(BaseAPIPaginator[int]):
    """Pages 1, 2, ... as long as the server answers with a `next` link."""

    def __init__(self, payload: t.Callable[[requests.Response], t.Any]) -> None:
        super().__init__(1)
        self._payload = payload
        self._watch = ShrinkWatch()
        self._last_good = 0
        self.rewinds = 0

    def get_next(self, response: requests.Response) -> int | None:
        if response.status_code == 404:  # noqa: PLR2004  (the promised page vanished)
            return self._rewind(self._last_good, "a listed page no longer exists")
        body = self._payload(response)
        self._last_good = self.current_value
        if self._watch.shrank(body) and self.current_value > 1:
            return self._rewind(self.current_value - 1, "the order list shrank")
        return next_page_number(body.get("next"), self.current_value)

    def _rewind(self, page: int, why: str) -> int | None:
        if self.rewinds >= MAX_REWINDS or page < 1:
            logger.warning("%s; stopping pagination at page %d", why, self.current_value)
            return None
        self.rewinds += 1
        logger.info("%s while paging: reading page %d again", why, page)
        return page


def page_number(url: str) -> int:
    """The `page` a list URL asks for (1 when it names none)."""
    pages = parse_qs(urlsplit(url).query).get("page")
    return int(pages[0]) if pages and pages[0].isdigit() else 1


def next_page_number(next_url: t.Any, current: int) -> int | None:  # noqa: ANN401
    """The page number a DRF `next` link points to; None at the end."""
    if not next_url or not isinstance(next_url, str):
        return None
    pages = parse_qs(urlsplit(next_url).query).get("page")
    if pages and pages[0].isdigit():
        return int(pages[0])
    return current + 1
