"""How the order list is read without losing an order, whatever the server makes of our query.

Omnitron documents neither `sort` nor the `modified_date` lookups for orders, and its
documented orders carry no `modified_date`. So at the start of every run two small probes
ask the server itself:

* `modified_date__gte=<far future>` must list nothing: if it does, the server ignores the
  filter (and its first order shows whether orders carry `modified_date` at all);
* `sort=-id`, limit 1, must start elsewhere than `sort=id`: if it does not, the server
  ignores `sort` and lists in an order of its own.

The bookmark is the server's clock (`Date` header) at the start of the sync, never a value
read from records: every order changed after that moment is listed by the next run.

Page-number pages over a list that changes skip rows whenever a row before the current
page moves or vanishes. So the list is read again, in passes, until a pass finds no order
this sync has not emitted (orders newer than the sync, which the next run lists anyway, do
not count); only new orders get a detail request. A pass read in one request is complete.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_omnitron import dates

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

    from tap_omnitron.pagination import Page

FUTURE = "2999-01-01T00:00:00Z"  # a lower bound no order reaches: a filtering server lists nothing
MAX_PASSES = 5  # a list still changing after this many passes is left to the next run


@dataclass(frozen=True)
class Plan:
    """What this run does, from the probes at its start."""

    since: str | None  # lower bound on modified_date, for the server and for records that carry it
    signpost: str  # the server's clock at the start of the sync: the next run's bookmark
    bookmarkable: bool  # a bookmark can be justified: the server filters, or orders carry the key
    top_id: t.Any = None  # the first order's id under sort=-id: sort=id must start elsewhere

    def keeps(self, record: dict) -> bool:
        """Drop an order older than `since`, when it says how old it is (the server may not
        filter); an order without `modified_date` cannot be told apart, so it is kept."""
        if not self.since:
            return True
        modified = dates.canonical(record.get("modified_date"))
        return modified is None or modified >= self.since


def probe_params(*, sort: str, since: str | None) -> dict[str, t.Any]:
    params: dict[str, t.Any] = {"page": 1, "limit": 1, "sort": sort}
    if since:
        params["modified_date__gte"] = since
    return params


@dataclass
class Resume:
    """Where an interrupted sync of orders picks up: kept in the orders' STATE.

    On a server that honours `sort=id` pages come in id order under a fixed filter (`since`),
    so "every listed order up to `after_id` was emitted with its children" holds, and a later
    run skips those orders and their detail requests. (Not quite always: an order deleted and
    another created between the same two pages leave `count` as it was while a row slips past;
    only the second pass finds it, and a kill before that pass leaves it to its next change.)
    On any other server nothing is known to be done, and an interrupted sync starts over.
    Either way the later run keeps the first run's `since` and `signpost`, so its bookmark is
    no later than that.
    """

    KEY: t.ClassVar[str] = "resume"
    since: str | None
    signpost: str | None = None
    after_id: int = 0  # this sync's progress, the killed runs' included
    in_id_order: bool = True
    _done_through: int = 0  # what killed runs did: this run skips those orders

    @classmethod
    def load(cls, stream_state: dict, since: str | None) -> Resume:
        saved = stream_state.get(cls.KEY)
        if isinstance(saved, dict) and isinstance(saved.get("after_id"), int):
            after_id = saved["after_id"]
            return cls(saved.get("since"), saved.get("signpost"), after_id, _done_through=after_id)
        return cls(since)

    def done(self, order_id: t.Any) -> bool:
        """Emitted by a killed run of this sync (this run's own progress is not consulted:
        a later pass must still find what an earlier one missed)."""
        return self.in_id_order and isinstance(order_id, int) and order_id <= self._done_through

    def advance(self, page: Page, logger: logging.Logger) -> None:
        """Move `after_id` to the end of a page, unless the page may have skipped rows.

        After deletions (the list shrank) the paginator re-reads the page before; the rows
        it finds there are not covered until then.
        """
        ids = [order_id for r in page.results if isinstance(order_id := r.get("id"), int)]
        if self.in_id_order and ids != sorted(ids):
            self.not_in_id_order(logger)
        if self.in_id_order and ids and not page.shrank:
            self.after_id = max(self.after_id, ids[-1])

    def not_in_id_order(self, logger: logging.Logger) -> None:
        if self.in_id_order:
            self.in_id_order = False
            self.after_id = self._done_through = 0
            logger.warning(
                "The server ignores sort=id: the order list is read again until a pass finds "
                "nothing new, and an interrupted sync starts over."
            )

    def save(self, stream_state: dict, *, where: tuple[int, int]) -> None:
        """Into the orders' STATE; `where` (pass, page) says how far the sync had read: it is
        not needed to resume, but it makes each page's STATE tell where the run was."""
        pass_number, page = where
        saved = {"since": self.since, "signpost": self.signpost, "after_id": self.after_id}
        stream_state[self.KEY] = {**saved, "pass": pass_number, "page": page}

    @classmethod
    def clear(cls, stream_state: dict) -> None:
        stream_state.pop(cls.KEY, None)


@dataclass
class Pass:
    """One reading of the whole list, page by page."""

    number: int
    pages: int = 0  # responses read
    recovered: int = 0  # of those, orders an earlier pass should have seen: worth another pass
    highest: t.Any = None  # the highest order id listed

    def saw(self, order_id: t.Any) -> None:
        if isinstance(order_id, int) and (self.highest is None or order_id > self.highest):
            self.highest = order_id

    @property
    def complete(self) -> bool:
        """One response shows the list at one moment; a later pass finding nothing old, too."""
        return self.pages <= 1 or (self.number > 1 and not self.recovered)


class Listing:
    """One sync's reading of the order list: which orders are new, which are done, when to stop."""

    def __init__(self, plan: Plan, resume: Resume, logger: logging.Logger) -> None:
        self.plan = plan
        self.resume = resume
        self.logger = logger
        self.emitted: set[t.Any] = set()  # orders this run has emitted
        self.older = 0  # listed although older than `since`: the server ignored the filter
        self.seen = 0  # rows the first pass has read: how far the run is
        self.pages: int | None = None  # pages in the list, as the first page of the last pass said
        self._bound: t.Any = None  # the highest id the first pass listed

    def passes(self) -> Iterator[Pass]:
        for number in range(1, MAX_PASSES + 1):
            current = Pass(number)
            yield current
            if number == 1:
                self._bound = current.highest
            if current.complete:
                return
        self.logger.warning(
            "The order list was still changing after %d passes; an order it hid may wait until it next changes.",
            MAX_PASSES,
        )

    def select(self, current: Pass, page: Page) -> list[dict]:
        """The orders of a page that this sync has not emitted yet, in the server's order."""
        if current.pages == 0 and current.number == 1:
            self._check_sort(page)
        current.pages += 1
        if page.count is not None and page.results and current.pages == 1:
            self.pages = -(-page.count // len(page.results))
        if current.number == 1:
            self.seen += len(page.results)
        new = []
        for record in page.results:
            order_id = record.get("id")
            current.saw(order_id)
            if order_id in self.emitted or self.resume.done(order_id):
                continue  # emitted, with its children, before (this run or a killed one)
            if not self.plan.keeps(record):
                self.older += current.number == 1
                continue
            self.emitted.add(order_id)
            if current.number > 1 and not self._newer_than_sync(record):
                current.recovered += 1
            new.append(record)
        return new

    def page_done(self, current: Pass, page: Page, stream_state: dict) -> None:
        """A page's orders and all their children are out: say so in STATE."""
        self.resume.advance(page, self.logger)
        self.resume.save(stream_state, where=(current.number, page.number))

    def _newer_than_sync(self, record: dict) -> bool:
        """Created (a higher id) or changed since the sync began: the next run lists it."""
        order_id = record.get("id")
        if isinstance(order_id, int) and isinstance(self._bound, int) and order_id > self._bound:
            return True
        modified = dates.canonical(record.get("modified_date"))
        return modified is not None and modified >= self.plan.signpost

    def _check_sort(self, page: Page) -> None:
        """`sort=-id` and `sort=id` must start at different ends of a list of two or more."""
        results, count = page.results, page.count
        if not results or count is None or count < 2:  # noqa: PLR2004  (two or more: see the docstring)
            return
        first, top = results[0].get("id"), self.plan.top_id
        if not (isinstance(first, int) and isinstance(top, int) and top > first):
            self.resume.not_in_id_order(self.logger)
