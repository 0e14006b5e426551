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

Run:  .venv/bin/python scripts/bench.py [--quick] [--no-pin] [--repeat N] [--cases c1,c2] [--json results.json]
      (or `make bench`)
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
# (name, orders, latency ms, max_concurrency or None for the tap's default of 8)
CASES = [
    ("c1-serial-20ms", 2000, 20, 1),
    ("c2-default-20ms", 2000, 20, None),
    ("c3-cpu-0ms", 2000, 0, None),
    ("c4-memory-0ms", 20000, 0, None),
]
RECORD_RE = re.compile(rb'\{"type":\s*"RECORD",\s*"stream":\s*"([^"]+)"')
CPUS = sorted(os.sched_getaffinity(0))
CAN_PIN = len(CPUS) >= 2
TAP_CPU, SANDBOX_CPU = {CPUS[0]}, {CPUS[-1]}  # the tap alone on one; the rest on another


def pinned(cpus: set[int], pin: bool):  # noqa: ANN201, FBT001
    """A preexec_fn that keeps a child process on `cpus`; None lets it run anywhere."""
    return (lambda: os.sched_setaffinity(0, cpus)) if pin else None


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
                 platform.processor() or "unknown")
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()} ({platform.system()})"


def proc_cpu(pid: int) -> float:
    """user+sys CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def count_records(stream, counts: Counter) -> None:
    for line in stream:
        if b'"RECORD"' in line:
            m = RECORD_RE.match(line)
            counts[m.group(1).decode() if m else json.loads(line)["stream"]] += 1


def start_sandbox(orders: int, latency_ms: int, pin: bool) -> tuple[subprocess.Popen, dict]:  # noqa: FBT001
    proc = subprocess.Popen([PY, "-m", "omnitron_sandbox", "--orders", str(orders), "--port", "0",
                             "--latency-ms", str(latency_ms)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            preexec_fn=pinned(SANDBOX_CPU, pin))
    line = proc.stdout.readline()  # blocks until the data is generated and the server listens
    if not line:
        sys.exit(f"sandbox exited with code {proc.wait()} before printing its URL")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_case(name: str, orders: int, latency_ms: int, concurrency: int | None, pin: bool) -> dict:  # noqa: FBT001
    sandbox, info = start_sandbox(orders, latency_ms, pin)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = {"base_url": info["url"], "api_token": info["api_token"]}
            if concurrency is not None:
                config["max_concurrency"] = concurrency
            cfg = Path(tmp, "config.json")
            cfg.write_text(json.dumps(config))
            before = get_json(info["url"] + "/_sandbox/stats")
            sandbox_cpu0 = proc_cpu(sandbox.pid)
            counts: Counter = Counter()
            with open(Path(tmp, "stderr.log"), "w+b") as err:
                t0 = time.perf_counter()
                tap = subprocess.Popen([PY, "-m", "tap_omnitron", "--config", str(cfg)], cwd=ROOT,
                                       stdout=subprocess.PIPE, stderr=err, bufsize=1 << 16,
                                       preexec_fn=pinned(TAP_CPU, pin))
                reader = threading.Thread(target=count_records, args=(tap.stdout, counts))
                reader.start()
                _, status, usage = os.wait4(tap.pid, 0)
                wall = time.perf_counter() - t0
                tap.returncode = os.waitstatus_to_exitcode(status)
                reader.join()
                tap.stdout.close()
                if tap.returncode != 0:
                    err.seek(0)
                    tail = b"".join(err.readlines()[-20:]).decode(errors="replace")
                    sys.exit(f"{name}: tap exited with code {tap.returncode}; last stderr lines:\n{tail}")
            sandbox_cpu = proc_cpu(sandbox.pid) - sandbox_cpu0
            after = get_json(info["url"] + "/_sandbox/stats")
    finally:
        stop(sandbox)
    real_orders = after["orders"]
    for stream in ("orders", "order_details"):
        if counts[stream] != real_orders:
            sys.exit(f"{name}: {counts[stream]} {stream} records emitted, sandbox has {real_orders} orders")
    requests = after["requests"] - before["requests"]
    floor = requests * latency_ms / 1000
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "case": name, "orders": real_orders, "max_concurrency": concurrency or 8, "latency_ms": latency_ms,
        "requests": requests, "wall_s": wall, "floor_s": floor,
        "speedup": floor / wall if latency_ms else None, "orders_per_s": real_orders / wall,
        "records": sum(counts.values()),
        "records_per_s": sum(counts.values()) / wall, "tap_cpu_s": cpu,
        "orders_per_cpu_s": real_orders / cpu if cpu else None,
        "peak_rss_mb": usage.ru_maxrss / 1024, "sandbox_cpu_s": sandbox_cpu, "streams": dict(counts),
    }


def table(results: list[dict]) -> str:
    head = ["case", "orders", "max_concurrency", "requests", "wall s", "floor s", "speedup", "orders/s",
            "records/s", "orders/CPU-s", "peak RSS MB", "sandbox CPU-s"]
    rows = [[r["case"], f"{r['orders']:,}", str(r["max_concurrency"]), f"{r['requests']:,}",
             f"{r['wall_s']:.2f}", f"{r['floor_s']:.1f}",
             "n/a" if r["speedup"] is None else f"{r['speedup']:.1f}x", f"{r['orders_per_s']:,.0f}",
             f"{r['records_per_s']:,.0f}",
             f"{r['orders_per_cpu_s']:,.0f}", f"{r['peak_rss_mb']:.0f}", f"{r['sandbox_cpu_s']:.1f}"]
            for r in results]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "--:" for i in range(len(head))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def targets(by_name: dict[str, dict], pin: bool) -> list[str]:  # noqa: FBT001
    out = []

    def check(label: str, ok: bool, detail: str) -> None:
        out.append(f"- [{'x' if ok else ' '}] {label}: {detail} -> {'OK' if ok else 'MISSED'}")

    if (c2 := by_name.get("c2-default-20ms")) is not None:
        check("case 2 speedup >= 6x over the floor", c2["speedup"] >= 6, f"{c2['speedup']:.1f}x")
    if (c3 := by_name.get("c3-cpu-0ms")) is not None:
        core = "on one core" if pin else "(tap not pinned to one core)"
        check(f"case 3 orders per second >= 1000 {core}", c3["orders_per_s"] >= 1000,
              f"{c3['orders_per_s']:,.0f}")
        check("case 3 orders per CPU-second >= 1500", c3["orders_per_cpu_s"] >= 1500,
              f"{c3['orders_per_cpu_s']:,.0f}")
    if (c4 := by_name.get("c4-memory-0ms")) is not None:
        rss = c4["peak_rss_mb"]
        ok = rss < 250 and (c3 is None or rss <= c3["peak_rss_mb"] + 30)
        ref = f" vs case 3 {c3['peak_rss_mb']:.0f} MB + 30" if c3 else " (case 3 not run)"
        check("case 4 peak RSS < 250 MB and <= case 3 + 30 MB", ok, f"{rss:.0f} MB{ref}")
    return out


def main() -> None:
    names = [c[0] for c in CASES]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="orders / 10, for a smoke run")
    ap.add_argument("--cases", default=",".join(names), help=f"comma list from {','.join(names)}")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    ap.add_argument("--no-pin", action="store_true", help="let tap and sandbox share every core")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each zero-latency case (median shown)")
    args = ap.parse_args()
    pin = CAN_PIN and not args.no_pin
    if pin:
        os.sched_setaffinity(0, SANDBOX_CPU)  # this script's record counting stays off the tap's core
    picked = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := set(picked) - set(names):
        ap.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(names)}")
    results, ranges = [], []
    for name, orders, latency, conc in CASES:
        if name in picked:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            runs = sorted(
                (run_case(name, orders // 10 if args.quick else orders, latency, conc, pin)
                 for _ in range(1 if latency else max(1, args.repeat))),
                key=lambda r: r["tap_cpu_s"],
            )
            results.append(runs[len(runs) // 2])
            if len(runs) > 1:
                low, high = runs[-1]["orders_per_cpu_s"], runs[0]["orders_per_cpu_s"]
                ranges.append(f"- {name}: {len(runs)} runs, {low:,.0f} to {high:,.0f} orders/CPU-s")
    placement = (
        f"tap on CPU {CPUS[0]}, sandbox on CPU {CPUS[-1]}" if pin else "tap and sandbox share every core"
    )
    print("Machine: " + machine() + f"; {placement}" + ("  [--quick: orders / 10]" if args.quick else "") + "\n")
    print(table(results) + "\n")
    if ranges:
        print("Range over the runs (the table shows the median):\n" + "\n".join(ranges) + "\n")
    print("Targets:\n" + "\n".join(targets({r["case"]: r for r in results}, pin)))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "quick": args.quick, "pinned": pin,
                                               "results": results},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
