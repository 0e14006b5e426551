"""Full and incremental syncs against the sandbox: every order, item and detail, exactly."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

from conftest import config_for
from helpers import run_tap
from tap_omnitron.dates import canonical
from tap_omnitron.records import REDACTED

SECRET_MARK = "SANDBOX-SECRET"


def served_modified_date(sandbox, order_id: int) -> str | None:
    """`modified_date` as the sandbox's list serves it: absent in the documented shape."""
    return sandbox.list_record(order_id).get("modified_date")


def test_full_sync_emits_every_order_item_and_detail(shaped_factory) -> None:
    sandbox = shaped_factory(orders=23)
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    truth = {o["id"]: o for o in sandbox.ground_truth()}
    orders = run.by_key("orders", "id")
    assert set(orders) == set(truth)
    assert len(run.records("orders")) == len(truth), "a clean sync emits each order once"
    for order_id, order in orders.items():
        assert order["amount"] == truth[order_id]["amount"]  # decimal text, exactly
        # What the API sent, or nothing: never a value the tap made up.
        assert order.get("modified_date") == served_modified_date(sandbox, order_id)
    items = run.records("order_items")
    expected_items = {i["id"]: oid for oid, o in orders.items() for i in o["orderitem_set"]}
    assert {i["id"]: i["order"] for i in items} == expected_items
    details = run.by_key("order_details", "pk")
    assert set(details) == set(truth)
    assert all(details[k]["amount"] == truth[k]["amount"] for k in truth)
    assert all(details[k].get("modified_date") == served_modified_date(sandbox, k) for k in truth)


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


def bookmark_of(run) -> str | None:
    return run.last_state["bookmarks"]["orders"].get("replication_key_value")


def test_incremental_run_emits_only_what_changed(shaped_factory) -> None:
    sandbox = shaped_factory(orders=23)
    first = run_tap(config_for(sandbox))
    changed = set(sandbox.modify(count=3)) | set(sandbox.create(2))
    sandbox.reset_stats()
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert second.returncode == 0, second.stderr
    emitted = set(second.by_key("orders", "id"))
    assert emitted == changed, "the bookmark is the first run's start: nothing older repeats"
    assert set(second.by_key("order_details", "pk")) == emitted
    assert {i["order"] for i in second.records("order_items")} == emitted
    assert detail_requests(sandbox) == len(changed)
    # Nothing changed since: the next run repeats at most the orders changed in the second
    # of its bookmark (the server's clock at the start of the second run, to the second).
    third = run_tap(config_for(sandbox), state=second.last_state)
    assert set(third.by_key("orders", "id")) <= changed


def detail_requests(sandbox) -> int:
    return sum(n for path, n in sandbox.requests_by_path.items() if "detailed_integration" in path)


def list_requests(sandbox) -> int:
    return sandbox.requests_by_path.get("/api/i1/orders/", 0)


def test_second_run_after_8_changes_sends_8_detail_requests(shaped_factory) -> None:
    sandbox = shaped_factory(orders=303)
    config = config_for(sandbox, page_size=100)
    first = run_tap(config)
    assert first.returncode == 0, first.stderr
    changed = sandbox.modify(count=8)
    sandbox.reset_stats()
    second = run_tap(config, state=first.last_state)
    assert set(second.by_key("orders", "id")) == set(changed)
    # Two probes and one page of 8 orders; one detail request per changed order.
    assert (list_requests(sandbox), detail_requests(sandbox)) == (3, 8)


def test_bookmark_is_the_servers_clock_at_the_start(shaped_factory) -> None:
    sandbox = shaped_factory(orders=23, latency_ms=20)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    run = run_tap(config_for(sandbox))
    bookmark = dt.datetime.fromisoformat(bookmark_of(run).replace("Z", "+00:00"))
    assert started <= bookmark <= started + dt.timedelta(seconds=2)
    newest = max(canonical(o["modified_date"]) for o in sandbox.ground_truth())
    assert bookmark_of(run) >= newest
    sandbox.modify(count=1)  # modified "now": the next run must read it again
    later = run_tap(config_for(sandbox), state=run.last_state)
    assert len(later.records("orders")) == 1


def test_start_date_limits_the_first_run(shaped_factory) -> None:
    sandbox = shaped_factory(orders=23)
    truth = sorted((canonical(o["modified_date"]), o["id"]) for o in sandbox.ground_truth())
    start = truth[len(truth) // 2][0]
    run = run_tap(config_for(sandbox, start_date=start))
    assert set(run.by_key("orders", "id")) == {oid for modified, oid in truth if modified >= start}


def test_state_has_no_bookmark_per_order_and_no_version_is_activated(sandbox) -> None:
    run = run_tap(config_for(sandbox))
    state = json.dumps(run.last_state)
    assert "partitions" not in state
    assert run.last_state["bookmarks"]["order_items"] == run.last_state["bookmarks"]["order_details"] == {}
    assert run.last_state["bookmarks"]["orders"]["replication_key"] == "modified_date"
    # A child sync covers one page: a target must never take it for the whole table.
    assert not [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]


def test_server_that_ignores_the_date_filter_on_orders_that_carry_it(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, ignore_filters=True, shape="extended")
    first = run_tap(config_for(sandbox))
    changed = set(sandbox.modify(count=2))
    sandbox.reset_stats()
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert set(second.by_key("orders", "id")) == changed
    assert detail_requests(sandbox) == len(changed)
    assert second.stderr.count("ignored modified_date__gte") == 1


def test_server_that_ignores_the_date_filter_on_documented_orders(sandbox_factory) -> None:
    """Nothing tells a changed order from another: say so once, sync all, keep no bookmark."""
    sandbox = sandbox_factory(orders=23, ignore_filters=True)
    first = run_tap(config_for(sandbox))
    assert bookmark_of(first) is None
    sandbox.modify(count=2)
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert set(second.by_key("orders", "id")) == set(sandbox.orders_snapshot())
    assert set(second.by_key("order_details", "pk")) == set(sandbox.orders_snapshot())
    assert bookmark_of(second) is None
    warnings = [line for line in second.stderr.splitlines() if "carry no modified_date" in line]
    assert len(warnings) == 1
    assert "all 23 orders" in warnings[0]
    assert "no bookmark is kept" in warnings[0]


def test_server_caps_the_page_size_silently(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, max_limit=4)
    run = run_tap(config_for(sandbox, page_size=100))
    assert len(run.by_key("orders", "id")) == 23


def test_detail_gone_is_a_warning_not_a_crash(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=12)
    listed = sorted(sandbox.orders_snapshot())
    sandbox.missing_details.update(listed[2:4])
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    assert set(run.by_key("order_details", "pk")) == set(listed) - set(listed[2:4])
    assert len(run.records("orders")) == 12
    assert run.stderr.count("Skipping an order that is gone") == 2


def test_schema_messages_keep_decimal_precision_and_scale(sandbox) -> None:
    catalog = run_tap(None, args=("--discover",)).output_json()
    for run in (run_tap(config_for(sandbox)), run_tap(config_for(sandbox), catalog=catalog)):
        schemas = [m["schema"] for m in run.messages if m["type"] == "SCHEMA"]
        assert len(schemas) == 3  # one per stream, not one per page
        for schema in schemas:
            text = json.dumps(schema)
            decimals = text.count('"x-singer.decimal"')
            assert decimals > 0
            assert text.count('"precision": 28') == text.count('"scale": 8') == decimals


def test_renamed_and_flattened_decimals_keep_precision_and_scale(sandbox) -> None:
    """A stream map's alias and flattening's new names are not in the source schema: their
    decimals get the widest bounds it declares, not none (a SQL target would make NUMBER(38,0))."""
    config = config_for(
        sandbox,
        stream_maps={"order_details": {"__alias__": "omnitron_details"}},
        flattening_enabled=True,
        flattening_max_depth=2,
    )
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    [schema] = [m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "omnitron_details"]
    flattened = {name: prop for name, prop in schema["properties"].items() if "__" in name}
    decimals = {name: prop for name, prop in flattened.items() if prop.get("format") == "x-singer.decimal"}
    assert "installment__interest_rate" in decimals
    assert all((prop.get("precision"), prop.get("scale")) == (28, 8) for prop in decimals.values()), decimals
    record = run.records("omnitron_details")[0]
    assert all(record.get(name) is None or isinstance(record[name], str) for name in decimals)


FIXTURES = Path(__file__).parent / "fixtures"


def test_the_documented_examples_come_out_complete_and_exact(sandbox_factory) -> None:
    """Omnitron's own examples, served as they are: every field out, and only the numbers the
    schema calls decimals turned into decimal text (the API sends those as text elsewhere)."""
    page = json.loads((FIXTURES / "orders_page.json").read_text())
    detail = json.loads((FIXTURES / "order_detail.json").read_text())
    sandbox = sandbox_factory(documents=(page["results"], {1: detail}))
    run = run_tap(config_for(sandbox, redact_secrets=False))
    assert run.returncode == 0, run.stderr
    assert "not in the catalog schema" not in run.stderr

    expected_orders = copy.deepcopy(page["results"])
    assert [o["net_shipping_amount"] for o in expected_orders] == [7, 7]
    for order in expected_orders:
        order["net_shipping_amount"] = "7.00"
    assert run.records("orders") == expected_orders
    assert run.records("order_items") == [i for o in page["results"] for i in o["orderitem_set"]]
    expected_detail = {**detail, "net_shipping_amount": "8.50"}
    assert detail["net_shipping_amount"] == 8.5
    assert run.records("order_details") == [expected_detail]  # order 2 has no documented detail
    assert run.stderr.count("Skipping an order that is gone") == 1


def test_a_stream_map_filter_keeps_the_children_of_kept_orders_only(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=60)
    kept = {o["id"] for o in sandbox.ground_truth() if o["status"] == "550"}
    assert 0 < len(kept) < 60
    config = config_for(sandbox, stream_maps={"orders": {"__filter__": "status == '550'"}})
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    assert set(run.by_key("orders", "id")) == kept
    assert set(run.by_key("order_details", "pk")) == kept
    assert {i["order"] for i in run.records("order_items")} == kept
    assert sum(n for p, n in sandbox.requests_by_path.items() if "detailed" in p) == len(kept)


def test_items_are_complete_when_orders_are_loaded_without_their_nested_items(sandbox) -> None:
    catalog = run_tap(None, args=("--discover",)).output_json()
    orders = next(e for e in catalog["streams"] if e["tap_stream_id"] == "orders")
    for entry in orders["metadata"]:
        if entry["breadcrumb"] == ["properties", "orderitem_set"]:
            entry["metadata"]["selected"] = False
    run = run_tap(config_for(sandbox), catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert all("orderitem_set" not in o for o in run.records("orders"))
    expected = {i["id"] for o in sandbox.ground_truth() for i in sandbox.list_record(o["id"])["orderitem_set"]}
    assert set(run.by_key("order_items", "id")) == expected


def test_a_change_committed_late_is_read_within_the_lookback(shaped_factory) -> None:
    """A change stamped before the last run began, but not yet visible to it (a long
    transaction, or an app server whose clock runs behind the one that answers)."""
    sandbox = shaped_factory(orders=23)
    first = run_tap(config_for(sandbox))
    began = dt.datetime.fromisoformat(bookmark_of(first).replace("Z", "+00:00"))
    late = sandbox.modify(ids=[sorted(sandbox.orders_snapshot())[3]], at=began - dt.timedelta(seconds=5))
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert set(second.by_key("orders", "id")) == set(late)
    without = run_tap(config_for(sandbox, lookback_seconds=0), state=first.last_state)
    assert without.records("orders") == [], "without the lookback the late change is missed"


def test_a_base_url_with_a_wrong_path_is_one_clear_line(sandbox) -> None:
    run = run_tap(config_for(sandbox, base_url=sandbox.url + "/shop"))
    assert run.returncode == 1
    assert run.error_lines == ["tap-omnitron: error: GET /shop/api/i1/orders/ answered 404 (not found): check base_url"]


def test_details_that_all_answer_404_are_an_error_not_an_empty_table(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23)
    sandbox.missing_details.update(sandbox.orders_snapshot())
    run = run_tap(config_for(sandbox))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "order details answered 404 although their orders are listed" in run.error_lines[0]
