"""Smoke test and timing of the offline kind node image with kind alone (no Pulumi).

Creates a kind cluster from the built node image (`make images`) on the Docker engine DOCKER_HOST
names, with no default CNI and no kube-proxy (as the lab runs) and, on a cgroup v1 host, the kubelet
patch the lab uses. Reports how long `kind create cluster` took and whether every node registered
(they stay NotReady without a CNI; that is expected), then deletes the cluster.

    .venv/bin/python bench/kind_smoke.py [--name cdl-smoke] [--workers 0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host import cgroups
from lab import kind_config
from supply import node_image as images
from supply import toolchain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="cdl-smoke")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    tag = images.current_tag(os.environ)
    kind_dir = toolchain.current_dir(os.environ)
    if tag is None or kind_dir is None:
        print("build first: make toolchain && make images", file=sys.stderr)
        return 2
    kind = str(kind_dir / "bin" / "kind")
    key = images.image_key(images.RECIPE_DIR, toolchain.go_version(toolchain.go_command()))
    kubectl = str(images.images_root(os.environ) / key / "bin" / "kubectl")
    if cgroups.cgroup_version() == 1:
        print(f"cgroup v1 host: {cgroups.V1_REASON}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(kind_config.smoke_cluster(args.name, tag, args.workers), fh, sort_keys=False)
    t0 = time.monotonic()
    created = subprocess.run([kind, "create", "cluster", "--config", fh.name, "--retain"], check=False)
    seconds = time.monotonic() - t0
    print(
        f"kind create cluster ({1 + args.workers} nodes, {tag}): exit {created.returncode} in {seconds:.0f}s"
    )
    try:
        if created.returncode == 0:
            nodes = subprocess.run(
                [kubectl, "--context", f"kind-{args.name}", "get", "nodes", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            )
            for node in json.loads(nodes.stdout)["items"]:
                info = node["status"]["nodeInfo"]
                print(
                    f"node {node['metadata']['name']}: kubelet {info['kubeletVersion']}, {info['containerRuntimeVersion']}"
                )
            version = subprocess.run(
                [kubectl, "--context", f"kind-{args.name}", "version", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            )
            print(f"API server: {json.loads(version.stdout)['serverVersion']['gitVersion']}")
    finally:
        if not args.keep:
            subprocess.run([kind, "delete", "cluster", "--name", args.name], check=False)
        Path(fh.name).unlink()
    return created.returncode


if __name__ == "__main__":
    sys.exit(main())
