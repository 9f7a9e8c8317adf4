"""Benchmark: evaluating the `static` stack under Pulumi mocks at 3, 16 and 64 workers.

Measures what a `pulumi preview` costs the program itself (config validation, address plan,
route computation, resource registration), and how many resources each size registers, to
show route sets stay O(N). Run: `make bench` (or `.venv/bin/python bench/static_eval.py`).
Targets (not asserted in tests): 64 workers evaluate in <= 3 s on a 2-core machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mockstack import evaluate, stack_config, with_project_keys  # noqa: E402

WORKERS = (3, 16, 64)  # workers besides the control plane, as the issue asks
REPEATS = 5
TARGET_SECONDS_64 = 3.0


def measure(workers: int) -> dict[str, object]:
    config = with_project_keys(stack_config("static"), workers=workers)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        ev = evaluate("static", config)
        times.append(time.perf_counter() - started)
    route_sets = len(ev.by_type("lab:index:StaticRouteSet"))
    return {
        "nodes": workers + 1,
        "workers": workers,
        "resources": len(ev.registrations),
        "route_sets": route_sets,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
    }


def main() -> int:
    rows = [measure(workers) for workers in WORKERS]
    print("| workers | nodes | resources | route sets | median (s) | max (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['nodes']} | {r['resources']} | {r['route_sets']} | {r['median_s']} | {r['max_s']} |"
        )
    print(json.dumps(rows), file=sys.stderr)
    largest = rows[-1]
    ok = float(str(largest["max_s"])) <= TARGET_SECONDS_64
    print(f"\n64-worker target (<= {TARGET_SECONDS_64} s): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
