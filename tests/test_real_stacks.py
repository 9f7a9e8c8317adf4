"""The lab's own stacks for real: `make preview` of every stack, and `make up` / `preview` /
`destroy` of labs (checks off), through the real Pulumi engine, the command and docker plugins
this machine builds, the local Docker engine and the offline supply (lab/offline.py).

Everything runs as a user runs it: the README's make targets, in a copy of the project (creating
a stack writes its `encryptionsalt` into the stack file), on a file backend of its own. The labs
here are stack files a user could write (their own names and subnets, `verify.enabled: false`),
so they never touch a lab of the shipped stacks on the same host. `.ci/run` sets
LAB_REAL_TIER=required: there a missing piece fails instead of skipping.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from mockstack import evaluate, stack_config
from real_lab import (
    DIAGNOSTIC,
    KIND_CLUSTER_LABEL,
    SHIPPED,
    Lab,
    diagnostics,
    kubectl,
    open_lab,
    pulumi_part,
    run,
    toolchain_path,
)

from lab import kind_config, offline
from lab.config import key
from lab.stack_file import stack_config as lab_stack_config


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from open_lab(tmp_path_factory)


# --- make preview of every shipped stack ----------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED)
def test_make_preview_shows_every_declared_resource_and_no_diagnostic(
    lab: Lab, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = lab.ok("preview", f"STACK={stack}")
    pulumi = pulumi_part(said)
    assert "Diagnostics:" not in pulumi and not DIAGNOSTIC.search(pulumi), pulumi
    monkeypatch.setenv(offline.ENV, str(lab.manifest))
    # The mocks name a top-level component's parent type (the stack) in its URN; the engine does not.
    declared = [
        r.urn.replace("::pulumi:pulumi:Stack$", "::")
        for r in evaluate(stack, stack_config(stack))
        if r.type != "pulumi:providers:kubernetes"
    ]
    missing = [urn for urn in declared if f"[urn={urn}]" not in pulumi]
    assert declared and missing == [], f"not in the preview: {missing}\n{pulumi}"


def test_a_cluster_name_taken_outside_the_state_fails_with_the_scripts_fix(lab: Lab) -> None:
    """A kind cluster someone made by hand, on a network of its own, under the name a stack asks
    for: `make up` stops at the create script, which names the cluster and the fix, and adopts
    nothing. (A cluster on the lab's own network is stopped earlier, by Docker: the network name.)"""
    taken, network = "cdltest-handmade", "cdltest-handmade-net"
    tools = {**lab.env, **toolchain_path(lab)}
    node_image = json.loads(lab.manifest.read_text())["nodeImage"]
    made = lab.docker("network", "create", "--subnet", "172.30.214.0/24", network)
    assert made.returncode == 0, made.stderr
    try:
        for _attempt in range(2):  # kind gives a node's systemd little time to boot on a busy 2-core host
            created = subprocess.run(
                ["kind", "create", "cluster", "--config", "-", "--wait", "0s"],
                input=yaml.safe_dump(kind_config.smoke_cluster(taken, node_image, workers=0)),
                env={**tools, "KIND_EXPERIMENTAL_DOCKER_NETWORK": network},
                cwd=lab.root,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if created.returncode == 0:
                break
        assert created.returncode == 0, created.stderr
        lab.write_stack(
            "cdltest-taken",
            "overlay",
            clusterName=taken,
            underlaySubnet="172.30.213.0/24",
            verify={"enabled": False},
        )
        lab.created.append("cdltest-taken")
        failed = lab.make("up", "STACK=cdltest-taken")
        said = diagnostics(failed.stdout)
        assert failed.returncode != 0, said
        assert f"a kind cluster named {taken} already exists outside this stack's state" in said, said
        assert f"fix: kind delete cluster --name {taken}" in said, said
        lab.ok("destroy", "STACK=cdltest-taken")
        lab.created.remove("cdltest-taken")
        nodes = lab.docker("ps", "-q", "--filter", f"label={KIND_CLUSTER_LABEL}={taken}").stdout.split()
        assert len(nodes) == 1  # the hand-made cluster was not touched
    finally:
        run(["kind", "delete", "cluster", "--name", taken], tools, lab.root, 300)
        lab.docker("network", "rm", network)


# --- make up / preview / destroy of an overlay lab ------------------------------------------------

OVERLAY = "cdltest-overlay"


@pytest.fixture(scope="module")
def overlay(lab: Lab) -> dict[str, Any]:
    """`make up` of a user's overlay stack with the checks off; its stack outputs."""
    lab.write_stack(
        OVERLAY, "overlay", clusterName=OVERLAY, underlaySubnet="172.30.211.0/24", verify={"enabled": False}
    )
    lab.created.append(OVERLAY)
    lab.ok("up", f"STACK={OVERLAY}")
    outputs: dict[str, Any] = json.loads(lab.pulumi("stack", "output", "--json", "--stack", OVERLAY))
    return outputs


def test_up_brings_cilium_ready_on_the_lab_network(lab: Lab, overlay: dict[str, Any]) -> None:
    agents = kubectl(lab, OVERLAY, "-n", "kube-system", "get", "daemonset", "cilium")
    assert agents["status"]["numberReady"] == agents["status"]["desiredNumberScheduled"] == 3
    operator = kubectl(lab, OVERLAY, "-n", "kube-system", "get", "deployment", "cilium-operator")
    assert operator["status"].get("readyReplicas") == 1
    nodes = kubectl(lab, OVERLAY, "get", "nodes")["items"]
    ready = {
        n["metadata"]["name"]: any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )
        for n in nodes
    }
    assert ready == dict.fromkeys(overlay["nodes"], True)


def test_every_node_has_exactly_its_planned_pod_cidr(lab: Lab, overlay: dict[str, Any]) -> None:
    nodes = kubectl(lab, OVERLAY, "get", "nodes")["items"]
    assert {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes} == overlay["podCidrs"]
    planned = lab_stack_config(OVERLAY, lab.root / "stacks")
    for cidr in overlay["podCidrs"].values():
        assert ipaddress.IPv4Network(cidr).subnet_of(planned.pod_cidr)


def test_node_ips_in_the_outputs_are_what_docker_says(lab: Lab, overlay: dict[str, Any]) -> None:
    done = lab.docker("network", "inspect", "--format", "{{json .Containers}}", overlay["network"])
    containers = json.loads(done.stdout)
    seen = {
        c["Name"]: c["IPv4Address"].split("/")[0]
        for c in containers.values()
        if c["Name"] in overlay["nodes"]
    }
    assert seen == overlay["nodeIps"]
    assert all(
        ipaddress.ip_address(ip) in ipaddress.ip_network(overlay["underlaySubnet"]) for ip in seen.values()
    )


def test_the_kubeconfig_is_encrypted_in_the_state(lab: Lab, overlay: dict[str, Any]) -> None:
    text = lab.state_file(OVERLAY).read_text()
    state = json.loads(text)
    stack = next(r for r in state["checkpoint"]["latest"]["resources"] if r["type"] == "pulumi:pulumi:Stack")
    kubeconfig = stack["outputs"]["kubeconfig"]
    assert set(kubeconfig) == {"4dabf18193072939515e22adb298388d", "ciphertext"}, kubeconfig
    plain = lab.pulumi("stack", "output", "kubeconfig", "--show-secrets", "--stack", OVERLAY)
    secret_lines = [line.split(":", 1)[1].strip() for line in plain.splitlines() if "-data:" in line]
    assert secret_lines and not [s for s in secret_lines if s in text]


def test_a_second_preview_shows_no_change_at_all(lab: Lab, overlay: dict[str, Any]) -> None:
    pulumi = pulumi_part(lab.ok("preview", f"STACK={OVERLAY}"))
    assert re.search(r"\b\d+ unchanged\b", pulumi), pulumi
    assert not re.search(r"to (create|update|delete|replace)\b", pulumi), pulumi


def test_destroy_after_kind_delete_by_hand_leaves_nothing(lab: Lab, overlay: dict[str, Any]) -> None:
    deleted = run(
        ["kind", "delete", "cluster", "--name", OVERLAY], {**lab.env, **toolchain_path(lab)}, lab.root, 300
    )
    assert deleted.returncode == 0, deleted.stderr
    lab.ok("destroy", f"STACK={OVERLAY}")
    swept = lab.make("sweep", f"STACK={OVERLAY}")
    assert swept.returncode == 0 and "nothing of stack" in swept.stdout, swept.stdout
    assert lab.docker("ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}={OVERLAY}").stdout.strip() == ""
    lab.created.remove(OVERLAY)


# --- a static lab: a routing change read from the real diff, then a live destroy -----------------

STATIC = "cdltest-static"
EXTRA_ROUTE_DEST = "192.168.50.0/24"


@pytest.fixture(scope="module")
def static(lab: Lab) -> dict[str, Any]:
    lab.write_stack(
        STATIC, "static", clusterName=STATIC, underlaySubnet="172.30.212.0/24", verify={"enabled": False}
    )
    lab.created.append(STATIC)
    lab.ok("up", f"STACK={STATIC}")
    outputs: dict[str, Any] = json.loads(lab.pulumi("stack", "output", "--json", "--stack", STATIC))
    return outputs


def test_one_more_static_route_previews_as_one_route_set_update(lab: Lab, static: dict[str, Any]) -> None:
    worker = f"{STATIC}-worker"
    via = static["nodeIps"][f"{STATIC}-worker2"]
    path = lab.root / "stacks" / f"Pulumi.{STATIC}.yaml"
    before = path.read_text()
    data = yaml.safe_load(before)
    data["config"][key("staticRoutes")] = [{"node": worker, "dest": EXTRA_ROUTE_DEST, "via": via}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        pulumi = pulumi_part(lab.ok("preview", f"STACK={STATIC}"))
    finally:
        path.write_text(before)
    (lab.root.parent / "route-diff.txt").write_text(pulumi)
    changed = re.findall(
        r"^\s*~ (\S+): \(update\)\s*\n(?:\s*\[id=\S+\]\n)?\s*\[urn=(\S+)\]", pulumi, re.MULTILINE
    )
    assert [(t, urn.rsplit("::", 1)[1]) for t, urn in changed] == [
        ("command:local:Command", f"routes-{worker}-routes")
    ], pulumi
    assert re.search(rf"\+\s*{re.escape(EXTRA_ROUTE_DEST)} via {re.escape(via)}", pulumi), pulumi
    assert re.search(r"\b1 to update\b", pulumi) and not re.search(r"to (create|delete|replace)\b", pulumi), (
        pulumi
    )


def test_destroy_of_a_live_lab_leaves_nothing(lab: Lab, static: dict[str, Any]) -> None:
    lab.ok("destroy", f"STACK={STATIC}")
    swept = lab.make("sweep", f"STACK={STATIC}")
    assert swept.returncode == 0 and "nothing of stack" in swept.stdout, swept.stdout
    assert lab.docker("network", "ls", "-q", "--filter", f"name={static['network']}").stdout.strip() == ""
    lab.created.remove(STATIC)
