"""The cycle collector during a sync: tuned for it, still collecting, and put back after it."""

from __future__ import annotations

import gc

import pytest

from tap_omnitron import tap
from tap_omnitron.tap import YOUNG_COLLECTION, collecting_for_a_sync


def test_a_sync_collects_new_objects_less_often_and_leaves_the_collector_as_it_found_it() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with collecting_for_a_sync():
        assert gc.get_threshold()[0] == YOUNG_COLLECTION
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > frozen_before  # what the imports made is not walked again
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_cycle_made_during_a_sync_is_still_collected() -> None:
    class Node:
        pass

    with collecting_for_a_sync():
        node = Node()
        node.me = node  # type: ignore[attr-defined]
        del node
        assert gc.collect() > 0


def test_a_failed_sync_puts_the_collector_back_too() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collecting_for_a_sync():
        raise RuntimeError
    assert gc.get_threshold() == before


def test_the_tap_syncs_inside_it(monkeypatch) -> None:
    """`sync_all` is where the tuning applies (the SDK's sync runs within it)."""
    seen = []
    monkeypatch.setattr(tap.TapHooks, "sync_all", lambda _self: seen.append(gc.get_threshold()[0]))
    instance = tap.TapOmnitron(config={"base_url": "http://127.0.0.1:9", "api_token": "t"}, parse_env_config=False)
    instance.sync_all()
    assert seen == [YOUNG_COLLECTION]
