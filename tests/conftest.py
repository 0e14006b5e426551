"""Shared fixtures: a sandbox Omnitron per test, stopped even when the test fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tap_omnitron.sandbox import Sandbox  # noqa: E402


@pytest.fixture
def sandbox_factory():
    """Start sandboxes with any knobs; all of them stop at the end of the test."""
    started: list[Sandbox] = []

    def start(**knobs) -> Sandbox:
        knobs.setdefault("seed", 7)
        sandbox = Sandbox(**knobs).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(orders=23)


def config_for(sandbox: Sandbox, **settings) -> dict:
    """Tap settings for a sandbox; small pages so that every test crosses pages."""
    return {"base_url": sandbox.url, "api_token": sandbox.api_token, "page_size": 5, **settings}
