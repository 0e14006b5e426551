"""Killed mid-sync at any moment: the next run, from the last STATE, loses nothing."""

from __future__ import annotations

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
