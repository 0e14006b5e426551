"""What the streams share is made once, whichever threads ask for it first."""

from __future__ import annotations

import threading

import pytest

from tap_omnitron.api import Omnitron


@pytest.mark.parametrize("name", ["session", "auth", "retry", "limits", "base_url"])
def test_threads_asking_at_once_get_one_object(name) -> None:
    """Python 3.12+'s cached_property has no lock: the pools' threads each made a session, a
    retry policy (so a Retry-After paused only some of them) and a token of their own."""
    api = Omnitron({"base_url": "https://omnitron.example.com", "api_token": "t", "max_concurrency": 8})
    start = threading.Barrier(16)
    seen = []

    def ask() -> None:
        start.wait()
        seen.append(getattr(api, name))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 16
    assert len({id(thing) for thing in seen}) == 1
