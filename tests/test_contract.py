"""The Singer contract beyond RECORD: a STATE per page whatever is selected, BATCH that never
runs ahead of its STATE, a `--test` that tests, and metrics a scheduler can read."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import config_for
from helpers import PRIMARY_KEYS, batch_records, progress_state, run_tap, run_tap_until, select_only

ORDERS = "/api/i1/orders/"
PROBES = 2  # list requests of one order each, at the start of every run
SELECTIONS = {
    "orders-alone": ("orders",),
    "details-alone": ("order_details",),
    "items-alone": ("order_items",),
    "all-three": ("orders", "order_items", "order_details"),
}


@pytest.fixture(scope="module")
def catalog() -> dict:
    return run_tap(None, args=("--discover",)).output_json()


def list_pages(sandbox) -> int:
    return sandbox.requests_by_path[ORDERS] - PROBES


@pytest.mark.parametrize("selected", SELECTIONS.values(), ids=SELECTIONS.keys())
def test_a_state_after_every_list_page_whatever_is_selected(sandbox_factory, catalog, selected) -> None:
    sandbox = sandbox_factory(orders=23)
    run = run_tap(config_for(sandbox), catalog=select_only(catalog, *selected))
    assert run.returncode == 0, run.stderr
    assert {m["stream"] for m in run.messages if m["type"] == "RECORD"} == set(selected)
    assert list_pages(sandbox) == 10  # two passes of five pages
    assert len(run.states) >= list_pages(sandbox)
    # Each page's STATE says where the sync was; the last one holds the bookmark only.
    wheres = [
        (s["bookmarks"]["orders"]["resume"]["pass"], s["bookmarks"]["orders"]["resume"]["page"])
        for s in run.states
        if "resume" in s["bookmarks"].get("orders", {})
    ]
    assert wheres == [(1, n) for n in range(1, 6)] + [(2, n) for n in range(1, 6)]
    assert run.messages[-1]["type"] == "STATE"
    assert "resume" not in run.last_state["bookmarks"]["orders"]


@pytest.mark.parametrize("selected", SELECTIONS.values(), ids=SELECTIONS.keys())
def test_a_kill_after_a_page_loses_nothing_and_repeats_at_most_that_page(sandbox_factory, catalog, selected) -> None:
    sandbox = sandbox_factory(orders=40)
    config = config_for(sandbox, max_concurrency=4)
    chosen = select_only(catalog, *selected)
    killed = run_tap_until(config, progress_state, catalog=chosen)
    assert killed.returncode != 0, "killed mid-sync"
    after_id = killed.last_state["bookmarks"]["orders"]["resume"]["after_id"]
    resumed = run_tap(config, state=killed.last_state, catalog=chosen)
    assert resumed.returncode == 0, resumed.stderr
    everything = run_tap(config, catalog=chosen).tables()
    delivered = killed.delivered
    for stream in selected:
        key = PRIMARY_KEYS[stream]
        union = {**delivered.by_key(stream, key), **resumed.by_key(stream, key)}
        assert union == everything[stream], stream
    if "orders" in selected:
        assert min(resumed.by_key("orders", "id")) > after_id, "the done page is not read again"


# BATCH


def batch_config(tmp_path) -> dict:
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{tmp_path}"},
    }


def test_batch_is_declared_and_lists_its_setting() -> None:
    about = run_tap(None, args=("--about", "--format=json")).output_json()
    assert "batch" in about["capabilities"]
    assert "batch_config" in about["settings"]["properties"]


def test_a_batch_run_holds_what_a_record_run_emits(sandbox_factory, tmp_path) -> None:
    sandbox = sandbox_factory(orders=23)
    records = run_tap(config_for(sandbox))
    batched = run_tap(config_for(sandbox, batch_config=batch_config(tmp_path)))
    assert batched.returncode == 0, batched.stderr
    assert not [m for m in batched.messages if m["type"] == "RECORD"]
    assert batched.tables() == records.tables()
    # A file per page of orders, and one per page's children, each followed by a STATE.
    kinds = [m["type"] if m["type"] != "BATCH" else f"BATCH {m['stream']}" for m in batched.messages]
    assert kinds.count("BATCH orders") == 5
    for i, kind in enumerate(kinds):
        if kind == "BATCH orders":
            assert kinds[i + 1] == "STATE"
    assert "23 orders, " in batched.stderr


def test_no_state_covers_orders_that_are_not_in_a_batch_file_yet(sandbox_factory, tmp_path) -> None:
    sandbox = sandbox_factory(orders=40)
    run = run_tap(config_for(sandbox, batch_config=batch_config(tmp_path)))
    batched: set[int] = set()
    checked = 0
    for message in run.messages:
        if message["type"] == "BATCH" and message["stream"] == "orders":
            batched |= {record["id"] for record in batch_records(message)}
        elif progress_state(message):
            after_id = message["value"]["bookmarks"]["orders"]["resume"]["after_id"]
            assert {i for i in sandbox.orders_snapshot() if i <= after_id} <= batched
            checked += 1
    assert checked >= 5


def test_a_batch_run_killed_after_its_first_page_resumes_without_loss(sandbox_factory, tmp_path) -> None:
    sandbox = sandbox_factory(orders=40)
    config = config_for(sandbox, max_concurrency=4, batch_config=batch_config(tmp_path))
    killed = run_tap_until(config, progress_state)
    assert killed.returncode != 0
    resumed = run_tap(config, state=killed.last_state)
    assert resumed.returncode == 0, resumed.stderr
    everything = run_tap(config_for(sandbox)).tables()
    delivered = killed.delivered
    for stream, key in PRIMARY_KEYS.items():
        union = {**delivered.by_key(stream, key), **resumed.by_key(stream, key)}
        assert union == everything[stream], stream


# --test


def test_the_connection_test_reads_one_page_and_one_detail(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23)
    run = run_tap(config_for(sandbox), args=("--test",))
    assert run.returncode == 0, run.stderr
    assert " ERROR " not in run.stderr
    assert "Connection test passed: GET /api/i1/orders/ and GET /api/i1/orders_integration/" in run.stderr
    assert sandbox.request_count == 2
    assert {m["stream"] for m in run.messages if m["type"] == "RECORD"} == set(PRIMARY_KEYS)


def test_the_connection_test_fails_on_a_token_the_detail_endpoint_refuses(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, forbid_details=True)
    run = run_tap(config_for(sandbox), args=("--test",))
    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert re.fullmatch(
        r"tap-omnitron: error: GET /api/i1/orders_integration/\d+/detailed_integration/ answered "
        r"HTTP 403: You do not have permission to perform this action\.",
        run.error_lines[0],
    )
    assert sandbox.request_count == 2


def test_the_connection_test_names_a_refused_token(sandbox) -> None:
    run = run_tap({**config_for(sandbox), "api_token": "wrong-token"}, args=("--test",))
    assert run.returncode == 1
    assert run.error_lines == [
        "tap-omnitron: error: GET /api/i1/orders/ answered 401 (Invalid token.): check the api_token setting"
    ]


# Metrics and the closing summary


def metric_lines(run, name: str) -> list[dict]:
    points = [json.loads(line.split("METRIC: ", 1)[1]) for line in run.stderr.splitlines() if "METRIC: " in line]
    return [point for point in points if point["metric"] == name]


def test_every_request_is_timed_and_counted_login_and_retries_included(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, retry_after=0)
    ids = sorted(sandbox.orders_snapshot())
    sandbox.fault_plan = {f"/api/i1/orders_integration/{ids[3]}/detailed_integration/": ["503", "500"]}
    config = config_for(sandbox, username=sandbox.username, password=sandbox.password)
    del config["api_token"]
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    served = sandbox.request_count  # the login included
    durations = metric_lines(run, "http_request_duration")
    assert len(durations) == served
    assert {(d["tags"]["endpoint"], d["tags"]["http_status_code"]) for d in durations} >= {
        ("/api/i1/auth/login/", 200),
        ("/api/i1/orders/", 200),
        ("/api/i1/orders_integration/{order_id}/detailed_integration/", 503),
        ("/api/i1/orders_integration/{order_id}/detailed_integration/", 500),
        ("/api/i1/orders_integration/{order_id}/detailed_integration/", 200),
    }
    assert {d["tags"]["status"] for d in durations if d["tags"]["http_status_code"] >= 500} == {"failed"}
    counts = metric_lines(run, "http_request_count")
    assert sum(c["value"] for c in counts) == served
    records = metric_lines(run, "record_count")
    for stream in PRIMARY_KEYS:
        assert sum(r["value"] for r in records if r["tags"]["stream"] == stream) == run.counts()[stream]


LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "singer_sdk.logging.StructuredFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
}


@pytest.mark.parametrize("outcome", ["finished", "failed"])
def test_the_closing_summary_gives_a_scheduler_numbers(sandbox_factory, tmp_path, outcome) -> None:
    """With the SDK's structured logging (what `meltano run --log-format json` turns on), the
    summary's numbers are fields of its log line, not only words."""
    sandbox = sandbox_factory(orders=23)
    if outcome == "failed":
        sandbox.hostile_plan = {ORDERS: ["not_json"] * 10}
    config_path = tmp_path / "logging.yml"
    config_path.write_text(yaml.safe_dump(LOG_CONFIG))
    run = run_tap(config_for(sandbox, max_retries=0), env={"SINGER_SDK_LOG_CONFIG": str(config_path)})
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    [summary] = [line["extra"]["run_summary"] for line in lines if "run_summary" in line.get("extra", {})]
    assert set(summary) == {
        "orders",
        "order_items",
        "order_details",
        "skipped_details",
        "gone_details",
        "requests",
        "retries",
        "seconds_paused",
        "seconds",
        "exit_reason",
        "bookmark",
    }
    assert summary["requests"] == sandbox.request_count
    if outcome == "finished":
        assert summary["exit_reason"] == "finished"
        assert (summary["orders"], summary["order_details"]) == (23, 23)
        assert summary["bookmark"] == run.last_state["bookmarks"]["orders"]["replication_key_value"]
    else:
        assert summary["exit_reason"].startswith("failed: GET /api/i1/orders/: gave up after 1 attempt")
        assert summary["bookmark"] is None
