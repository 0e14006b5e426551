"""Data that changes while the tap pages through it: nothing may be lost, whatever order the
server lists in and whether or not its orders carry `modified_date`."""

from __future__ import annotations

import pytest

from conftest import config_for
from helpers import run_tap
from omnitron_sandbox.server import LIST_ORDERS

pytestmark = pytest.mark.scenario  # see pyproject.toml's markers

# None: the server honours sort=id. The others: it ignores `sort` and lists in this order.
SERVER_ORDERS = [None, *LIST_ORDERS]


def version(order: dict) -> tuple:
    """What a change of an order changes (status, amount, tracking number), in either shape."""
    return order["status"], order["amount"], order["tracking_number"]


def missing_versions(sandbox, *runs) -> dict[int, tuple]:
    """Orders whose current version none of the runs emitted."""
    emitted: dict[int, set[tuple]] = {}
    for run in runs:
        for order in run.records("orders"):
            emitted.setdefault(order["id"], set()).add(version(order))
    return {
        order["id"]: version(order)
        for order in sandbox.ground_truth()
        if version(order) not in emitted.get(order["id"], set())
    }


def churning(*, delete_every: int = 3, hidden_deletions: bool = True):
    """A list-page hook: before each list request after the first, change an order and create
    one; before every `delete_every`-th, also delete the oldest order.

    With `hidden_deletions`, a deletion and a creation come between the same two pages and
    leave `count` as it was: only reading the list again finds what shifted. Without, that
    request deletes and creates nothing, so the list shrinks and the paginator sees it.
    """
    requests = 0

    def churn(sandbox, _page: int) -> None:
        nonlocal requests
        requests += 1
        if requests > 1:
            deleting = requests % delete_every == 0
            sandbox.store.mutate(modify=1, create=int(hidden_deletions or not deleting))
            if deleting:
                sandbox.delete(ids=[min(sandbox.orders_snapshot())])

    return churn


def assert_children_follow(sandbox, *runs) -> None:
    """Every emitted order came with its items, and with its detail unless it is gone."""
    exists = set(sandbox.orders_snapshot())
    for run in runs:
        orders, details = set(run.by_key("orders", "id")), set(run.by_key("order_details", "pk"))
        assert details <= orders
        assert not (orders - details) & exists, "an order that exists came without its detail"
        items = {(i["order"], i["id"]) for i in run.records("order_items")}
        assert items == {(o["id"], i["id"]) for o in run.records("orders") for i in o["orderitem_set"]}


def assert_nothing_lost(sandbox) -> None:
    """A sync while the sandbox churns, then one after it stopped: every order's latest
    version is out, each with its items and (unless it is gone) its detail. And the churning
    sync itself emitted every order the churn did not touch: the next run would mask what
    a sync read in one pass loses, since it lists what changed anyway."""
    untouched = {o["id"]: version(o) for o in sandbox.ground_truth()}
    first = run_tap(config_for(sandbox))
    assert first.returncode == 0, first.stderr
    for order in sandbox.ground_truth():
        if untouched.get(order["id"]) != version(order):
            untouched.pop(order["id"], None)
    untouched = {order_id: v for order_id, v in untouched.items() if order_id in sandbox.orders_snapshot()}
    assert set(untouched) - set(first.by_key("orders", "id")) == set(), "missed by the churning sync"
    sandbox.on_list_page = None
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert missing_versions(sandbox, first, second) == {}
    assert_children_follow(sandbox, first, second)


@pytest.mark.parametrize("list_order", SERVER_ORDERS, ids=lambda o: f"lists-by-{o or 'sort'}")
def test_orders_changed_created_and_deleted_during_a_sync_are_not_lost(shaped_factory, list_order) -> None:
    assert_nothing_lost(shaped_factory(orders=60, list_order=list_order, on_list_page=churning()))


@pytest.mark.parametrize("list_order", ["modified_date", "-id"])
def test_nothing_lost_on_a_server_that_neither_filters_nor_dates_its_orders(sandbox_factory, list_order) -> None:
    assert_nothing_lost(sandbox_factory(orders=60, list_order=list_order, ignore_filters=True, on_list_page=churning()))


def test_a_quiet_list_read_in_two_passes_costs_no_extra_detail(shaped_factory) -> None:
    sandbox = shaped_factory(orders=40, list_order="modified_date")
    run = run_tap(config_for(sandbox))
    assert len(run.records("orders")) == 40  # each once
    details = sum(n for p, n in sandbox.requests_by_path.items() if "detailed" in p)
    assert details == 40
    assert sandbox.requests_by_path["/api/i1/orders/"] == 2 + 8 + 8  # probes, two passes


def test_orders_deleted_during_a_sync_do_not_hide_others(shaped_factory) -> None:
    def deleting(sandbox, page: int) -> None:
        if page > 1:
            sandbox.delete(ids=sorted(sandbox.orders_snapshot())[:2])

    sandbox = shaped_factory(orders=40, on_list_page=deleting)
    before = set(sandbox.orders_snapshot())
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    emitted = set(run.by_key("orders", "id"))
    assert emitted == before, f"never read: {sorted(before - emitted)}"
