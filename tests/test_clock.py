"""The bookmark is the server's clock, not the tap's: a server whose clock runs behind or ahead
of the machine the tap runs on loses no change and repeats none.

The sandbox's clock runs an hour off: its `Date` header and the `modified_date` it stamps on a
change both follow it, as a real server's do.
"""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import config_for
from helpers import run_tap

HOUR = 3600.0


def bookmark(run) -> dt.datetime:
    value = run.last_state["bookmarks"]["orders"]["replication_key_value"]
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("skew", [-HOUR, HOUR], ids=["server-behind", "server-ahead"])
def test_the_bookmark_is_the_servers_clock_and_the_next_run_reads_every_change(shaped_factory, skew) -> None:
    sandbox = shaped_factory(orders=23, clock_skew=skew)
    server_started = sandbox.now().replace(microsecond=0)
    first = run_tap(config_for(sandbox))
    assert first.returncode == 0, first.stderr
    # The server's clock at the start of the run, to the second of its Date header; an hour
    # away from the tap's own clock.
    assert server_started <= bookmark(first) <= server_started + dt.timedelta(seconds=3)

    changed = set(sandbox.modify(count=3)) | set(sandbox.create(1))  # stamped by the server's clock
    second = run_tap(config_for(sandbox), state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert set(second.by_key("orders", "id")) == changed, "every change, and nothing older"
    assert set(second.by_key("order_details", "pk")) == changed
