"""One broken order must not stop a shop's pipeline: skip its detail, remember it, fetch it
when the server heals. A server whose details all fail still ends the run at once."""

from __future__ import annotations

import re
from concurrent.futures import Future

import pytest

from conftest import config_for
from helpers import run_tap, run_tap_killed
from tap_omnitron.errors import AuthenticationError
from tap_omnitron.feed import OrderFeed

pytestmark = pytest.mark.scenario  # see pyproject.toml's markers

DETAIL = "/api/i1/orders_integration/{}/detailed_integration/"


def skipped_in(run) -> list[int]:
    return run.last_state["bookmarks"]["orders"].get("skipped_details", [])


def detail_requests(sandbox) -> int:
    return sum(n for path, n in sandbox.requests_by_path.items() if "detailed_integration" in path)


def error_lines_about(run, order_id: int) -> list[str]:
    return [line for line in run.stderr.splitlines() if f"Order {order_id}: its detail is skipped" in line]


@pytest.mark.parametrize(
    "positions",
    [(0,), (-1,), (10, 12), (49, 149)],
    ids=["first-on-the-first-page", "last-on-the-last-page", "two-on-one-page", "two-pages-apart"],
)
def test_broken_details_are_skipped_remembered_and_fetched_after_healing(shaped_factory, positions) -> None:
    sandbox = shaped_factory(orders=237, seed=11)
    ids = sorted(sandbox.orders_snapshot())
    broken = sorted(ids[p] for p in positions)
    sandbox.broken_details.update(broken)
    config = config_for(sandbox, page_size=50, max_retries=2)

    first = run_tap(config)
    assert first.returncode == 0, first.stderr
    assert set(first.by_key("orders", "id")) == set(ids)
    assert len(first.by_key("order_items", "id")) == sum(len(sandbox.list_record(i)["orderitem_set"]) for i in ids)
    assert set(first.by_key("order_details", "pk")) == set(ids) - set(broken)
    assert skipped_in(first) == broken
    for order_id in broken:
        [line] = error_lines_about(first, order_id)
        assert re.search(r"gave up after 3 attempts in \d+ s; last error: HTTP 500 Internal Server Error", line)
    assert f"{len(broken)} skipped after errors" in first.stderr

    still = run_tap(config, state=first.last_state)  # not healed yet: still remembered
    assert still.returncode == 0, still.stderr
    assert skipped_in(still) == broken

    sandbox.broken_details.clear()
    sandbox.reset_stats()
    healed = run_tap(config, state=still.last_state)
    assert healed.returncode == 0, healed.stderr
    assert set(healed.by_key("order_details", "pk")) == set(broken)
    assert healed.records("orders") == []
    assert skipped_in(healed) == []
    # The remembered details, then the two probes and one page of no changes.
    assert (detail_requests(sandbox), sandbox.request_count) == (len(broken), len(broken) + 3)


def test_an_order_that_changes_takes_its_detail_the_normal_way(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=30)
    broken = sorted(sandbox.orders_snapshot())[7]
    sandbox.broken_details.add(broken)
    first = run_tap(config_for(sandbox, max_retries=1))
    assert skipped_in(first) == [broken]
    sandbox.broken_details.clear()
    sandbox.modify(ids=[broken])
    second = run_tap(config_for(sandbox, max_retries=1), state=first.last_state)
    assert set(second.by_key("orders", "id")) == {broken}
    assert second.by_key("order_details", "pk")[broken]["status"] == sandbox.list_record(broken)["status"]
    assert skipped_in(second) == []


def test_a_killed_run_keeps_what_it_skipped(shaped_factory) -> None:
    sandbox = shaped_factory(orders=40)
    broken = sorted(sandbox.orders_snapshot())[2]
    sandbox.broken_details.add(broken)
    config = config_for(sandbox, max_retries=1, max_concurrency=4)
    killed = run_tap_killed(config, state=None, after_records=60)
    assert skipped_in(killed) == [broken]
    sandbox.broken_details.clear()
    resumed = run_tap(config, state=killed.last_state)
    assert resumed.returncode == 0, resumed.stderr
    assert broken in resumed.by_key("order_details", "pk")
    assert skipped_in(resumed) == []
    emitted = set(killed.by_key("order_details", "pk")) | set(resumed.by_key("order_details", "pk"))
    assert emitted == set(sandbox.orders_snapshot())


def test_concurrency_does_not_change_what_is_skipped(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=60, latency_ms=2)
    sandbox.broken_details.update(sorted(sandbox.orders_snapshot())[5:7])
    runs = [run_tap(config_for(sandbox, max_concurrency=n, max_retries=1)) for n in (1, 8)]
    assert [skipped_in(run) for run in runs] == [sorted(sandbox.broken_details)] * 2
    assert runs[0].by_key("order_details", "pk") == runs[1].by_key("order_details", "pk")


def test_a_server_whose_every_detail_fails_still_ends_the_run_fast(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23)
    sandbox.broken_details.update(sandbox.orders_snapshot())
    run = run_tap(config_for(sandbox, max_retries=2))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "3 order details in a row failed" in run.error_lines[0]
    # Two probes, three list pages at most (the page, the one read ahead, one in flight), and
    # the details of two pages of 5, each tried three times: never every order's detail.
    assert sandbox.request_count <= 2 + 3 + 2 * 5 * 3


def test_too_many_skipped_details_end_the_run(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23)
    ids = sorted(sandbox.orders_snapshot())
    sandbox.broken_details.update([ids[2], ids[9]])
    run = run_tap(config_for(sandbox, max_retries=0, max_skipped_details=1))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "2 order details could not be fetched, more than max_skipped_details (1)" in run.error_lines[0]


def test_fail_on_skipped_details_exits_non_zero_after_loading_the_rest(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23)
    broken = sorted(sandbox.orders_snapshot())[4]
    sandbox.broken_details.add(broken)
    run = run_tap(config_for(sandbox, max_retries=0, fail_on_skipped_details=True))
    assert run.returncode == 1
    assert run.error_lines == [
        (
            f"tap-omnitron: error: 1 order details could not be fetched (orders {broken}); everything "
            "else is loaded, and the next run asks for them first"
        )
    ]
    assert len(run.by_key("order_details", "pk")) == 22
    assert skipped_in(run) == [broken]


class RefusingDetails:
    """A details stream whose every answer is the client's own fault."""

    def request_detail(self, order_id: int) -> Future:  # noqa: ARG002  (the stream's signature)
        refused: Future = Future()
        refused.set_exception(AuthenticationError("GET /x/ answered 401 (Invalid token.): check the api_token setting"))
        return refused


def test_an_error_that_is_the_clients_fault_still_ends_the_run_at_once() -> None:
    feed = OrderFeed(max_skipped=1000)
    feed.publish(1, [{"id": 1}, {"id": 2}], details=RefusingDetails())
    with pytest.raises(AuthenticationError):
        next(feed.details(1))
    assert feed.skipped == {}


def test_more_than_half_of_the_last_20_failing_ends_the_run(sandbox_factory) -> None:
    """Two of every three details broken: never three in a row, but the server, not an order."""
    sandbox = sandbox_factory(orders=40)
    ids = sorted(sandbox.orders_snapshot())
    sandbox.broken_details.update(ids[i] for i in range(30) if i % 3 != 2)
    run = run_tap(config_for(sandbox, max_retries=0, page_size=40))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].endswith("; 11 of the last 20 order details failed")
