"""Full and incremental syncs against the sandbox: every order, item and detail, exactly."""

from __future__ import annotations

import json

from conftest import config_for
from helpers import run_tap
from tap_omnitron.records import REDACTED, utc_timestamp

SECRET_MARK = "SANDBOX-SECRET"


def test_full_sync_emits_every_order_item_and_detail(sandbox) -> None:
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    truth = {o["id"]: o for o in sandbox.ground_truth()}
    orders = run.by_key("orders", "id")
    assert set(orders) == set(truth)
    assert len(run.records("orders")) == len(truth), "a clean sync emits each order once"
    for order_id, order in orders.items():
        assert order["amount"] == truth[order_id]["amount"]  # decimal text, exactly
        assert order["modified_date"] == utc_timestamp(truth[order_id]["modified_date"])
    items = run.records("order_items")
    expected_items = {i["id"]: oid for oid, o in orders.items() for i in o["orderitem_set"]}
    assert {i["id"]: i["order"] for i in items} == expected_items
    details = run.by_key("order_details", "pk")
    assert set(details) == set(truth)
    assert all(details[k]["amount"] == truth[k]["amount"] for k in truth)


def test_money_is_decimal_text_everywhere(sandbox) -> None:
    run = run_tap(config_for(sandbox))
    for order in run.records("orders"):
        assert isinstance(order["net_shipping_amount"], str), "numbers in the API become text"
        assert float(order["net_shipping_amount"]) >= 0
    for detail in run.records("order_details"):
        assert isinstance(detail["net_shipping_amount"], str)
        rate = detail["installment"]["interest_rate"] if detail["installment"] else "0.000000"
        assert len(rate.split(".")[1]) == 6


def test_secrets_are_redacted_by_default_and_on_request_only(sandbox) -> None:
    run = run_tap(config_for(sandbox))
    assert SECRET_MARK not in run.stdout
    assert sandbox.api_token not in run.stdout + run.stderr
    detail = next(d for d in run.records("order_details") if d["transaction_set"])
    assert set(detail["channel"]["conf"]) >= {"auth_token", "password"}
    assert detail["channel"]["conf"]["password"] == REDACTED
    assert detail["transaction_set"][0]["raw_request"] == REDACTED

    raw = run_tap(config_for(sandbox, redact_secrets=False))
    assert SECRET_MARK in raw.stdout


def test_incremental_run_emits_only_what_changed(sandbox) -> None:
    first = run_tap(config_for(sandbox))
    changed = set(sandbox.modify(count=3)) | set(sandbox.create(2))
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert second.returncode == 0, second.stderr
    emitted = set(second.by_key("orders", "id"))
    assert changed <= emitted
    overlap = emitted - changed
    assert len(overlap) <= 1, f"only the order at the bookmark may repeat, got {overlap}"
    assert set(second.by_key("order_details", "pk")) == emitted
    assert {i["order"] for i in second.records("order_items")} == emitted
    # Nothing changed since: the next run repeats at most the orders of the bookmark's
    # own second (the bookmark stops at the server's clock when the run began).
    bookmark = second.last_state["bookmarks"]["orders"]["replication_key_value"]
    third = run_tap(config_for(sandbox), state=second.last_state)
    repeated = third.records("orders")
    assert all(o["modified_date"] >= bookmark for o in repeated)
    assert {o["id"] for o in repeated} <= emitted


def test_bookmark_never_passes_the_servers_clock(sandbox) -> None:
    run = run_tap(config_for(sandbox))
    bookmark = run.last_state["bookmarks"]["orders"]["replication_key_value"]
    newest = max(utc_timestamp(o["modified_date"]) for o in sandbox.ground_truth())
    assert bookmark == newest
    sandbox.modify(count=1)  # modified "now": the next run must read it again
    later = run_tap(config_for(sandbox), state=run.last_state)
    bookmark = later.last_state["bookmarks"]["orders"]["replication_key_value"]
    assert bookmark <= max(utc_timestamp(o["modified_date"]) for o in sandbox.ground_truth())


def test_start_date_limits_the_first_run(sandbox) -> None:
    truth = sorted(utc_timestamp(o["modified_date"]) for o in sandbox.ground_truth())
    start = truth[len(truth) // 2]
    run = run_tap(config_for(sandbox, start_date=start))
    emitted = {o["modified_date"] for o in run.records("orders")}
    assert emitted == {m for m in truth if m >= start}


def test_state_has_no_bookmark_per_order(sandbox) -> None:
    run = run_tap(config_for(sandbox))
    state = json.dumps(run.last_state)
    assert "partitions" not in state
    assert set(run.last_state["bookmarks"]) <= {"orders", "order_items", "order_details"}
    assert run.last_state["bookmarks"]["orders"]["replication_key"] == "modified_date"


def test_server_that_ignores_the_date_filter(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, ignore_filters=True)
    first = run_tap(config_for(sandbox))
    changed = set(sandbox.modify(count=2))
    second = run_tap(config_for(sandbox), state=first.last_state)
    bookmark = first.last_state["bookmarks"]["orders"]["replication_key_value"]
    emitted = second.records("orders")
    assert changed <= {o["id"] for o in emitted}
    assert all(o["modified_date"] >= bookmark for o in emitted)
    assert len(emitted) <= len(changed) + 1
    assert second.stderr.count("ignored modified_date__gte") == 1


def test_server_caps_the_page_size_silently(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, max_limit=4)
    run = run_tap(config_for(sandbox, page_size=100))
    assert len(run.by_key("orders", "id")) == 23  # noqa: PLR2004


def test_detail_gone_is_a_warning_not_a_crash(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=12)
    listed = sorted(sandbox.orders_snapshot())
    sandbox.missing_details.update(listed[2:4])
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    assert set(run.by_key("order_details", "pk")) == set(listed) - set(listed[2:4])
    assert len(run.records("orders")) == 12  # noqa: PLR2004
    assert run.stderr.count("Skipping an order that is gone") == 2  # noqa: PLR2004


def test_schema_messages_keep_decimal_precision_and_scale(sandbox) -> None:
    catalog = run_tap(None, args=("--discover",)).output_json()
    for run in (run_tap(config_for(sandbox)), run_tap(config_for(sandbox), catalog=catalog)):
        schemas = [m["schema"] for m in run.messages if m["type"] == "SCHEMA"]
        assert len(schemas) == 3  # noqa: PLR2004  (one per stream, not one per page)
        for schema in schemas:
            text = json.dumps(schema)
            decimals = text.count('"x-singer.decimal"')
            assert decimals > 0
            assert text.count('"precision": 28') == text.count('"scale": 8') == decimals
