"""`make sweep` / `make clean`: what a stack left on the Docker host, found by label and removed."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from host import cleanup


class FakeHost:
    """Answers the docker/kind/kubectl listings from a dict and records every call."""

    def __init__(self, listings: dict[str, str]) -> None:
        self.listings = listings
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        key = " ".join(argv)
        for prefix, out in self.listings.items():
            if key.startswith(prefix):
                return subprocess.CompletedProcess(list(argv), 0, out, "")
        return subprocess.CompletedProcess(list(argv), 0, "", "")


LEFT = {
    "kind get clusters": "lab-bgp\nother\n",
    "docker ps -a --filter label=cilium-datapath-lab.stack=bgp": "lab-bgp-frr0\ncdl-tools-lab-bgp-worker\n",
    "docker ps -a --filter label=io.x-k8s.kind.cluster=lab-bgp": "lab-bgp-control-plane\nlab-bgp-worker\n",
    "docker network ls --filter label=cilium-datapath-lab.stack=bgp": "cdl-lab-bgp\n",
    "kubectl config get-contexts": "kind-other\nkind-lab-bgp\n",
}


def test_cluster_name_comes_from_the_stack_file() -> None:
    assert cleanup.cluster_name("bgp") == "lab-bgp"


def test_sweep_reports_everything_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    host = FakeHost(LEFT)
    assert cleanup.main(["--stack", "bgp", "--check"], run=host) == 1
    out = capsys.readouterr().out
    for thing in (
        "kind cluster lab-bgp",
        "container lab-bgp-frr0",
        "container lab-bgp-worker",
        "network cdl-lab-bgp",
        "kube context kind-lab-bgp",
    ):
        assert thing in out
    assert "other" not in out  # another cluster is not ours
    assert "fix: make clean STACK=bgp" in out
    assert not [
        c for c in host.calls if c[:2] in (["docker", "rm"], ["kind", "delete"])
    ]  # --check removes nothing


def test_clean_removes_in_dependency_order() -> None:
    host = FakeHost(LEFT)
    assert cleanup.main(["--stack", "bgp"], run=host) == 0
    removals = [
        c for c in host.calls if c[1] in ("delete", "rm") or (c[:2] == ["docker", "network"] and c[2] == "rm")
    ]
    order = [" ".join(c) for c in removals]
    assert order[0] == "kind delete cluster --name lab-bgp"
    assert order.index("docker network rm cdl-lab-bgp") > order.index("docker rm -f lab-bgp-frr0")


def test_a_clean_host_passes_the_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    assert cleanup.main(["--stack", "bgp", "--check"], run=FakeHost({})) == 0
    assert "nothing of stack bgp" in capsys.readouterr().out
