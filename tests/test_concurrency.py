"""Concurrent detail requests: same output as one at a time, STATE only behind finished work."""

from __future__ import annotations

from conftest import config_for
from helpers import PRIMARY_KEYS, run_tap


def record_sequence(run) -> list[tuple[str, int]]:
    return [(m["stream"], m["record"][PRIMARY_KEYS[m["stream"]]]) for m in run.messages if m["type"] == "RECORD"]


def test_concurrency_does_not_change_the_output(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=60, latency_ms=5)
    one_at_a_time = run_tap(config_for(sandbox, max_concurrency=1, page_size=20))
    concurrent = run_tap(config_for(sandbox, max_concurrency=8, page_size=20))
    assert record_sequence(concurrent) == record_sequence(one_at_a_time)
    assert len(record_sequence(concurrent)) > 120


def test_state_only_passes_orders_whose_children_are_out(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=30, latency_ms=2)
    run = run_tap(config_for(sandbox, max_concurrency=8))
    details_out: set[int] = set()
    items_out: set[int] = set()
    checked = 0
    expected_items = {o["id"]: {i["id"] for i in o["orderitem_set"]} for o in run.records("orders")}
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == "order_details":
            details_out.add(message["record"]["pk"])
        elif message["type"] == "RECORD" and message["stream"] == "order_items":
            items_out.add(message["record"]["id"])
        elif message["type"] == "STATE":
            resume = message["value"]["bookmarks"]["orders"].get("resume")
            if resume and resume["after_id"]:
                done = {oid for oid in expected_items if oid <= resume["after_id"]}
                assert done <= details_out
                assert set().union(*(expected_items[oid] for oid in done)) <= items_out
                checked += 1
    assert checked >= 5  # one STATE per page of 5 orders
