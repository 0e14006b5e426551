"""Outages of minutes: load-balancer restarts, deploys and network blips are ridden out; one
that does not end stops the run with one line and a STATE the next run resumes from.

The sandbox stops listening in the middle of a sync (connections refused), on its own port.
The two-minute test runs for about two and a half minutes: it is the outage itself.
"""

from __future__ import annotations

import time

import pytest

from conftest import config_for
from helpers import run_tap
from test_loss import assert_children_follow

pytestmark = pytest.mark.scenario  # see pyproject.toml's markers


def outage_at_page(page: int, seconds: float | None):
    """A list-page hook that takes the server down when `page` is first asked for."""
    done = False

    def hook(sandbox, number: int) -> None:
        nonlocal done
        if number == page and not done:
            done = True
            sandbox.outage(seconds)

    return hook


def test_a_two_minute_outage_in_the_middle_of_a_sync_is_ridden_out(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=300, on_list_page=outage_at_page(3, 120))
    started = time.monotonic()
    run = run_tap(config_for(sandbox, page_size=50), timeout=600)
    elapsed = time.monotonic() - started
    print(f"two-minute outage: the run took {elapsed:.0f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    assert 120 <= elapsed < 240  # the outage, then at most the longest backoff and the rest
    assert set(run.by_key("orders", "id")) == set(sandbox.orders_snapshot())
    assert set(run.by_key("order_details", "pk")) == set(sandbox.orders_snapshot())
    assert_children_follow(sandbox, run)
    retries = [line for line in run.stderr.splitlines() if "; retry " in line]
    assert retries
    said = {line.split(": ", 2)[-1].split("; retry ")[0] for line in retries}
    outage = {  # what a server that goes away mid-answer and then refuses connections looks like
        "connection refused",
        "the server closed the connection without an answer",
        "the connection was reset",
        "an answer that broke off before its end",
        "no connection within connect_timeout",  # seen once on a loaded machine, as the port came back
    }
    assert said <= outage, said


def test_an_outage_that_does_not_end_stops_the_run_resumably(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=300, on_list_page=outage_at_page(5, None))
    started = time.monotonic()
    down = run_tap(config_for(sandbox, page_size=50, max_retry_seconds=5))
    assert time.monotonic() - started < 30
    assert down.returncode == 1
    assert len(down.error_lines) == 1, down.stderr[-3000:]
    assert "gave up after" in down.error_lines[0]
    assert "last error: connection refused" in down.error_lines[0]
    assert "Traceback" not in down.stderr
    resume = down.last_state["bookmarks"]["orders"]["resume"]
    assert resume["after_id"] > 0, "the pages before the outage are recorded as done"

    sandbox.on_list_page = None
    sandbox.resume()
    healed = run_tap(config_for(sandbox, page_size=50), state=down.last_state)
    assert healed.returncode == 0, healed.stderr[-3000:]
    assert min(healed.by_key("orders", "id")) > resume["after_id"], "the done pages are not read again"
    done = {order_id for order_id in down.by_key("orders", "id") if order_id <= resume["after_id"]}
    assert done | set(healed.by_key("orders", "id")) == set(sandbox.orders_snapshot())
    details = set(down.by_key("order_details", "pk")) | set(healed.by_key("order_details", "pk"))
    assert details >= set(sandbox.orders_snapshot())
