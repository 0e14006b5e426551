"""The lines a person watching a run reads: where it starts, how far it is, what it did."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time

from conftest import config_for
from helpers import run_tap, run_tap_killed
from tap_omnitron import dates
from zygote import spawn

DETAIL = "/api/i1/orders_integration/{}/detailed_integration/"
PROGRESS = re.compile(
    r"Progress: ([\d,]+) of ([\d,]+) orders \((\d+)%\), (\d+) orders/s, about (\d+) (?:s|min \d+ s) left\."
)
SUMMARY = re.compile(
    r"(Finished|Stopped) in [\w ]+: ([\d,]+) orders, ([\d,]+) order items, ([\d,]+) order details; "
    r"([\d,]+) requests, ([\d,]+) retries, ([\d.]+) s waiting on Retry-After, "
    r"([\d,]+) details skipped as gone \(404\), ([\d,]+) skipped after errors \(asked for again next run\); "
    r"bookmark (\S+)\."
)


def lines(run, pattern: re.Pattern) -> list[re.Match]:
    return [m for line in run.stderr.splitlines() if (m := pattern.search(line))]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_progress_lines_count_up_to_the_total_at_the_set_interval(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=60, latency_ms=15)
    run = run_tap(config_for(sandbox, progress_interval=0.1, max_concurrency=2))
    assert run.returncode == 0, run.stderr
    progress = lines(run, PROGRESS)
    assert len(progress) >= 3, run.stderr
    done = [number(m.group(1)) for m in progress]
    assert done == sorted(done) and done[-1] <= 60
    assert {m.group(2) for m in progress} == {"60"}
    assert all(int(m.group(3)) == round(number(m.group(1)) * 100 / 60) for m in progress)


def test_a_fast_run_says_no_progress_on_every_page(sandbox) -> None:
    run = run_tap(config_for(sandbox))  # pages of 5: five pages, in well under 10 s
    assert lines(run, PROGRESS) == []
    assert len(lines(run, SUMMARY)) == 1


def test_the_start_line_names_the_bookmark_and_the_resume_point(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=40)
    first = run_tap(config_for(sandbox))
    assert "Starting: every order (no bookmark); the list reports 40 orders." in first.stderr
    bookmark = first.last_state["bookmarks"]["orders"]["replication_key_value"]
    sandbox.modify(count=3)
    second = run_tap(config_for(sandbox), state=first.last_state)
    since = dates.canonical(dates.parse(bookmark) - dt.timedelta(seconds=60))  # the lookback
    assert f"Starting: orders modified since {since}; the list reports 3 orders." in second.stderr
    killed = run_tap_killed(config_for(sandbox, max_concurrency=1), state=None, after_records=60)
    after = killed.last_state["bookmarks"]["orders"]["resume"]["after_id"]
    resumed = run_tap(config_for(sandbox), state=killed.last_state)
    assert f"resuming an interrupted run after order {after}" in resumed.stderr


def test_the_summary_says_what_the_run_did_and_cost(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, retry_after=1)
    ids = sorted(sandbox.orders_snapshot())
    sandbox.fault_plan = {DETAIL.format(ids[3]): ["503"], DETAIL.format(ids[9]): ["429"]}
    sandbox.missing_details.add(ids[5])
    run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    [summary] = lines(run, SUMMARY)
    status, orders, items, details, requests, retries, paused, gone, skipped, bookmark = summary.groups()
    assert status == "Finished"
    counts = run.counts()
    assert [number(orders), number(items), number(details)] == [
        counts["orders"],
        counts["order_items"],
        counts["order_details"],
    ]
    assert number(details) == 22  # one order is gone
    assert number(requests) == sandbox.request_count
    assert (number(retries), number(gone), number(skipped)) == (2, 1, 0)
    assert 0.9 <= float(paused) <= 1.5
    assert bookmark == run.last_state["bookmarks"]["orders"]["replication_key_value"]


def test_a_stopped_run_sends_nothing_after_its_summary(sandbox_factory, tmp_path) -> None:
    """Detail threads held by a long Retry-After when the run is stopped give up at once:
    nothing reaches the server after the summary, whose count of requests is final."""
    sandbox = sandbox_factory(orders=60, retry_after=60, latency_ms=20)
    told = DETAIL.format(sorted(sandbox.orders_snapshot())[1])
    sandbox.fault_plan = {told: ["429"]}
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(sandbox, max_concurrency=8, page_size=20)))
    tap = spawn(["--config", str(config)], stdout=False)
    for _ in range(300):
        if sandbox.faults_injected:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # the other detail threads now wait for the pause to end
    tap.send_signal(signal.SIGTERM)
    _, stderr = tap.communicate(timeout=30)  # not the 60 s of the pause
    [summary] = [m for line in stderr.decode().splitlines() if (m := SUMMARY.search(line))]
    assert summary.group(1) == "Stopped"
    assert number(summary.group(5)) == sandbox.request_count
    assert sandbox.requests_by_path[told] == 1


def test_a_failed_run_still_closes_with_a_summary(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=5, fault_rate=1.0, fault_kinds=["502"])
    run = run_tap(config_for(sandbox, max_retry_seconds=1))
    assert run.returncode != 0
    [summary] = lines(run, SUMMARY)
    assert summary.group(1) == "Stopped"
    assert summary.group(10) == "none"
