"""The cluster layer's own commands, run for real: the offline node image, kind and this machine's
Docker engine, with no fake binary anywhere.

What this is, and is not: `pulumi up` cannot run here (the Go module proxy refuses the
pulumi-command and pulumi-docker providers, issue 11). So the program is evaluated under the
recording mocks (tests/mockstack.py) and the KindCluster's resources are carried out in their
dependency order from exactly the inputs the program registered: the Docker network from the
docker.Network inputs, then each command.local.Command's `create` (or `delete`) script with its
stdin and environment, through its interpreter, in a working directory of its own, as
pulumi-command runs them. The Pulumi engine's part (ordering, state, diffs) is proven by the mock
tests; this proves the part they cannot: that those inputs make a real cluster with the planned
addresses, and that the delete path leaves nothing. It runs as one scenario, since each step needs
the cluster the one before left, under a stack name of its own, so the lab's labels find only
what this test made, never a lab someone has up. Skips without the engine, kind or the built
node image (`make dockerd`, `make toolchain`, `make images`); about two minutes here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mockstack import Evaluation, Registration, evaluate, stack_config, with_project_keys

from host import cleanup
from host.preflight import check_underlay_free
from lab.config import key, parse_config
from lab.inventory import parse_node_ips
from lab.plan import AddressPlan, plan
from supply import node_image as images
from supply import toolchain

COMMAND = "command:local:Command"
NETWORK = "docker:index/network:Network"
MODE_STACK = "static"  # its stack file; a mode with planned /27 pod CIDRs, which kube-controller-manager would never pick
UNDERLAY = "172.30.201.0/24"  # away from the five stacks' defaults
# The docker.Network inputs create_network knows how to carry out; any other input fails the test.
NETWORK_INPUTS = {"name", "driver", "ipamConfigs", "options", "labels"}


@dataclass(frozen=True)
class Layer:
    """The cluster layer as the program registered it, and the plan it was derived from."""

    evaluation: Evaluation
    plan: AddressPlan
    stack: str
    cluster: str
    workdir: Path

    def command(self, suffix: str) -> Registration:
        return self.evaluation.one(COMMAND, f"-{suffix}")

    def network(self) -> Registration:
        return self.evaluation.one(NETWORK, "-network")

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "artifacts" / self.stack / "kubeconfig"


def _raw_config(cluster: str, tag: str) -> dict[str, Any]:
    return with_project_keys(
        stack_config(MODE_STACK),
        clusterName=cluster,
        workers=1,
        nodeImage=f"local:{tag}",
        underlaySubnet=UNDERLAY,
        staticRoutes=None,
        verify={"enabled": False, "rerun": ""},
    )


def _needs_the_real_supply() -> str:
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine reachable: run `make dockerd` (make test points DOCKER_HOST at it)")
    try:
        kind_dir = toolchain.current_dir(os.environ)
        tag = images.current_tag(os.environ)
    except toolchain.ToolchainError as exc:
        pytest.skip(f"cannot look up the builds ({exc}): needs Go")
    if kind_dir is None or subprocess.run(["kind", "version"], capture_output=True, check=False).returncode:
        pytest.skip("kind is not on PATH: run `make toolchain` (make test puts it on PATH)")
    if tag is None or images.engine_image_id(tag, os.environ) is None:
        pytest.skip("the kind node image is not built or not in this engine: run `make images`")
    return tag


def run_command(layer: Layer, reg: Registration, field: str = "create") -> subprocess.CompletedProcess[str]:
    """One Command's script as pulumi-command runs it: interpreter + script, its environment on top
    of ours, its stdin, in the program's working directory."""
    inputs = reg.inputs
    return subprocess.run(
        [*inputs["interpreter"], inputs[field]],
        input=inputs.get("stdin", ""),
        env={**os.environ, **inputs.get("environment", {})},
        cwd=layer.workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def create_network(reg: Registration) -> None:
    """The docker.Network resource's inputs, as `docker network create` arguments."""
    i = reg.inputs
    assert set(i) == NETWORK_INPUTS, (
        f"docker.Network inputs this test does not carry out: {set(i) ^ NETWORK_INPUTS}"
    )
    (ipam,) = i["ipamConfigs"]
    argv = ["docker", "network", "create", "--driver", i["driver"], "--subnet", ipam["subnet"]]
    argv += ["--gateway", ipam["gateway"], "--ip-range", ipam["ipRange"]]
    for k, v in sorted(i["options"].items()):
        argv += ["--opt", f"{k}={v}"]
    for label in i["labels"]:
        argv += ["--label", f"{label['label']}={label['value']}"]
    subprocess.run([*argv, i["name"]], capture_output=True, text=True, check=True)


def remove_network(layer: Layer) -> None:
    subprocess.run(
        ["docker", "network", "rm", layer.network().inputs["name"]], capture_output=True, check=True
    )


def _kubectl(layer: Layer, *args: str) -> str:
    argv = [
        "docker",
        "exec",
        layer.plan.control_plane.name,
        "kubectl",
        "--kubeconfig",
        "/etc/kubernetes/admin.conf",
    ]
    return subprocess.run([*argv, *args], capture_output=True, text=True, check=True).stdout


def _nothing_left(layer: Layer) -> None:
    left = cleanup.find(layer.stack, layer.cluster)
    assert (left.kind_clusters, left.containers, left.networks) == ([], [], []), f"left behind: {left}"


@pytest.fixture
def layer(tmp_path: Path) -> Iterator[Layer]:
    tag = _needs_the_real_supply()
    cluster = f"cdl-real-{os.getpid()}"
    stack = f"cluster-commands-{os.getpid()}"
    raw = _raw_config(cluster, tag)
    prefix = key("")
    config = parse_config({k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}, stack)
    free = check_underlay_free(config, plan(config).network_name)
    if not free.ok:
        pytest.skip(f"{UNDERLAY} is taken on this engine: {free.what}")
    made = Layer(evaluate(stack, raw), plan(config), stack, cluster, tmp_path)
    try:
        yield made
    finally:  # whatever a failed step left, found by this stack's labels and kind's, as `make clean` does
        cleanup.remove(cleanup.find(stack, cluster))
    _nothing_left(made)


def up(layer: Layer) -> None:
    """Network, cluster, node IPs, pod CIDRs, kubeconfig: every planned address, for real."""
    create_network(layer.network())
    created = run_command(layer, layer.command("cluster"))
    assert created.returncode == 0, created.stderr[-4000:]
    assert layer.kubeconfig.is_file()

    # The stack output nodeIps: every planned node, inside the lab network's node range.
    nodes = run_command(layer, layer.command("nodes"))
    assert nodes.returncode == 0, nodes.stderr
    ips = parse_node_ips(nodes.stdout, [n.name for n in layer.plan.nodes], layer.plan.network_name)
    assert sorted(ips) == sorted(n.name for n in layer.plan.nodes)
    for name, ip in ips.items():
        assert ipaddress.ip_address(ip) in layer.plan.node_range, (name, ip)
        inspected = subprocess.run(
            ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", name],
            capture_output=True,
            text=True,
            check=True,
        )
        networks = json.loads(inspected.stdout)
        assert networks[layer.plan.network_name]["IPAddress"] == ip, (name, networks)

    patched = run_command(layer, layer.command("pod-cidrs"))
    assert patched.returncode == 0, patched.stderr
    registered = json.loads(_kubectl(layer, "get", "nodes", "-o", "json"))["items"]
    got = {n["metadata"]["name"]: (n["spec"].get("podCIDR"), n["spec"].get("podCIDRs")) for n in registered}
    assert got == {node: (cidr, [cidr]) for node, cidr in layer.plan.pod_cidrs.items()}

    kubeconfig = run_command(layer, layer.command("kubeconfig"))
    assert kubeconfig.returncode == 0 and "certificate-authority-data" in kubeconfig.stdout
    assert (
        "certificate-authority-data" not in kubeconfig.stderr
    )  # only stdout, which the program keeps secret


def test_the_cluster_layer_up_again_and_every_destroy_path(layer: Layer) -> None:
    up(layer)

    # pod-cidrs again is a no-op, and a pod CIDR moved in the plan is refused as immutable.
    again = run_command(layer, layer.command("pod-cidrs"))
    assert again.returncode == 0 and "(already set)" in again.stderr, again.stderr
    moved = layer.command("pod-cidrs")
    env = {**moved.inputs["environment"], "LAB_POD_CIDRS": f"{layer.plan.nodes[0].name}=10.10.9.0/27"}
    refused = run_command(layer, dataclasses.replace(moved, inputs={**moved.inputs, "environment": env}))
    assert refused.returncode == 1
    assert "podCIDR is immutable" in refused.stderr and "fix: replace the cluster" in refused.stderr

    # up with a cluster of that name outside the state: the script's message and fix, cluster untouched.
    twice = run_command(layer, layer.command("cluster"))
    assert twice.returncode == 1
    assert f"a kind cluster named {layer.cluster} already exists outside this stack's state" in twice.stderr
    assert f"fix: kind delete cluster --name {layer.cluster}" in twice.stderr
    assert len(json.loads(_kubectl(layer, "get", "nodes", "-o", "json"))["items"]) == len(layer.plan.nodes)

    # destroy after `kind delete cluster` by hand.
    subprocess.run(["kind", "delete", "cluster", "--name", layer.cluster], capture_output=True, check=True)
    deleted = run_command(layer, layer.command("cluster"), "delete")
    assert deleted.returncode == 0, deleted.stderr
    assert f"kind cluster {layer.cluster} is already gone" in deleted.stderr
    assert not layer.kubeconfig.exists()
    remove_network(layer)
    _nothing_left(layer)

    # destroy of a live cluster.
    create_network(layer.network())
    assert run_command(layer, layer.command("cluster")).returncode == 0
    deleted = run_command(layer, layer.command("cluster"), "delete")
    assert deleted.returncode == 0 and f"deleting kind cluster {layer.cluster}" in deleted.stderr, (
        deleted.stderr
    )
    assert not layer.kubeconfig.exists()
    remove_network(layer)
    _nothing_left(layer)
