"""Running the tap as a user does (a subprocess with a config file) and reading its output."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zygote import fresh, spawn

if TYPE_CHECKING:
    from collections.abc import Callable

TIMEOUT = 120
PRIMARY_KEYS = {"orders": "id", "order_items": "id", "order_details": "pk"}


@dataclass
class TapRun:
    """What one run of the tap wrote: Singer messages on stdout, logs on stderr."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # of the tap process, with `run_tap(measure_memory=True)`

    def records(self, stream: str) -> list[dict]:
        """The stream's records, in RECORD messages or in the files of BATCH messages."""
        found = []
        for message in self.messages:
            if message.get("stream") != stream:
                continue
            if message["type"] == "RECORD":
                found.append(message["record"])
            elif message["type"] == "BATCH":
                found += batch_records(message)
        return found

    @property
    def delivered(self) -> TapRun:
        """What a target holds for sure: the messages up to the last STATE (a target may drop
        the records after it, and the next run starts from that STATE)."""
        last = max((i for i, m in enumerate(self.messages) if m["type"] == "STATE"), default=-1)
        return TapRun(self.returncode, "", "", self.messages[: last + 1])

    def by_key(self, stream: str, key: str) -> dict:
        """Latest record per primary key, as a target that upserts would keep."""
        return {r[key]: r for r in self.records(stream)}

    def tables(self) -> dict[str, dict]:
        """`by_key` of every stream: what an upserting target holds after the run."""
        return {stream: self.by_key(stream, key) for stream, key in PRIMARY_KEYS.items()}

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict | None:
        return self.states[-1] if self.states else None

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for message in self.messages:
            if message["type"] == "RECORD":
                result[message["stream"]] += 1
        return dict(result)

    def output_json(self) -> dict:
        """stdout as one JSON document (--discover, --about --format=json)."""
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("tap-omnitron: error")]


def run_tap(
    config: dict | None,
    *,
    state: dict | None = None,
    catalog: dict | None = None,
    args: tuple[str, ...] = (),
    timeout: float = TIMEOUT,
    env: dict[str, str] | None = None,
    measure_memory: bool = False,
) -> TapRun:
    """Run the tap; `env` adds to (or, with "", blanks) variables of this environment.

    With `measure_memory`, in a fresh interpreter (a forked one shares the zygote's pages)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [*args, *_files(tmp, config=config, state=state, catalog=catalog)]
        environment = {**os.environ, **(env or {})}
        if measure_memory:
            process = fresh(["-c", _WITH_PEAK_RSS, *command], env=environment)
        else:
            process = spawn(command, env=environment)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    stderr, _, peak = err.decode().partition(_PEAK)
    stdout = out.decode()
    # Singer lines end in "\n" only: str.splitlines() would also cut at a U+2028 in a value.
    messages = [json.loads(line) for line in stdout.split("\n") if line.startswith('{"type"')]
    assert process.returncode is not None
    return TapRun(process.returncode, stdout, stderr, messages, int(peak or 0) / 1024)


def _files(tmp: str, **contents: dict | None) -> list[str]:
    """`--config`, `--state`, `--catalog` arguments, each content written to a file in `tmp`."""
    arguments = []
    for name, content in contents.items():
        if content is not None:
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(content))
            arguments += [f"--{name}", str(path)]
    return arguments


# The tap, and at its exit its own peak RSS (VmHWM). Not from wait4: on Linux a child's
# ru_maxrss starts at the peak of the (large) test process it was forked from.
_PEAK = "\npeak VmHWM kB: "
_WITH_PEAK_RSS = f"""
import atexit, re, runpy, sys
def peak():
    status = open("/proc/self/status").read()
    sys.stderr.write({_PEAK!r} + re.search(r"VmHWM:\\s+(\\d+)", status).group(1))
atexit.register(peak)
sys.argv[0] = "tap-omnitron"
runpy.run_module("tap_omnitron", run_name="__main__", alter_sys=True)
"""


def select_only(catalog: dict, *streams: str) -> dict:
    """A copy of a discovered catalog with only `streams` selected."""
    catalog = json.loads(json.dumps(catalog))
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in streams
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = chosen
    return catalog


def run_tap_until(
    config: dict, stop: Callable[[dict], bool], *, state: dict | None = None, catalog: dict | None = None
) -> TapRun:
    """Run the tap and SIGKILL it as soon as a complete message makes `stop` true.

    Only complete lines count, as a target reading the pipe would see them; the run's
    messages end with the one that stopped it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        process = spawn(_files(tmp, config=config, state=state, catalog=catalog), stderr=False)
        lines = []
        assert process.stdout is not None  # a pipe
        for raw in process.stdout:
            line = raw.decode()
            if not line.endswith("\n"):
                break
            lines.append(line)
            if line.startswith('{"type"') and stop(json.loads(line)):
                process.send_signal(signal.SIGKILL)
                break
        process.stdout.close()
        returncode = process.wait(timeout=TIMEOUT)
    messages = [json.loads(line) for line in lines if line.startswith('{"type"')]
    return TapRun(returncode, "".join(lines), "", messages)


def run_tap_killed(config: dict, *, state: dict | None, after_records: int) -> TapRun:
    """Run the tap and SIGKILL it once it has written `after_records` RECORD messages."""
    seen = 0

    def enough(message: dict) -> bool:
        nonlocal seen
        seen += message["type"] == "RECORD"
        return seen >= after_records

    return run_tap_until(config, enough, state=state)


def progress_state(message: dict) -> bool:
    """A STATE that records progress: the resume point of an interrupted sync, past order 0."""
    if message["type"] != "STATE":
        return False
    resume = message["value"].get("bookmarks", {}).get("orders", {}).get("resume") or {}
    return resume.get("after_id", 0) > 0


def batch_records(message: dict) -> list[dict]:
    """The records in the files of a BATCH message (jsonl, gzip or not, on a file:// root)."""
    records = []
    for url in message["manifest"]:
        path = Path(url.removeprefix("file://"))
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        records += [json.loads(line) for line in data.decode().splitlines() if line]
    return records
