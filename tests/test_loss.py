"""Data that changes while the tap pages through it: nothing may be lost."""

from __future__ import annotations

from conftest import config_for
from helpers import run_tap
from tap_omnitron.records import utc_timestamp


def latest_versions_emitted(sandbox, *runs) -> dict[int, str]:
    """Orders whose latest version (by modified_date) none of the runs emitted."""
    seen: dict[int, set[str]] = {}
    for run in runs:
        for order in run.records("orders"):
            seen.setdefault(order["id"], set()).add(order["modified_date"])
    return {
        order_id: modified
        for order_id, modified in sandbox.orders_snapshot().items()
        if utc_timestamp(modified) not in seen.get(order_id, set())
    }


def changing_between_pages(sandbox, page: int) -> None:
    """Before every page after the first: modify an order already read, and create one."""
    if page > 1:
        read_already = sorted(sandbox.orders_snapshot())[: (page - 1) * 5]
        sandbox.modify(ids=read_already[:1])
        sandbox.create(1)


def test_orders_changed_and_created_during_a_sync_are_not_lost(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=40, on_list_page=changing_between_pages)
    first = run_tap(config_for(sandbox))
    assert first.returncode == 0, first.stderr
    sandbox.on_list_page = None
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert latest_versions_emitted(sandbox, first, second) == {}
    # ... and the children of every emitted order came along.
    for run in (first, second):
        assert set(run.by_key("order_details", "pk")) == set(run.by_key("orders", "id"))


def test_orders_deleted_during_a_sync_do_not_hide_others(sandbox_factory) -> None:
    def deleting(sandbox, page: int) -> None:
        if page > 1:
            sandbox.delete(ids=sorted(sandbox.orders_snapshot())[:2])

    sandbox = sandbox_factory(orders=40, on_list_page=deleting)
    before = set(sandbox.orders_snapshot())
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    emitted = set(run.by_key("orders", "id"))
    assert emitted == before, f"never read: {sorted(before - emitted)}"
