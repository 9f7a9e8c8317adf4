"""BGP failover on a running bgp lab: one node's Cilium agent stops answering; how long until FRR
drops that node's path to the VIP, and how long until it is back once the agent runs again.

The agent is frozen (SIGSTOP, by its PID inside the lab's own kind node): it sends no keepalives
and no NOTIFICATION, as a hung agent or a node that lost power would, so FRR only notices when the
hold timer runs out. Then it is thawed (SIGCONT). Every 0.1 s the router is asked for the VIP's
route: its next hops in FRR's RIB (`show ip route <vip> json`) and in the kernel FIB
(`ip -j route show <vip>` in the router's tools sidecar). Run against `make up STACK=bgp`:

    .venv/bin/python bench/bgp_failover.py [--stack bgp] [--node <cluster>-worker] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supply import toolchain  # noqa: E402
from verify.kind import sidecar_name  # noqa: E402

POLL = 0.1


def _run(argv: Sequence[str], timeout: float = 30) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def stack_outputs(stack: str) -> dict[str, Any]:
    key_dir = toolchain.current_dir(os.environ)
    if key_dir is None:
        raise SystemExit("the toolchain is not built: make toolchain")
    env = {**os.environ, **toolchain.toolchain_env(key_dir, ROOT, os.environ["PATH"])}
    env.setdefault("PULUMI_BACKEND_URL", (ROOT / ".pulumi-state").as_uri())
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", "")
    argv = [str(key_dir / "bin" / "pulumi"), "stack", "output", "--json", "--stack", stack]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"no outputs for stack {stack} (is it up? make up STACK={stack}): {done.stderr.strip()}"
        )
    outputs: dict[str, Any] = json.loads(done.stdout)
    return outputs


def rib_next_hops(router: str, vip: str) -> set[str]:
    routes = json.loads(_run(["docker", "exec", router, "vtysh", "-c", f"show ip route {vip} json"]) or "{}")
    return {
        hop["ip"]
        for entries in routes.values()
        for entry in entries
        if entry.get("selected")
        for hop in entry.get("nexthops", [])
        if hop.get("active") and "ip" in hop
    }


def fib_next_hops(router: str, vip: str) -> set[str]:
    routes = json.loads(
        _run(["docker", "exec", sidecar_name(router), "ip", "-j", "route", "show", vip]) or "[]"
    )
    hops = set()
    for route in routes:
        if "gateway" in route:
            hops.add(route["gateway"])
        hops.update(h["gateway"] for h in route.get("nexthops", []) if "gateway" in h)
    return hops


def agent_pid(node: str) -> str:
    """The cilium-agent process of the lab's kind node `node` (its PID inside the node)."""
    pids = _run(["docker", "exec", node, "pgrep", "-x", "cilium-agent"]).split()
    if len(pids) != 1:
        raise SystemExit(f"expected one cilium-agent on {node}, found PIDs {pids}")
    return pids[0]


def _until(what: str, done: Any, timeout: float = 120) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(POLL)
    return time.monotonic() - started


def one_run(router: str, vip: str, node: str, node_ip: str) -> dict[str, float]:
    if node_ip not in rib_next_hops(router, vip) or node_ip not in fib_next_hops(router, vip):
        raise SystemExit(f"{node} ({node_ip}) is not a next hop of {vip} on {router} to begin with")
    pid = agent_pid(node)
    _run(["docker", "exec", node, "kill", "-STOP", pid])
    started = time.monotonic()
    try:
        rib = _until("the RIB dropping the node", lambda: node_ip not in rib_next_hops(router, vip))
        _until("the FIB dropping the node", lambda: node_ip not in fib_next_hops(router, vip))
        fib = time.monotonic() - started
    finally:
        _run(["docker", "exec", node, "kill", "-CONT", pid])
    back = _until("the path coming back", lambda: node_ip in fib_next_hops(router, vip), timeout=180)
    return {"rib drop": rib, "fib drop": fib, "back after thaw": back}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="bgp")
    parser.add_argument("--node", help="the node whose agent stops (default: <cluster>-worker)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack)
    router, vip = sorted(outputs["routers"])[0], outputs["vip"]
    node = args.node or f"{outputs['clusterName']}-worker"
    node_ip = outputs["nodeIps"][node]
    results = []
    for n in range(args.runs):
        result = one_run(router, vip, node, node_ip)
        results.append(result)
        print(f"[failover] run {n + 1}: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.items()), flush=True)
    summary = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(
        f"[failover] {args.stack}: {node}'s agent frozen; {router} drops {node_ip} from {vip} after "
        + ", ".join(f"{k} {v:.1f}s (median of {len(results)})" for k, v in summary.items())
    )
    out = ROOT / "artifacts" / "timing"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bgp-failover-{args.stack}.json").write_text(
        json.dumps({"runs": results, "median": summary}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
