"""listing in-process: which orders a sync emits, when it reads the list again, what it skips after a kill,
and what it keeps in STATE, with hand-made pages instead of a server (`make mutation` runs these)."""

from __future__ import annotations

import logging

import pytest

from tap_omnitron.listing import MAX_PASSES, Listing, Pass, Plan, Resume, probe_params
from tap_omnitron.pagination import Page

SINCE = "2024-01-01T00:00:00.000000Z"
SIGNPOST = "2024-02-01T00:00:00.000000Z"  # the server's clock when the sync began
LOGGER = "tap-omnitron-test"
IGNORES_SORT = (
    "The server ignores sort=id: the order list is read again until a pass finds nothing new, "
    "and an interrupted sync starts over."
)


def order(order_id: object, modified: str | None = None) -> dict:
    return {"id": order_id} if modified is None else {"id": order_id, "modified_date": modified}


def page(number: int, *orders: dict, count: int | None = None, shrank: bool = False) -> Page:
    body: dict = {"results": list(orders)}
    if count is not None:
        body["count"] = count
    return Page(number, body, shrank)


def pages_of(ids: list[int], per_page: int) -> list[Page]:
    """The list of these orders as a server pages it, `count` on every page."""
    chunks = [ids[i : i + per_page] for i in range(0, len(ids), per_page)] or [[]]
    return [page(n, *map(order, chunk), count=len(ids)) for n, chunk in enumerate(chunks, 1)]


def listing_of(
    *, since: str | None = None, top_id: object = None, resume: Resume | None = None
) -> tuple[Listing, Resume]:
    resume = resume or Resume(since)
    return Listing(Plan(since, SIGNPOST, bookmarkable=True, top_id=top_id), resume, logging.getLogger(LOGGER)), resume


def sync(listing: Listing, passes: list[list[Page]], state: dict | None = None) -> list[list[object]]:
    """Read the list as the orders stream does: pass after pass, while the listing asks for another; the
    orders each pass emitted. A pass beyond those given reads the last one again."""
    state = {} if state is None else state
    emitted = []
    for current in listing.passes():
        new = []
        for listed in passes[min(current.number, len(passes)) - 1]:
            new += [record["id"] for record in listing.select(current, listed)]
            listing.page_done(current, listed, state)
        emitted.append(new)
    return emitted


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- the probes and the plan


def test_probes_ask_for_one_order_of_the_first_page() -> None:
    assert probe_params(sort="-id", since=None) == {"page": 1, "limit": 1, "sort": "-id"}
    assert probe_params(sort="id", since=SINCE) == {"page": 1, "limit": 1, "sort": "id", "modified_date__gte": SINCE}
    assert probe_params(sort="-id", since="") == {"page": 1, "limit": 1, "sort": "-id"}


def test_the_plan_drops_only_orders_that_say_they_are_older_than_since() -> None:
    plan = Plan(SINCE, SIGNPOST, bookmarkable=True)
    assert plan.keeps(order(1, "2024-01-15T00:00:00Z"))
    assert plan.keeps(order(2, SINCE)), "the bound itself is included (modified_date__gte)"
    assert plan.keeps(order(3, "2024-01-01T03:00:00+03:00")), "the same moment in another zone"
    assert not plan.keeps(order(4, "2023-12-31T23:59:59.999999Z"))
    assert not plan.keeps(order(5, "2024-01-01T02:59:59+03:00"))
    assert plan.keeps(order(6)), "no modified_date: it cannot be told apart, so it is kept"
    assert plan.keeps(order(7, "not a date"))


@pytest.mark.parametrize("since", [None, ""])
def test_without_since_every_order_is_kept(since: str | None) -> None:
    assert Plan(since, SIGNPOST, bookmarkable=False).keeps(order(1, "1999-01-01T00:00:00Z"))


# --------------------------------------------------------------------------- resume


def test_a_fresh_resume_knows_nothing_done() -> None:
    resume = Resume.load({}, SINCE)
    assert (resume.since, resume.signpost, resume.after_id, resume.in_id_order) == (SINCE, None, 0, True)
    assert resume.done(1) is False


@pytest.mark.parametrize("saved", [None, "resume", {"after_id": "40"}, {"after_id": None}, {"since": SINCE}])
def test_a_resume_without_an_integer_after_id_starts_over_with_this_runs_since(saved: object) -> None:
    resume = Resume.load({Resume.KEY: saved}, "2024-03-01T00:00:00.000000Z")
    assert (resume.since, resume.signpost, resume.after_id) == ("2024-03-01T00:00:00.000000Z", None, 0)
    assert resume.done(1) is False


def test_a_killed_sync_is_resumed_with_its_own_since_signpost_and_progress() -> None:
    saved = {"since": SINCE, "signpost": SIGNPOST, "after_id": 40, "pass": 1, "page": 8}
    resume = Resume.load({Resume.KEY: saved}, "2024-03-01T00:00:00.000000Z")
    assert (resume.since, resume.signpost, resume.after_id) == (SINCE, SIGNPOST, 40)
    assert resume.done(40) is True
    assert resume.done(1) is True
    assert resume.done(41) is False
    assert resume.done("40") is False, "an id that is no integer is never known done"


def test_this_runs_own_progress_does_not_make_orders_done() -> None:
    resume = Resume.load({Resume.KEY: {"since": SINCE, "after_id": 10}}, SINCE)
    resume.advance(page(1, order(11), order(20)), logging.getLogger(LOGGER))
    assert resume.after_id == 20
    assert resume.done(10) is True
    assert resume.done(15) is False, "a later pass must still find what an earlier one missed"


def test_advance_moves_to_the_last_id_of_a_page_in_order_and_never_back() -> None:
    resume, logger = Resume(SINCE), logging.getLogger(LOGGER)
    resume.advance(page(1, order(3), order(5), order(9)), logger)
    assert resume.after_id == 9
    resume.advance(page(1, order(2), order(4)), logger)  # the page before, read again after a step back
    assert resume.after_id == 9
    resume.advance(page(2, order("x"), order(12), {"no": "id"}), logger)  # ids that are no integers are not counted
    assert resume.after_id == 12
    resume.advance(page(3), logger)
    assert resume.after_id == 12


def test_advance_stays_put_on_a_page_read_after_the_list_shrank() -> None:
    resume = Resume(SINCE)
    resume.advance(page(1, order(3), order(5)), logging.getLogger(LOGGER))
    resume.advance(page(2, order(8), order(9), shrank=True), logging.getLogger(LOGGER))
    assert resume.after_id == 5


def test_a_page_out_of_id_order_means_nothing_is_known_done_any_more(caplog) -> None:
    resume = Resume.load({Resume.KEY: {"since": SINCE, "after_id": 10}}, SINCE)
    state: dict = {}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        resume.advance(page(1, order(12), order(11)), logging.getLogger(LOGGER))
        resume.advance(page(2, order(14), order(13)), logging.getLogger(LOGGER))
    assert warnings(caplog) == [IGNORES_SORT], "said once"
    assert resume.in_id_order is False
    assert resume.done(5) is False
    resume.advance(page(3, order(20), order(21)), logging.getLogger(LOGGER))
    resume.save(state, where=(1, 3))
    assert state[Resume.KEY]["after_id"] == 0, "an interrupted sync must start over"


def test_save_keeps_since_signpost_progress_and_where_the_run_was() -> None:
    resume = Resume(SINCE, SIGNPOST, after_id=7)
    state = {"other": 1}
    resume.save(state, where=(2, 5))
    assert state == {
        "other": 1,
        Resume.KEY: {"since": SINCE, "signpost": SIGNPOST, "after_id": 7, "pass": 2, "page": 5},
    }
    assert Resume.load(state, None).after_id == 7
    Resume.clear(state)
    assert state == {"other": 1}
    Resume.clear(state)  # nothing to clear: no error
    assert state == {"other": 1}


# --------------------------------------------------------------------------- passes


def test_a_pass_remembers_the_highest_integer_id_it_saw() -> None:
    current = Pass(1)
    assert current.highest is None
    for order_id in (5, "99", 9, None, 7, 9):
        current.saw(order_id)
    assert current.highest == 9


@pytest.mark.parametrize(
    ("number", "pages", "recovered", "complete"),
    [(1, 0, 0, True), (1, 1, 0, True), (1, 2, 0, False), (2, 2, 0, True), (2, 2, 1, False), (3, 1, 4, True)],
)
def test_a_pass_is_complete_when_read_in_one_response_or_when_it_recovered_nothing(
    number: int, pages: int, recovered: int, complete: bool
) -> None:
    assert Pass(number, pages=pages, recovered=recovered).complete is complete


def test_a_list_read_in_one_response_is_read_once() -> None:
    listing, _ = listing_of(top_id=3)
    assert sync(listing, [[page(1, order(1), order(2), order(3), count=3)]]) == [[1, 2, 3]]


def test_an_unchanged_list_of_several_pages_is_read_twice_and_emitted_once() -> None:
    listing, _ = listing_of(top_id=5)
    assert sync(listing, [pages_of([1, 2, 3, 4, 5], 2)]) == [[1, 2, 3, 4, 5], []]


def test_an_order_that_slipped_past_a_pass_is_found_by_the_next_and_one_more_pass_follows() -> None:
    listing, _ = listing_of(top_id=6)
    first = [page(1, order(1), order(2), count=6), page(2, order(5), order(6), count=4)]  # 3 and 4 slipped
    assert sync(listing, [first, pages_of([1, 2, 3, 4, 5, 6], 2)]) == [[1, 2, 5, 6], [3, 4], []]


def test_orders_created_or_changed_during_the_sync_do_not_call_for_another_pass() -> None:
    """The next run lists them anyway: an id above the first pass's highest, or a change at or after the
    signpost."""
    listing, _ = listing_of(top_id=4)
    later = [
        page(1, order(1), order(2), order(3, SIGNPOST), count=6),
        page(2, order(4), order(5), order(6, "2024-02-01T00:00:01Z"), count=6),
    ]
    assert sync(listing, [pages_of([1, 2, 4], 2), later]) == [[1, 2, 4], [3, 5, 6]]


def test_an_order_changed_before_the_signpost_that_a_pass_missed_calls_for_another_pass() -> None:
    listing, _ = listing_of(top_id=4)
    later = [page(1, order(1), order(2), count=4), page(2, order(3, "2024-01-31T23:59:59Z"), order(4), count=4)]
    assert sync(listing, [pages_of([1, 2, 4], 2), later]) == [[1, 2, 4], [3], []]


def test_the_highest_id_of_the_first_pass_is_not_newer_than_the_sync() -> None:
    """Order 12 was listed by the first pass but skipped as done by a killed run; the server then turned
    out to ignore sort=id, so the second pass emits it: an order the first pass saw, not a new one."""
    resume = Resume.load({Resume.KEY: {"since": None, "after_id": 12}}, None)
    listing, _ = listing_of(top_id=20, resume=resume)
    first = [page(1, order(12), count=3), page(2, order(5), order(3), count=3)]
    second = [page(1, order(12), count=2), page(2, order(13), count=2)]
    assert sync(listing, [first, second]) == [[], [12, 13], []]


def test_a_list_still_changing_is_read_at_most_max_passes_times(caplog) -> None:
    """Every pass finds orders changed before the sync began that the pass before missed."""
    first = [page(1, order(90), count=2), page(2, order(95), count=2)]
    changing = [
        [page(1, order(n * 10 + 1, "2024-01-15T00:00:00Z"), count=2), page(2, order(n * 10 + 2), count=2)]
        for n in range(1, MAX_PASSES + 1)
    ]
    listing, _ = listing_of(top_id=100)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        emitted = sync(listing, [first, *changing])
    assert emitted == [[90, 95], *([n * 10 + 1, n * 10 + 2] for n in range(1, MAX_PASSES))]
    assert warnings(caplog) == [
        f"The order list was still changing after {MAX_PASSES} passes; an order it hid may wait until it next changes."
    ]


def test_passes_are_numbered_from_one() -> None:
    listing, _ = listing_of(top_id=4)
    numbers = []
    for current in listing.passes():
        numbers.append(current.number)
        for listed in pages_of([1, 2, 3, 4], 2):
            listing.select(current, listed)
    assert numbers == [1, 2]


# --------------------------------------------------------------------------- select


def test_select_keeps_the_servers_order_and_skips_what_was_emitted_or_done_or_old() -> None:
    resume = Resume.load({Resume.KEY: {"since": SINCE, "after_id": 3}}, SINCE)
    listing, _ = listing_of(since=SINCE, top_id=9, resume=resume)
    current = Pass(1)
    first = page(1, order(2), order(9), order(7, "2023-06-01T00:00:00Z"), order(8), count=6)
    assert [r["id"] for r in listing.select(current, first)] == [9, 8]
    again = page(2, order(9), order(1), order(6, "2023-06-01T00:00:00Z"), order(5, "2024-01-02T00:00:00Z"), count=6)
    assert [r["id"] for r in listing.select(current, again)] == [5]
    assert listing.emitted == {9, 8, 5}
    assert listing.older == 2
    assert current.recovered == 0, "the first pass recovers nothing: no pass came before it"


def test_old_orders_are_counted_once_however_many_passes_list_them() -> None:
    listing, _ = listing_of(since=SINCE, top_id=4)
    old = "2023-01-01T00:00:00Z"
    listed = [page(1, order(1, old), order(2), count=4), page(2, order(3, old), order(4), count=4)]
    assert sync(listing, [listed]) == [[2, 4], []]
    assert listing.older == 2


def test_seen_counts_the_rows_of_the_first_pass_only() -> None:
    listing, _ = listing_of(top_id=5)
    assert listing.seen == 0
    sync(listing, [pages_of([1, 2, 3, 4, 5], 2), pages_of([1, 2, 3, 4, 5, 6, 7], 2)])
    assert listing.seen == 5, "how far the run is: later passes read the same list again"


def test_the_page_count_comes_from_the_first_full_page_of_a_pass() -> None:
    listing, _ = listing_of(top_id=12)
    assert listing.pages is None, "unknown before the first page"
    current = Pass(1)
    listing.select(current, page(1, *map(order, range(1, 6)), count=12))
    assert listing.pages == 3
    assert isinstance(listing.pages, int)
    listing.select(current, page(2, *map(order, range(6, 11)), count=13))
    listing.select(current, page(3, order(11), order(12), count=12))  # the short last page
    assert listing.pages == 3
    later = Pass(2)
    listing.select(later, page(1, *map(order, range(1, 6)), count=16))
    assert listing.pages == 4, "each pass says again how many pages there are"


def test_a_page_without_a_count_or_without_rows_leaves_the_page_count_unknown() -> None:
    listing, _ = listing_of(top_id=2)
    listing.select(Pass(1), page(1, order(1), order(2)))
    assert listing.pages is None
    listing.select(Pass(2), page(1, count=5))
    assert listing.pages is None


def test_order_ids_that_are_text_are_still_emitted_once_and_the_passes_end() -> None:
    listing, resume = listing_of(top_id="B")
    first = [page(1, order("A"), count=2), page(2, order("B"), count=2)]
    second = [page(1, order("A"), count=3), page(2, order("B"), count=3), page(3, order("C"), count=3)]
    assert sync(listing, [first, second]) == [["A", "B"], ["C"], []]
    assert resume.in_id_order is False


# --------------------------------------------------------------------------- does the server sort?


def test_a_server_whose_descending_list_starts_above_the_ascending_one_sorts(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for results, count in (([order(1), order(2)], 2), ([order(1)], 5), ([order(1), order(2)], None)):
            listing, resume = listing_of(top_id=2)
            listing.select(Pass(1), page(1, *results, count=count))
            assert resume.in_id_order is True
    assert warnings(caplog) == []


@pytest.mark.parametrize(
    ("first_id", "top_id", "count"),
    [(2, 2, 2), (7, 3, 10), (1, None, 2), ("A", 5, 2), (1, "9", 2)],
    ids=["same-start", "descending-starts-lower", "no-top", "text-id", "text-top"],
)
def test_a_server_whose_two_sorts_start_alike_ignores_sort(caplog, first_id, top_id, count) -> None:
    listing, resume = listing_of(top_id=top_id)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        listing.select(Pass(1), page(1, order(first_id), order(99), count=count))
    assert resume.in_id_order is False
    assert warnings(caplog) == [IGNORES_SORT]


@pytest.mark.parametrize(
    "first", [page(1, order(5), count=1), page(1, count=5), page(1, count=0)], ids=["one-order", "no-rows", "empty"]
)
def test_a_list_of_fewer_than_two_orders_says_nothing_about_sorting(first: Page) -> None:
    listing, resume = listing_of(top_id=5)
    listing.select(Pass(1), first)
    assert resume.in_id_order is True


def test_only_the_first_page_of_the_first_pass_is_compared_with_the_probe() -> None:
    """Later pages start above the probe's top id when orders were created since; later passes too."""
    listing, resume = listing_of(top_id=10)
    current = Pass(1)
    listing.select(current, page(1, order(1), order(2), count=4))
    listing.select(current, page(2, order(11), order(12), count=4))
    listing.select(Pass(2), page(1, order(11), order(12), count=4))
    assert resume.in_id_order is True


def test_page_done_records_progress_and_where_the_sync_was() -> None:
    listing, resume = listing_of(since=SINCE, top_id=6)
    state: dict = {}
    current = Pass(2)
    listed = page(3, order(5), order(6), count=6)
    listing.select(current, listed)
    listing.page_done(current, listed, state)
    assert state[Resume.KEY] == {"since": SINCE, "signpost": None, "after_id": 6, "pass": 2, "page": 3}
    assert resume.after_id == 6


def test_page_done_on_a_page_out_of_order_warns_through_the_listings_logger(caplog) -> None:
    listing, resume = listing_of(top_id=9)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        listing.page_done(Pass(1), page(1, order(9), order(4)), {})
    assert resume.in_id_order is False
    assert warnings(caplog) == [IGNORES_SORT]
