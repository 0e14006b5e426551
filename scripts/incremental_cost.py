"""What an incremental run costs: a shop of 303 orders, 8 of them changed, then the next run.

For each API shape and listing order, prints the orders the second run emitted and the list
and detail requests it sent. Run: .venv/bin/python scripts/incremental_cost.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnitron_sandbox import Sandbox  # noqa: E402  (once sys.path has the checkout)


def run(config: dict, state: dict | None = None) -> tuple[dict, int]:
    """The last STATE and the number of orders one run of the tap emitted."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "tap_omnitron", "--config", str(Path(tmp, "c.json"))]
        Path(tmp, "c.json").write_text(json.dumps(config))
        if state is not None:
            Path(tmp, "s.json").write_text(json.dumps(state))
            args += ["--state", str(Path(tmp, "s.json"))]
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return states[-1], sum(m["type"] == "RECORD" and m["stream"] == "orders" for m in messages)


def main() -> None:
    print("| shape | the server lists by | orders | list requests | detail requests |")
    print("|---|---|--:|--:|--:|")
    for shape in ("documented", "extended"):
        for order in (None, "modified_date"):
            with Sandbox(orders=303, seed=5, shape=shape, list_order=order) as sandbox:
                config = {"base_url": sandbox.url, "api_token": sandbox.api_token}
                state, _ = run(config)
                sandbox.modify(count=8)
                sandbox.reset_stats()
                _, orders = run(config, state)
                by_path = sandbox.requests_by_path
                details = sum(n for path, n in by_path.items() if "detailed" in path)
                print(
                    f"| {shape} | {order or 'id (sort honoured)'} | {orders} | "
                    f"{by_path.get('/api/i1/orders/', 0)} | {details} |"
                )


if __name__ == "__main__":
    main()
