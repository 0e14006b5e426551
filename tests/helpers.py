"""Running the tap as a user does (a subprocess with a config file) and reading its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT = 120
PRIMARY_KEYS = {"orders": "id", "order_items": "id", "order_details": "pk"}


@dataclass
class TapRun:
    """What one run of the tap wrote: Singer messages on stdout, logs on stderr."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    def records(self, stream: str) -> list[dict]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

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
) -> TapRun:
    """Run the tap; `env` adds to (or, with "", blanks) variables of this environment."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "tap_omnitron", *args]
        for flag, content in (("--config", config), ("--state", state), ("--catalog", catalog)):
            if content is not None:
                path = Path(tmp) / f"{flag.strip('-')}.json"
                path.write_text(json.dumps(content))
                command += [flag, str(path)]
        done = subprocess.run(  # noqa: S603
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    # Singer lines end in "\n" only: str.splitlines() would also cut at a U+2028 in a value.
    messages = [json.loads(line) for line in done.stdout.split("\n") if line.startswith('{"type"')]
    return TapRun(done.returncode, done.stdout, done.stderr, messages)


def select_only(catalog: dict, *streams: str) -> dict:
    """A copy of a discovered catalog with only `streams` selected."""
    catalog = json.loads(json.dumps(catalog))
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in streams
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = chosen
    return catalog


def run_tap_killed(config: dict, *, state: dict | None, after_records: int) -> TapRun:
    """Run the tap and SIGKILL it once it has written `after_records` RECORD messages.

    Only complete lines count, as a target reading the pipe would see them.
    """
    import signal

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "tap_omnitron"]
        for flag, content in (("--config", config), ("--state", state)):
            if content is not None:
                path = Path(tmp) / f"{flag.strip('-')}.json"
                path.write_text(json.dumps(content))
                command += [flag, str(path)]
        process = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines, records = [], 0
        for line in process.stdout:
            if not line.endswith("\n"):
                break
            lines.append(line)
            records += line.startswith('{"type":"RECORD"')
            if records >= after_records:
                os.kill(process.pid, signal.SIGKILL)
                break
        process.stdout.close()
        returncode = process.wait(timeout=TIMEOUT)
    messages = [json.loads(line) for line in lines if line.startswith('{"type"')]
    return TapRun(returncode, "".join(lines), "", messages)
