"""feed in-process: each page's items and detail requests, details read in the page's order, which failures
are remembered for the next run and which end this one, with a fake details stream whose answers are
futures made here (`make mutation` runs these)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from tap_omnitron.api import Answer
from tap_omnitron.errors import GaveUp, OmnitronError
from tap_omnitron.feed import FAILED_IN_A_ROW, RECENT, Detail, OrderFeed

WHAT = "GET /api/i1/orders_integration/{}/detailed_integration/"
GONE_MESSAGE = (
    "{} of the last {} order details answered 404 although their orders are listed: "
    "check that the API user may read orders_integration"
)


def error_for(order_id: object) -> str:
    return f"{WHAT.format(order_id)}: gave up after 3 attempts in 1 s; last error: HTTP 500 Internal Server Error"


class Details:
    """A details stream whose answers are scripted per order: "ok", "gone" (404), "failed" (retries ran
    out) or "pending" (still in flight); what is not scripted answers "ok"."""

    def __init__(self, **script: str) -> None:
        self.script: dict[object, str] = {int(key.removeprefix("o")): outcome for key, outcome in script.items()}
        self.requested: list[object] = []
        self.futures: dict[object, Future] = {}

    def request_detail(self, order_id: object) -> Future:
        self.requested.append(order_id)
        future: Future = Future()
        outcome = self.script.get(order_id, "ok")
        if outcome == "ok":
            future.set_result(Answer(WHAT.format(order_id), 200, {"pk": order_id}, None))
        elif outcome == "gone":
            future.set_result(Answer(WHAT.format(order_id), 404, None, None))
        elif outcome == "failed":
            future.set_exception(GaveUp(error_for(order_id)))
        self.futures[order_id] = future
        return future


def orders(*ids: int) -> list[dict]:
    return [{"id": order_id, "orderitem_set": [{"id": order_id * 10}]} for order_id in ids]


def outcomes(feed: OrderFeed, number: int) -> list[tuple[object, str]]:
    """What became of each detail of a page, in the page's order."""
    result = []
    for detail in feed.details(number):
        if detail.error is not None:
            result.append((detail.order_id, "failed"))
        else:
            assert detail.answer is not None
            result.append((detail.order_id, "ok" if detail.answer.found else "gone"))
    return result


def run_details(feed: OrderFeed, sequence: str, *, start: int = 1) -> int:
    """Publish one page per detail, as scripted by `sequence` ("o" ok, "g" gone, "f" failed), and read
    each; the number of details read before the feed ended the run (all of them if it did not)."""
    kinds = {"o": "ok", "g": "gone", "f": "failed"}
    for offset, kind in enumerate(sequence):
        order_id = start + offset
        feed.publish(order_id, orders(order_id), details=Details(**{f"o{order_id}": kinds[kind]}))
        try:
            outcomes(feed, order_id)
        except OmnitronError:
            return offset
        feed.retire(order_id)
    return len(sequence)


# --------------------------------------------------------------------------- pages, items and details


def test_a_published_page_requests_every_detail_at_once_in_the_order_of_its_orders() -> None:
    feed, details = OrderFeed(max_skipped=10), Details(o2="gone", o3="failed")
    feed.publish(1, orders(4, 2, 3, 1), details=details)
    assert details.requested == [4, 2, 3, 1]
    assert outcomes(feed, 1) == [(4, "ok"), (2, "gone"), (3, "failed"), (1, "ok")]


def test_details_carry_the_answer_or_the_error_of_their_order() -> None:
    feed, details = OrderFeed(max_skipped=10), Details(o5="failed")
    feed.publish(1, orders(4, 5), details=details)
    first, second = feed.details(1)
    assert first == Detail(4, details.futures[4].result())
    assert first.answer is not None and first.answer.body == {"pk": 4}
    assert second == Detail(5, None, error_for(5))


def test_items_of_a_page_come_with_their_order_id_and_an_order_without_items_has_none() -> None:
    feed = OrderFeed(max_skipped=10)
    page = [
        {"id": 1, "orderitem_set": [{"id": 11}, {"id": 12}]},
        {"id": 2, "orderitem_set": None},
        {"id": 3},
        {"id": 4, "orderitem_set": [{"id": 41}]},
    ]
    feed.publish(7, page, details=None)
    assert list(feed.items(7)) == [(1, {"id": 11}), (1, {"id": 12}), (4, {"id": 41})]


def test_without_the_details_stream_no_detail_is_requested() -> None:
    feed = OrderFeed(max_skipped=10)
    feed.publish(1, orders(1, 2), details=None)
    assert list(feed.details(1)) == []
    assert [order_id for order_id, _ in feed.items(1)] == [1, 2]


def test_details_are_read_once() -> None:
    feed = OrderFeed(max_skipped=10)
    feed.publish(1, orders(1, 2), details=Details())
    assert len(outcomes(feed, 1)) == 2
    assert outcomes(feed, 1) == []


def test_a_retired_page_is_forgotten_and_its_unread_requests_cancelled() -> None:
    feed, details = OrderFeed(max_skipped=10), Details(o1="pending", o2="pending")
    feed.publish(1, orders(1, 2), details=details)
    feed.publish(2, orders(3), details=details)
    feed.retire(1)
    assert details.futures[1].cancelled()
    assert details.futures[2].cancelled()
    assert not details.futures[3].cancelled()
    with pytest.raises(KeyError):
        list(feed.items(1))
    assert outcomes(feed, 2) == [(3, "ok")]
    feed.retire(1)  # twice, or a page never published: nothing to do
    feed.retire(99)


# --------------------------------------------------------------------------- skipped details


def test_a_failed_detail_is_remembered_with_its_error_and_an_answer_forgets_it() -> None:
    feed = OrderFeed(max_skipped=10)
    feed.publish(1, orders(1, 2, 3), details=Details(o2="failed", o3="gone"))
    outcomes(feed, 1)
    assert feed.skipped == {2: error_for(2)}
    feed.publish(2, orders(2), details=Details())
    outcomes(feed, 2)
    assert feed.skipped == {}


def test_details_skipped_by_an_earlier_run_are_asked_for_first_on_a_page_of_their_own() -> None:
    feed = OrderFeed(max_skipped=10)
    feed.remember([7, 9, 8])
    assert feed.skipped == dict.fromkeys([7, 9, 8], "skipped by an earlier run")
    details = Details(o9="gone", o8="failed")
    feed.publish_skipped(1, details)
    assert details.requested == [7, 9, 8]
    assert list(feed.items(1)) == []
    assert outcomes(feed, 1) == [(7, "ok"), (9, "gone"), (8, "failed")]
    assert feed.skipped == {8: error_for(8)}


def test_failures_of_remembered_details_say_nothing_about_the_server_now() -> None:
    """They failed before: however many fail again, they neither end the run nor count toward the run's
    failures in a row."""
    feed = OrderFeed(max_skipped=100)
    feed.remember(range(1, 9))
    feed.publish_skipped(1, Details(**{f"o{n}": "failed" for n in range(1, 9)}))
    assert [outcome for _, outcome in outcomes(feed, 1)] == ["failed"] * 8
    assert len(feed.skipped) == 8
    assert run_details(feed, "f" * (FAILED_IN_A_ROW - 1), start=20) == FAILED_IN_A_ROW - 1


# --------------------------------------------------------------------------- when failures end the run


def test_three_details_failing_in_a_row_end_the_run() -> None:
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "ffoffo") == 6, "two in a row, twice: each order's own problem"
    feed.publish(9, orders(7, 8, 9), details=Details(o7="failed", o8="failed", o9="failed"))
    with pytest.raises(OmnitronError) as ended:
        outcomes(feed, 9)
    assert str(ended.value) == f"{error_for(9)}; 3 order details in a row failed"
    assert feed.skipped.keys() == {1, 2, 4, 5, 7, 8, 9}


def test_the_first_three_details_failing_end_the_run_with_how_many() -> None:
    feed = OrderFeed(max_skipped=100)
    feed.publish(1, orders(1, 2, 3, 4), details=Details(o1="failed", o2="failed", o3="failed", o4="failed"))
    read = feed.details(1)
    assert next(read).error == error_for(1)
    assert next(read).error == error_for(2)
    with pytest.raises(OmnitronError) as ended:
        next(read)
    assert str(ended.value) == f"{error_for(3)}; {FAILED_IN_A_ROW} order details in a row failed"


def test_more_than_half_of_the_recent_details_failing_ends_the_run() -> None:
    """Never three in a row, but 11 of the last 20: the 16th detail of ff-o-ff-o-... ends the run."""
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "ffo" * 5 + "ff") == 15
    feed = OrderFeed(max_skipped=100)
    feed.publish(1, orders(*range(1, 17)), details=Details(**{f"o{n}": "failed" for n in range(1, 17) if n % 3}))
    with pytest.raises(OmnitronError) as ended:
        outcomes(feed, 1)
    assert str(ended.value) == f"{error_for(16)}; 11 of the last {RECENT} order details failed"


def test_failures_older_than_the_last_twenty_details_are_forgotten() -> None:
    """11 failures in all, but never more than 8 among the last 20 details."""
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "fo" * 3 + "o" * 20 + "ffo" * 4) == 38


def test_many_details_answering_404_mean_the_api_user_may_not_read_them() -> None:
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "og" * 10) == 20, "10 of 20: no more than half"
    feed.publish(21, orders(21), details=Details(o21="gone"))
    with pytest.raises(OmnitronError) as ended:
        outcomes(feed, 21)
    assert str(ended.value) == GONE_MESSAGE.format(11, RECENT)


def test_the_first_five_details_answering_404_end_the_run_at_once() -> None:
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "ggggo") == 5
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "gggggg") == 4
    feed = OrderFeed(max_skipped=100)
    feed.publish(1, orders(1, 2, 3, 4, 5), details=Details(o1="gone", o2="gone", o3="gone", o4="gone", o5="gone"))
    with pytest.raises(OmnitronError) as ended:
        outcomes(feed, 1)
    assert str(ended.value) == GONE_MESSAGE.format(5, 5)


def test_404s_older_than_the_last_twenty_details_are_forgotten() -> None:
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "gggo" + "o" * 16 + "g" * 8) == 28


def test_an_answer_or_a_404_is_never_held_against_the_failure_limits() -> None:
    feed = OrderFeed(max_skipped=0)
    feed.remember([100, 101])  # already more skipped than allowed
    assert run_details(feed, "ogo") == 3
    feed = OrderFeed(max_skipped=100)
    assert run_details(feed, "ffgffoffg") == 9, "a 404 ends a run of failures, as an answer does"


def test_more_skipped_details_than_max_skipped_end_the_run() -> None:
    feed = OrderFeed(max_skipped=2)
    feed.remember([100])
    assert run_details(feed, "fo") == 2, "two skipped: as many as allowed"
    with pytest.raises(OmnitronError) as ended:
        run_details_raising(feed, "f", start=3)
    assert str(ended.value) == (
        "3 order details could not be fetched, more than max_skipped_details (2): something systematic is "
        f"wrong; last error: {error_for(3)}"
    )


def run_details_raising(feed: OrderFeed, sequence: str, *, start: int) -> None:
    kinds = {"o": "ok", "g": "gone", "f": "failed"}
    for offset, kind in enumerate(sequence):
        order_id = start + offset
        feed.publish(order_id, orders(order_id), details=Details(**{f"o{order_id}": kinds[kind]}))
        outcomes(feed, order_id)
