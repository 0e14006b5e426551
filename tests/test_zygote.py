"""The tests' forked taps (tests/zygote.py) behave as `python -m tap_omnitron` does."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from zygote import Zygote


def untimed(log: bytes) -> bytes:
    return re.sub(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", b"", log, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--about", "--format=json"), {}),
        (("--discover",), {}),
        (("--config", "{bad}"), {}),
        (("--config", "{good}"), {"REQUESTS_CA_BUNDLE": "/missing"}),  # the child's environment is its own
    ],
    ids=["about", "discover", "bad-config", "environment"],
)
def test_a_forked_tap_writes_and_exits_as_a_fresh_one(tmp_path, args, env) -> None:
    paths = {"bad": tmp_path / "bad.json", "good": tmp_path / "good.json"}
    paths["bad"].write_text(json.dumps({"base_url": "ftp://nowhere", "page_size": 0}))
    paths["good"].write_text(json.dumps({"base_url": "https://127.0.0.1:9", "api_token": "x"}))
    argv = [arg.format(**paths) for arg in args]
    environment = {**os.environ, **env}
    fresh = subprocess.run(
        [sys.executable, "-m", "tap_omnitron", *argv],
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env=environment,
    )
    zygote = Zygote()
    try:
        forked = zygote.spawn(argv, env=environment, stdout=True, stderr=True)
        out, err = forked.communicate(timeout=60)
    finally:
        zygote.close()
    assert (forked.returncode, out, untimed(err)) == (fresh.returncode, fresh.stdout, untimed(fresh.stderr))
    assert out or err


def test_a_signal_reaches_the_forked_tap_alone(tmp_path) -> None:
    zygote = Zygote()
    try:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"base_url": "http://192.0.2.1", "api_token": "x", "connect_timeout": 60}))
        forked = zygote.spawn(["--config", str(config)], env=dict(os.environ), stdout=False, stderr=False)
        forked.send_signal(signal.SIGKILL)
        assert forked.wait(timeout=30) == -signal.SIGKILL
        again = zygote.spawn(["--about"], env=dict(os.environ), stdout=True, stderr=False)
        out, _ = again.communicate(timeout=60)
        assert again.returncode == 0
        assert b"tap-omnitron" in out
    finally:
        zygote.close()
