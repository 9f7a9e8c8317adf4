"""Find, and remove, what a stack left on the Docker host: `make sweep` / `make clean STACK=...`.

Everything the lab creates is findable: its Docker network and its containers (tools sidecars,
FRR routers) carry the lab's labels, kind's node containers carry kind's cluster label, and the
cluster's kubeconfig lives under artifacts/<stack>/. `--check` only reports (and exits 1 when
something is left: the e2e sweep); without it, leftovers are removed, in dependency order.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.plan import LABEL_STACK
from lab.stack_file import STACKS_DIR, stack_config

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)


def cluster_name(stack: str, stacks_dir: Path = STACKS_DIR) -> str:
    """The stack's kind cluster name."""
    return stack_config(stack, stacks_dir).cluster_name


@dataclass(frozen=True)
class Leftovers:
    kind_clusters: list[str]
    containers: list[str]
    networks: list[str]
    kube_contexts: list[str]

    def __bool__(self) -> bool:
        return bool(self.kind_clusters or self.containers or self.networks or self.kube_contexts)

    def lines(self) -> list[str]:
        return (
            [f"kind cluster {c}" for c in self.kind_clusters]
            + [f"container {c}" for c in self.containers]
            + [f"network {n}" for n in self.networks]
            + [f"kube context {c} (in your default kubeconfig)" for c in self.kube_contexts]
        )


def _names(run: Runner, argv: Sequence[str]) -> list[str]:
    result = run(argv)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return sorted({line.strip() for line in result.stdout.splitlines() if line.strip()})


def has_kubectl() -> bool:
    return shutil.which("kubectl") is not None


def find(stack: str, cluster: str, run: Runner = _run) -> Leftovers:
    label = f"label={LABEL_STACK}={stack}"
    clusters = [c for c in _names(run, ["kind", "get", "clusters"]) if c == cluster]
    containers = _names(run, ["docker", "ps", "-a", "--filter", label, "--format", "{{.Names}}"])
    containers += _names(
        run,
        ["docker", "ps", "-a", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster}", "--format", "{{.Names}}"],
    )
    networks = _names(run, ["docker", "network", "ls", "--filter", label, "--format", "{{.Name}}"])
    kube: list[str] = []
    if has_kubectl():  # optional: without kubectl there is no kubeconfig of ours to clean either
        contexts = run(["kubectl", "config", "get-contexts", "-o", "name"])
        kube = (
            [c for c in contexts.stdout.split() if c == f"kind-{cluster}"] if contexts.returncode == 0 else []
        )
    return Leftovers(clusters, sorted(set(containers)), networks, kube)


def remove(found: Leftovers, run: Runner = _run) -> list[str]:
    """Remove leftovers (kind first, then containers, then networks); returns what failed."""
    steps = (
        [["kind", "delete", "cluster", "--name", c] for c in found.kind_clusters]
        + [["docker", "rm", "-f", c] for c in found.containers]
        + [["docker", "network", "rm", n] for n in found.networks]
        + [["kubectl", "config", "delete-context", c] for c in found.kube_contexts]
    )
    failed = []
    for argv in steps:
        result = run(argv)
        if result.returncode != 0 and "No such" not in result.stderr and "not found" not in result.stderr:
            failed.append(f"{' '.join(argv)}: {result.stderr.strip()}")
    return failed


def main(argv: Sequence[str] | None = None, run: Runner = _run) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if anything is left")
    parser.add_argument("--cluster", help="the kind cluster name (default: from the stack file)")
    args = parser.parse_args(argv)
    cluster = args.cluster or cluster_name(args.stack)
    found = find(args.stack, cluster, run)
    if not found:
        print(f"nothing of stack {args.stack} (cluster {cluster}) is left")
        return 0
    print(f"left behind by stack {args.stack}:")
    for line in found.lines():
        print(f"  - {line}")
    if args.check:
        print(f"fix: make clean STACK={args.stack}")
        return 1
    failed = remove(found, run)
    for line in failed:
        print(f"could not remove: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
