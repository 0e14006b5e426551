"""Benchmark tap-omnitron against the local sandbox API.

For each case a fresh sandbox (``python -m omnitron_sandbox``) is started with N orders and
a fixed per-request latency, then the tap runs once as a subprocess, all three streams selected.
On a machine with two cores or more the tap runs alone on one core, and the sandbox and this
script on another, so that "orders/s" is the tap's throughput on one core. Measured per case:

* requests   - API requests the sandbox served during the run (delta of /_sandbox/stats);
* wall s     - tap start to tap exit, start-up included;
* floor s    - requests x latency, i.e. the time a strictly one-at-a-time client would need;
* speedup    - floor / wall ("n/a" at zero latency);
* orders/s   - orders / wall, each with its items and detailed view;
* records/s  - RECORD messages of all streams / wall;
* orders/CPU-s - orders / (user+sys CPU of the tap process, from os.wait4);
* peak RSS   - ru_maxrss of the tap process (MB);
* sandbox CPU-s - CPU the sandbox process used during the run (to spot it being the bottleneck).

The tap must exit 0 and emit exactly one `orders` and one `order_details` record per order.
The zero-latency cases measure CPU, which a shared machine makes noisy: each runs `--repeat`
times (3), and the table shows the run of median CPU, with the range below it.

`--baseline-python PATH` also runs every selected case with that interpreter's `-m tap_omnitron`
(another checkout, e.g. today's main; same sandbox, same config), interleaved with the current tap
(baseline run, then current run, per repetition), so that both meet the same machine conditions.
Both taps run in a scratch directory, so each imports the tap installed in its own interpreter's
environment and never a `tap_omnitron/` lying in the working directory.

Run:  .venv/bin/python scripts/bench.py [--quick] [--no-pin] [--repeat N] [--cases c1,c2] [--json results.json]
                                        [--baseline-python PATH] [--sandbox-python PATH]
      (or `make bench`; `make bench-compare BASE=<commit>` for the baseline comparison)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Case:
    """One benchmark case: how many orders, at what latency, with how many details at once."""

    name: str
    orders: int
    latency_ms: int
    max_concurrency: int | None = None  # None: the tap's default


CASES = [
    Case("c1-serial-20ms", 2000, 20, max_concurrency=1),
    Case("c2-default-20ms", 2000, 20),
    Case("c3-cpu-0ms", 2000, 0),
    Case("c4-memory-0ms", 50000, 0),
    Case("c5-default-100ms", 2000, 100),
]


@dataclass(frozen=True)
class Tap:
    """One side of the comparison: the tap of the interpreter `python`."""

    side: str  # "current" or "baseline"
    python: str  # the interpreter whose environment holds this side's tap_omnitron


def label(case: str, side: str) -> str:
    """A row's name: the case, marked when the row is not the current tap's."""
    return case if side == "current" else f"{case} ({side})"


RECORD_RE = re.compile(rb'\{"type":\s*"RECORD",\s*"stream":\s*"([^"]+)"')
CPUS = sorted(os.sched_getaffinity(0))
CAN_PIN = len(CPUS) >= 2
TAP_CPU, SANDBOX_CPU = {CPUS[0]}, {CPUS[-1]}  # the tap alone on one; the rest on another
OLD_CPU_FLOOR = 1500  # orders/CPU-s; informational once there is no baseline to compare with


def pinned(cpus: set[int], pin: bool) -> Callable[[], None] | None:
    """A preexec_fn that keeps a child process on `cpus`; None lets it run anywhere."""
    return (lambda: os.sched_setaffinity(0, cpus)) if pin else None


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()} ({platform.system()})"


def tap_source(tap: Tap) -> str:
    """Where `tap.python -m tap_omnitron` imports the tap from (run where the benchmark runs it: not in a checkout)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [tap.python, "-c", "import tap_omnitron; print(tap_omnitron.__file__)"],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        sys.exit(f"{tap.python} cannot import tap_omnitron:\n{out.stderr.strip()}")
    return str(Path(out.stdout.strip()).parent)


def proc_cpu(pid: int) -> float:
    """user+sys CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def count_records(stream: Iterable[bytes], counts: Counter) -> None:
    for line in stream:
        if b'"RECORD"' in line:
            m = RECORD_RE.match(line)
            counts[m.group(1).decode() if m else json.loads(line)["stream"]] += 1


def start_sandbox(python: str, orders: int, latency_ms: int, cwd: str, pin: bool) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [python, "-m", "omnitron_sandbox", "--orders", str(orders), "--port", "0", "--latency-ms", str(latency_ms)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned(SANDBOX_CPU, pin),  # noqa: PLW1509  (no other thread runs while it starts)
    )
    line = proc.stdout.readline()  # blocks until the data is generated and the server listens
    if not line:
        sys.exit(f"sandbox ({python} -m omnitron_sandbox) exited with code {proc.wait()} before printing its URL")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_tap(tap: Tap, name: str, cfg: Path, tmp: str, pin: bool) -> tuple[float, object, Counter]:
    """Runs the tap to its exit; returns wall seconds, its rusage and the RECORD messages per stream."""
    counts: Counter = Counter()
    with Path(tmp, "stderr.log").open("w+b") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [tap.python, "-m", "tap_omnitron", "--config", str(cfg)],
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=err,
            bufsize=1 << 16,
            preexec_fn=pinned(TAP_CPU, pin),  # noqa: PLW1509  (the reader thread starts after it)
        )
        reader = threading.Thread(target=count_records, args=(proc.stdout, counts))
        reader.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
        proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            tail = b"".join(err.readlines()[-20:]).decode(errors="replace")
            sys.exit(f"{name}: tap exited with code {proc.returncode}; last stderr lines:\n{tail}")
    return wall, usage, counts


def run_case(case: Case, orders: int, tap: Tap, sandbox_python: str, pin: bool) -> dict:
    name = label(case.name, tap.side)
    # A scratch working directory for both processes: `python -m` puts the working directory first on
    # sys.path, and a checkout there would shadow the tap installed in `tap.python`'s environment.
    with tempfile.TemporaryDirectory() as tmp:
        sandbox, info = start_sandbox(sandbox_python, orders, case.latency_ms, tmp, pin)
        try:
            config = {"base_url": info["url"], "api_token": info["api_token"]}
            if case.max_concurrency is not None:
                config["max_concurrency"] = case.max_concurrency
            cfg = Path(tmp, "config.json")
            cfg.write_text(json.dumps(config))
            before = get_json(info["url"] + "/_sandbox/stats")
            sandbox_cpu0 = proc_cpu(sandbox.pid)
            wall, usage, counts = run_tap(tap, name, cfg, tmp, pin)
            sandbox_cpu = proc_cpu(sandbox.pid) - sandbox_cpu0
            after = get_json(info["url"] + "/_sandbox/stats")
        finally:
            stop(sandbox)
    real_orders = after["orders"]
    for stream in ("orders", "order_details"):
        if counts[stream] != real_orders:
            sys.exit(f"{name}: {counts[stream]} {stream} records emitted, sandbox has {real_orders} orders")
    requests = after["requests"] - before["requests"]
    floor = requests * case.latency_ms / 1000
    cpu = usage.ru_utime + usage.ru_stime
    print(f"  {name}: {wall:.2f} s wall, {requests:,} requests, {cpu:.2f} CPU-s", file=sys.stderr, flush=True)
    return {
        "case": case.name,
        "side": tap.side,
        "python": tap.python,
        "orders": real_orders,
        "max_concurrency": case.max_concurrency,
        "latency_ms": case.latency_ms,
        "requests": requests,
        "wall_s": wall,
        "floor_s": floor,
        "speedup": floor / wall if case.latency_ms else None,
        "orders_per_s": real_orders / wall,
        "records": sum(counts.values()),
        "records_per_s": sum(counts.values()) / wall,
        "tap_cpu_s": cpu,
        "orders_per_cpu_s": real_orders / cpu if cpu else None,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "sandbox_cpu_s": sandbox_cpu,
        "streams": dict(counts),
    }


def table(results: list[dict]) -> str:
    head = [
        "case",
        "orders",
        "max_concurrency",
        "requests",
        "wall s",
        "floor s",
        "speedup",
        "orders/s",
        "records/s",
        "orders/CPU-s",
        "peak RSS MB",
        "sandbox CPU-s",
    ]
    rows = [
        [
            label(r["case"], r["side"]),
            f"{r['orders']:,}",
            "default" if r["max_concurrency"] is None else str(r["max_concurrency"]),
            f"{r['requests']:,}",
            f"{r['wall_s']:.2f}",
            f"{r['floor_s']:.1f}",
            "n/a" if r["speedup"] is None else f"{r['speedup']:.1f}x",
            f"{r['orders_per_s']:,.0f}",
            f"{r['records_per_s']:,.0f}",
            "n/a" if r["orders_per_cpu_s"] is None else f"{r['orders_per_cpu_s']:,.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['sandbox_cpu_s']:.1f}",
        ]
        for r in results
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "--:" for i in range(len(head))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def targets(current: dict[str, dict], baseline: dict[str, dict]) -> list[str]:
    """The floors, checked on the current tap's rows; a baseline row's figure is shown beside its own."""
    out = []

    def check(what: str, ok: bool, detail: str) -> None:
        out.append(f"- [{'x' if ok else ' '}] {what}: {detail} -> {'OK' if ok else 'MISSED'}")

    def beside(name: str, show: Callable[[dict], str]) -> str:
        return f" (baseline {show(baseline[name])})" if name in baseline else ""

    def speedup(r: dict) -> str:
        return f"{r['speedup']:.1f}x"

    def rss(r: dict) -> str:
        return f"{r['peak_rss_mb']:.0f} MB"

    for name, minimum in (("c5-default-100ms", 7.5), ("c2-default-20ms", 5)):
        if (r := current.get(name)) is not None:
            check(
                f"{name} speedup >= {minimum:g}x over the one-at-a-time floor",
                r["speedup"] >= minimum,
                speedup(r) + beside(name, speedup),
            )
    name = "c3-cpu-0ms"
    if (r := current.get(name)) is not None:
        cur = r["orders_per_cpu_s"]
        if name in baseline:
            base = baseline[name]["orders_per_cpu_s"]
            check(
                f"{name} orders per CPU-second >= 0.5 x the baseline's",
                cur >= 0.5 * base,
                f"{cur:,.0f} vs baseline {base:,.0f} = {cur / base:.2f}x",
            )
        else:
            out.append(
                f"- [-] {name} orders per CPU-second: {cur:,.0f} (old absolute floor {OLD_CPU_FLOOR:,}; "
                "the floor is half the baseline's, see --baseline-python) -> informational"
            )
    name = "c4-memory-0ms"
    if (r := current.get(name)) is not None:
        check(
            f"{name} peak RSS <= 100 MB at 50,000 orders",
            r["peak_rss_mb"] <= 100,
            f"{rss(r)} at {r['orders']:,} orders" + beside(name, rss),
        )
    return out


def main() -> None:  # noqa: C901  (the benchmark's steps, in the order they run)
    names = [c.name for c in CASES]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="orders / 10, for a smoke run")
    ap.add_argument("--cases", default=",".join(names), help=f"comma list from {','.join(names)}")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    ap.add_argument("--no-pin", action="store_true", help="let tap and sandbox share every core")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each zero-latency case (median shown)")
    ap.add_argument(
        "--baseline-python",
        metavar="PATH",
        help="also run each case with this interpreter's tap_omnitron, interleaved, for comparison",
    )
    ap.add_argument(
        "--sandbox-python",
        metavar="PATH",
        default=sys.executable,
        help="interpreter that has omnitron_sandbox (default: this one)",
    )
    args = ap.parse_args()
    pin = CAN_PIN and not args.no_pin
    if pin:
        os.sched_setaffinity(0, SANDBOX_CPU)  # this script's record counting stays off the tap's core
    picked = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := set(picked) - set(names):
        ap.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(names)}")
    # Absolute paths (never resolved: a venv's python is a symlink whose target knows no venv), as the
    # processes start in a scratch directory.
    sandbox_python = os.path.abspath(args.sandbox_python)  # noqa: PTH100  (not resolved: see above)
    baseline = os.path.abspath(args.baseline_python) if args.baseline_python else None  # noqa: PTH100  (the same)
    taps = [Tap("baseline", baseline)] if baseline else []
    taps.append(Tap("current", sys.executable))
    sources = {tap: tap_source(tap) for tap in taps}
    results, ranges = [], []
    for case in CASES:
        if case.name not in picked:
            continue
        print(f"running {case.name} ...", file=sys.stderr, flush=True)
        orders = case.orders // 10 if args.quick else case.orders
        runs: dict[Tap, list[dict]] = {tap: [] for tap in taps}
        for _ in range(1 if case.latency_ms else max(1, args.repeat)):
            for tap in taps:  # baseline, then current: both see the same stretch of machine conditions
                runs[tap].append(run_case(case, orders, tap, sandbox_python, pin))
        for tap in taps:
            ordered = sorted(runs[tap], key=lambda r: r["tap_cpu_s"])
            results.append(ordered[len(ordered) // 2])
            if len(ordered) > 1:
                low, high = ordered[-1]["orders_per_cpu_s"], ordered[0]["orders_per_cpu_s"]
                ranges.append(
                    f"- {label(case.name, tap.side)}: {len(ordered)} runs, {low:,.0f} to {high:,.0f} orders/CPU-s"
                )
    placement = f"tap on CPU {CPUS[0]}, sandbox on CPU {CPUS[-1]}" if pin else "tap and sandbox share every core"
    print("Machine: " + machine() + f"; {placement}" + ("  [--quick: orders / 10]" if args.quick else ""))
    print("\n".join(f"{tap.side.capitalize()} tap: {sources[tap]} ({tap.python})" for tap in taps) + "\n")
    print(table(results) + "\n")
    if ranges:
        print("Range over the runs (the table shows the median):\n" + "\n".join(ranges) + "\n")
    by_side = {tap.side: {r["case"]: r for r in results if r["side"] == tap.side} for tap in taps}
    note = " (--quick: the floors are meant for the full order counts)" if args.quick else ""
    print(f"Targets{note}:\n" + "\n".join(targets(by_side["current"], by_side.get("baseline", {}))))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "quick": args.quick,
                    "pinned": pin,
                    "taps": {tap.side: {"python": tap.python, "tap_omnitron": sources[tap]} for tap in taps},
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
