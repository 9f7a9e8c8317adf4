"""How long each stack takes from `make up` to verified, split into the steps that make it up.

For each stack (and run): `make destroy` if it is up (so the up starts from nothing), then
`make up UP_FLAGS=--json` (Pulumi's engine events, one JSON object a line, kept beside the
results), then `make destroy`. Each resource's start
(its first event) and end (its outputs) place it in one phase, by the component it belongs to:

- cluster: `kind create cluster`, the kubeconfig, the nodes registered (KindCluster)
- images into the nodes: `kind load` of what the nodes lack (KindCluster's `-images`)
- Cilium ready: the Helm release and the agents, operator and CRDs Ready (CiliumRelease)
- workloads and checks: routers, route sets, probe pods, BGP peering, every check (the rest)

The floor is what no lab can go below here: cluster + Cilium ready. The goal (issue 21) is
`make up` within 60 s of it. Writes artifacts/timing/up-timing.json and prints a Markdown table.

    .venv/bin/python bench/up_timing.py [--runs 1] [--stacks overlay native-auto static]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("cluster", "images into the nodes", "Cilium ready", "workloads and checks")


def phase_of(urn: str) -> str | None:
    """The phase of a resource that does work, from its URN (`urn:pulumi:<stack>::<project>::<parent
    types joined by $>$<type>::<name>`). Components (lab:index:*), providers and the stack itself
    register at the program's start and do no work of their own: None."""
    parts = urn.split("::")
    if len(parts) < 4:
        return None
    types, name = parts[2].split("$"), parts[3]
    if types[-1].startswith(("lab:index:", "pulumi:providers:", "pulumi:pulumi:")):
        return None
    if "lab:index:KindCluster" in types:
        return "images into the nodes" if name.endswith("-images") else "cluster"
    if "lab:index:CiliumRelease" in types:
        return "Cilium ready"
    return "workloads and checks"


def phases(events: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """The engine's timeline cut at each phase's last resource, so the phases add up to the whole:

    - cluster: from the engine's first event to the last cluster resource done (the lab network
      and the tools image, which Docker makes meanwhile, fall inside it);
    - images into the nodes: the load command's own span (0 when it has nothing to do);
    - Cilium ready: from the cluster (and images) done to the CiliumRelease's readiness;
    - workloads and checks: from Cilium ready to the engine's last event.
    """
    stamps: list[float] = []
    ends: dict[str, float] = {}
    starts: dict[str, float] = {}
    for event in events:
        stamp = event.get("timestamp")
        if not isinstance(stamp, (int, float)):
            continue
        stamps.append(float(stamp))
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            body = event.get(kind)
            metadata = body.get("metadata", {}) if isinstance(body, dict) else None
            phase = phase_of(str(metadata.get("urn", ""))) if isinstance(metadata, dict) else None
            if phase is None:
                continue
            starts[phase] = min(starts.get(phase, float(stamp)), float(stamp))
            ends[phase] = max(ends.get(phase, float(stamp)), float(stamp))
    if not stamps:
        return dict.fromkeys(PHASES, 0.0)
    first, last = min(stamps), max(stamps)
    cluster_end = ends.get("cluster", first)
    images = (
        ends["images into the nodes"] - starts["images into the nodes"]
        if "images into the nodes" in ends
        else 0.0
    )
    before_cilium = max(cluster_end, ends.get("images into the nodes", cluster_end))
    cilium_end = ends.get("Cilium ready", before_cilium)
    return {
        "cluster": cluster_end - first,
        "images into the nodes": images,
        "Cilium ready": cilium_end - before_cilium,
        "workloads and checks": last - cilium_end,
    }


def _make(target: str, stack: str, env: Mapping[str, str], log: Path | None = None) -> float:
    """Run a make target; with `log`, pass UP_FLAGS=--json, keep the events there and say each
    resource as it is done (the progress of a run of minutes)."""
    started = time.monotonic()
    print(f"[timing] make {target} STACK={stack} ...", flush=True)
    argv = ["make", target, f"STACK={stack}", *(["UP_FLAGS=--json"] if log else [])]
    with subprocess.Popen(argv, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        with log.open("w") if log else open(os.devnull, "w") as kept:
            for line in proc.stdout:
                event = _event(line)
                if event is None:
                    print(line, end="", flush=True)
                    continue
                kept.write(line)
                done = event.get("resOutputsEvent")
                if isinstance(done, dict):
                    urn = str(done.get("metadata", {}).get("urn", ""))
                    print(
                        f"[timing] {time.monotonic() - started:5.0f}s  {urn.rpartition('::')[2]}", flush=True
                    )
    if proc.returncode != 0:
        raise SystemExit(f"make {target} STACK={stack} failed (exit {proc.returncode})")
    return time.monotonic() - started


def _event(line: str) -> dict[str, object] | None:
    """An engine event (a JSON object with a sequence number), or None for make's own output."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and "sequence" in data else None


def run_once(stack: str, log: Path, env: Mapping[str, str]) -> dict[str, float]:
    # Pulumi writes its passphrase's salt into the stack file (at `stack select --create`, and
    # again at a destroy): put the file back as it was, so a benchmark leaves the tree as it found it.
    stack_file = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    before = stack_file.read_text()
    try:
        if (ROOT / ".pulumi-state" / ".pulumi" / "stacks" / "cilium-datapath-lab" / f"{stack}.json").exists():
            _make("destroy", stack, env)  # a stack left up: the up must start from nothing
        try:
            total = _make("up", stack, env, log)
        finally:
            _make("destroy", stack, env)
    finally:
        stack_file.write_text(before)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    result = phases(events)
    result["make up"] = total
    result["floor"] = result["cluster"] + result["Cilium ready"]
    return result


def table(results: Mapping[str, Sequence[Mapping[str, float]]]) -> str:
    """Markdown: the median of each column over the runs (the spread beside it when there are
    several). "make's own" is what `make up` takes outside the engine: the supply and preflight
    checks, the stack selection, the program's start."""
    columns = ["make's own", *PHASES, "make up", "floor", "over the floor"]

    def value(run: Mapping[str, float], column: str) -> float:
        if column == "make's own":
            return run["make up"] - sum(run[p] for p in PHASES)
        if column == "over the floor":
            return run["make up"] - run["floor"]
        return run[column]

    lines = ["| stack | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for stack, runs in results.items():
        cells = []
        for column in columns:
            values = [value(r, column) for r in runs]
            cell = f"{statistics.median(values):.0f} s"
            if len(values) > 1:
                cell += f" ({min(values):.0f}-{max(values):.0f})"
            cells.append(cell)
        lines.append(f"| {stack} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", nargs="+", default=["overlay", "native-auto", "static"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="no runs: the table again from the kept events and make-up times",
    )
    args = parser.parse_args(argv)
    out = ROOT / "artifacts" / "timing"
    out.mkdir(parents=True, exist_ok=True)
    if args.recompute:
        kept = json.loads((out / "up-timing.json").read_text())
        for stack, runs in kept.items():
            for n, run in enumerate(runs):
                events = (out / f"events-{stack}-{n}.jsonl").read_text().splitlines()
                run.update(phases(json.loads(line) for line in events if line.strip()))
                run["floor"] = run["cluster"] + run["Cilium ready"]
        (out / "up-timing.json").write_text(json.dumps(kept, indent=2) + "\n")
        print(table(kept))
        return 0
    results: dict[str, list[dict[str, float]]] = {}
    for stack in args.stacks:
        for n in range(args.runs):
            result = run_once(stack, out / f"events-{stack}-{n}.jsonl", os.environ)
            results.setdefault(stack, []).append(result)
            print(
                f"[timing] {stack} run {n + 1}: " + ", ".join(f"{k} {v:.0f}s" for k, v in result.items()),
                flush=True,
            )
    # The stacks run now replace their own earlier results; the others' are kept.
    kept_path = out / "up-timing.json"
    merged = {**(json.loads(kept_path.read_text()) if kept_path.exists() else {}), **results}
    kept_path.write_text(json.dumps(merged, indent=2) + "\n")
    print(table(merged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
