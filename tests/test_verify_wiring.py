"""How the checks are wired into each stack under mocks: one resource per check, right deps."""

from __future__ import annotations

import json

import pytest
from mockstack import evaluate, stack_config, with_project_keys

from verify import catalogue
from verify.kind import TOOLS_IMAGE

COMMAND = "command:local:Command"


@pytest.mark.parametrize("stack", ["overlay", "geneve", "native-auto", "static", "bgp"])
def test_one_command_per_check_of_the_stack(stack: str) -> None:
    ev = evaluate(stack)
    wired = {r.name.removeprefix("verify-") for r in ev.by_type(COMMAND) if r.name.startswith("verify-")}
    assert wired == {c.id for c in catalogue.for_stack(stack)}
    ready = ev.one(COMMAND, "cilium-ready")
    pods = ev.by_type("kubernetes:core/v1:Pod")
    sidecars = [
        c for c in ev.by_type("docker:index/container:Container") if c.name.startswith("verify-tools-")
    ]
    # One per node, and one per FRR router (bgp) for tcpdump and python in the router's namespace.
    assert len(sidecars) == (4 if stack == "bgp" else 3)
    for r in ev.by_type(COMMAND):
        if not r.name.startswith("verify-"):
            continue
        assert ready.urn in r.dependencies
        assert {p.urn for p in pods} <= set(r.dependencies)
        assert {s.urn for s in sidecars} <= set(r.dependencies)
        env = r.inputs["environment"]
        assert env["LAB_CHECK"] == r.name.removeprefix("verify-")
        assert env["LAB_ARTIFACTS"] == f"artifacts/{stack}"
        topo = json.loads(env["LAB_TOPOLOGY"])
        assert topo["mode"] == stack
        assert [n["ip"] for n in topo["nodes"]] == [
            f"172.30.{['overlay', 'geneve', 'native-auto', 'static', 'bgp'].index(stack) + 1}.{i}"
            for i in (2, 3, 4)
        ]
        assert "verify run --kind" in r.inputs["create"]


def test_pods_are_pinned_as_in_the_write_up() -> None:
    ev = evaluate("overlay")
    nodes = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["nodeName"]
        for r in ev.by_type("kubernetes:core/v1:Pod")
    }
    assert nodes == {
        "pod-a": "lab-overlay-worker",
        "pod-b": "lab-overlay-worker",
        "pod-c": "lab-overlay-worker2",
    }
    images = {r.inputs["spec"]["containers"][0]["image"] for r in ev.by_type("kubernetes:core/v1:Pod")}
    assert images == {TOOLS_IMAGE}


def test_one_worker_puts_pod_c_on_the_control_plane() -> None:
    ev = evaluate("overlay", with_project_keys(stack_config("overlay"), workers=1))
    nodes = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["nodeName"]
        for r in ev.by_type("kubernetes:core/v1:Pod")
    }
    assert nodes["pod-c"] == "lab-overlay-control-plane"


def test_sidecars_share_each_node_namespace() -> None:
    ev = evaluate("static")
    modes = sorted(r.inputs["networkMode"] for r in ev.by_type("docker:index/container:Container"))
    assert modes == [f"container:lab-static-{n}" for n in ("control-plane", "worker", "worker2")]


def test_verify_disabled_creates_no_check_workload_or_sidecar() -> None:
    ev = evaluate("overlay", with_project_keys(stack_config("overlay"), verify={"enabled": False}))
    assert not [r for r in ev.by_type(COMMAND) if r.name.startswith("verify-")]
    assert not ev.by_type("kubernetes:core/v1:Pod")
    assert not ev.by_type("docker:index/container:Container")
