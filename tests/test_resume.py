"""Killed mid-sync at any moment: the next run, from the last STATE, loses nothing."""

from __future__ import annotations

import json
import signal
import tempfile
import time
from pathlib import Path

import pytest

from conftest import config_for
from helpers import PRIMARY_KEYS, TapRun, run_tap, run_tap_until
from test_loss import SERVER_ORDERS, assert_children_follow, churning, missing_versions
from zygote import spawn

pytestmark = pytest.mark.scenario  # see pyproject.toml's markers


def after_states_with_records(count: int):
    """A stop rule for `run_tap_until`: the `count`-th STATE that follows records of this run
    (not the state a resumed run echoes first; on a server that ignores `sort`, STATEs record
    no resume point, and a killed sync starts over)."""
    seen = 0
    records = False

    def stop(message: dict) -> bool:
        nonlocal seen, records
        if message["type"] == "RECORD":
            records = True
        elif message["type"] == "STATE" and records:
            seen += 1
            records = False
        return seen >= count

    return stop


def kill_and_resume(sandbox, kills: tuple[int, ...]) -> None:
    """Kill the tap right after its n-th STATE that records progress, for each n in turn,
    each run resuming from the last STATE of the one before; then let it finish, and run
    once more: every order's latest version must be out. Of a killed run, only what came
    before its last STATE counts as delivered (a target may drop the rest)."""
    config = config_for(sandbox, max_concurrency=4)
    delivered, state = [], None
    for count in kills:
        killed = run_tap_until(config, after_states_with_records(count), state=state)
        assert killed.returncode != 0, "the tap was expected to be killed mid-sync"
        done = (state or {}).get("bookmarks", {}).get("orders", {}).get("resume", {}).get("after_id", 0)
        if done:  # it resumed: nothing at or before the resume point again
            assert min(killed.delivered.by_key("orders", "id"), default=done + 1) > done
        delivered.append(killed.delivered)
        state = killed.last_state
    sandbox.on_list_page = None
    finished = run_tap(config, state=state)
    assert finished.returncode == 0, finished.stderr
    if state["bookmarks"]["orders"].get("resume", {}).get("after_id"):
        assert "resuming an interrupted run after order" in finished.stderr
    follow_up = run_tap(config, state=finished.last_state)
    assert missing_versions(sandbox, *delivered, finished, follow_up) == {}
    assert_children_follow(sandbox, finished, follow_up)


# A deletion hidden by a creation between the same two pages shifts a row past the page being
# read without a trace; a sync that is not killed finds it in its second pass, a killed one
# may trust it as done (the README's one uncovered case). The churn here lets the list shrink.
RESUME_CHURN = {"hidden_deletions": False}


@pytest.mark.parametrize("list_order", SERVER_ORDERS, ids=lambda o: f"lists-by-{o or 'sort'}")
def test_kill_and_resume_loses_nothing_whatever_the_order(shaped_factory, list_order) -> None:
    sandbox = shaped_factory(orders=40, list_order=list_order, on_list_page=churning(**RESUME_CHURN))
    kill_and_resume(sandbox, (1, 2))


@pytest.mark.parametrize("kills", [(1,), (1, 1, 1), (2, 3, 2)])
def test_kill_and_resume_loses_nothing_wherever_it_is_killed(shaped_factory, kills) -> None:
    kill_and_resume(shaped_factory(orders=40, on_list_page=churning(**RESUME_CHURN)), kills)


def test_resumed_run_skips_orders_already_done(shaped_factory) -> None:
    sandbox = shaped_factory(orders=40)
    config = config_for(sandbox, max_concurrency=1)
    killed = run_tap_until(config, after_states_with_records(3))
    resume = killed.last_state["bookmarks"]["orders"]["resume"]
    assert resume["after_id"] > 0
    resumed = run_tap(config, state=killed.last_state)
    assert min(resumed.by_key("orders", "id")) > resume["after_id"]
    assert "resume" not in resumed.last_state["bookmarks"]["orders"]
    emitted = set(killed.delivered.by_key("orders", "id")) | set(resumed.by_key("orders", "id"))
    assert emitted == set(sandbox.orders_snapshot())
    # The bookmark is the killed run's clock: what changed while it ran is read next time.
    killed_signpost = resume["signpost"]
    assert resumed.last_state["bookmarks"]["orders"]["replication_key_value"] == killed_signpost


def test_sigterm_while_blocked_on_a_full_pipe_cuts_no_line(sandbox_factory) -> None:
    """A target that stops reading, then a SIGTERM: the output stays whole JSON lines."""
    sandbox = sandbox_factory(orders=300)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps(config_for(sandbox, page_size=50)))
        tap = spawn(["--config", str(path)], stderr=False)
        # The pipe (64 KiB) fills long before 300 orders: then the tap stops asking for more.
        served, deadline = -1, time.monotonic() + 60
        while (served != sandbox.request_count or served < 10) and time.monotonic() < deadline:
            served = sandbox.request_count
            time.sleep(0.5)
        tap.send_signal(signal.SIGTERM)
        out, _ = tap.communicate(timeout=60)
    lines = out.decode().split("\n")[:-1]  # Singer lines end in "\n", the last one too
    messages = [json.loads(line) for line in lines]  # every line whole
    assert tap.returncode == 0
    assert len(lines) > 20
    assert messages[-1]["type"] == "STATE"
    assert len(messages) < 300 * 4, "it stopped early, as asked"
    # ... and its last STATE resumes without loss.
    stopped = TapRun(0, "", "", messages)
    resumed = run_tap(config_for(sandbox, page_size=50), state=stopped.last_state)
    assert resumed.returncode == 0, resumed.stderr
    for stream, key in PRIMARY_KEYS.items():
        union = set(stopped.by_key(stream, key)) | set(resumed.by_key(stream, key))
        assert union == set(run_tap(config_for(sandbox, page_size=50)).by_key(stream, key)), stream
