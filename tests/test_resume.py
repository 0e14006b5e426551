"""Killed mid-sync at any moment: the next run, from the last STATE, loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import config_for
from helpers import run_tap, run_tap_killed
from test_loss import changing_between_pages, latest_versions_emitted


@pytest.mark.parametrize("kill_points", [(1,), (7, 40), (3, 3, 3), (25, 60, 90)])
def test_kill_and_resume_loses_nothing(sandbox_factory, kill_points) -> None:
    sandbox = sandbox_factory(orders=40, on_list_page=changing_between_pages)
    config = config_for(sandbox, max_concurrency=4)
    runs, state = [], None
    for after_records in kill_points:
        killed = run_tap_killed(config, state=state, after_records=after_records)
        assert killed.returncode != 0, "the tap was expected to be killed mid-sync"
        runs.append(killed)
        state = killed.last_state or state
    sandbox.on_list_page = None
    finished = run_tap(config, state=state)
    assert finished.returncode == 0, finished.stderr
    follow_up = run_tap(config, state=finished.last_state)
    runs += [finished, follow_up]
    assert latest_versions_emitted(sandbox, *runs) == {}
    emitted = set().union(*(run.by_key("orders", "id") for run in runs))
    details = set().union(*(run.by_key("order_details", "pk") for run in runs))
    assert details >= emitted - set(sandbox.missing_details)


def test_resumed_run_skips_orders_already_done(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=40)
    config = config_for(sandbox, max_concurrency=1)
    killed = run_tap_killed(config, state=None, after_records=80)
    resume = killed.last_state["bookmarks"]["orders"]["resume"]
    assert resume["after_id"] > 0
    resumed = run_tap(config, state=killed.last_state)
    assert min(resumed.by_key("orders", "id")) > resume["after_id"]
    assert "resume" not in resumed.last_state["bookmarks"]["orders"]
    assert set(killed.by_key("orders", "id")) | set(resumed.by_key("orders", "id")) == set(
        sandbox.orders_snapshot()
    )


def test_sigterm_while_blocked_on_a_full_pipe_cuts_no_line(sandbox_factory) -> None:
    """A target that stops reading, then a SIGTERM: the output stays whole JSON lines."""
    sandbox = sandbox_factory(orders=300)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps(config_for(sandbox, page_size=50)))
        tap = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tap_omnitron", "--config", str(path)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        time.sleep(2)  # the pipe is full and the tap is blocked writing to it
        tap.send_signal(signal.SIGTERM)
        out, _ = tap.communicate(timeout=60)
    lines = out.decode().split("\n")[:-1]  # Singer lines end in "\n", the last one too
    messages = [json.loads(line) for line in lines]  # every line whole
    assert tap.returncode == 0
    assert len(lines) > 20  # noqa: PLR2004
    assert messages[-1]["type"] == "STATE"
    assert len(messages) < 300 * 4, "it stopped early, as asked"  # noqa: PLR2004
