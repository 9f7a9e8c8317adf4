"""How the checks are wired into each stack under mocks: one resource per check, right deps."""

from __future__ import annotations

import json

import pytest
from mockstack import evaluate, stack_config, with_project_keys
from readme_checks import STACKS, checks_of

from lab.config import DEFAULT_TOOLS_IMAGE
from verify.kind import sidecar_name

COMMAND = "command:local:Command"


UNDERLAY = {"overlay": 1, "geneve": 2, "native-auto": 3, "static": 4, "bgp": 5}  # 172.30.N.0/24, LAB.md


@pytest.mark.parametrize("stack", STACKS)
def test_one_command_per_check_of_the_stack(stack: str) -> None:
    """Wired as README's checks table says, not as the program's own lookup says."""
    ev = evaluate(stack)
    wired = [r.name.removeprefix("verify-") for r in ev.by_type(COMMAND) if r.name.startswith("verify-")]
    assert sorted(wired) == sorted(checks_of(stack))
    ready = ev.one(COMMAND, "cilium-ready")
    pods = ev.by_type("kubernetes:core/v1:Pod")
    sidecars = {
        c.inputs["name"]: c
        for c in ev.by_type("docker:index/container:Container")
        if c.name.startswith("verify-tools-")
    }
    # One per node, and one per FRR router (bgp) for tcpdump and python in the router's namespace.
    targets = [f"lab-{stack}-{n}" for n in ("control-plane", "worker", "worker2")]
    targets += [f"lab-{stack}-frr0"] if stack == "bgp" else []
    assert sorted(sidecars) == sorted(sidecar_name(t) for t in targets)
    assert {sidecars[sidecar_name(t)].inputs["networkMode"] for t in targets} == {
        f"container:{t}" for t in targets
    }
    for r in ev.by_type(COMMAND):
        if not r.name.startswith("verify-"):
            continue
        assert ready.urn in r.dependencies
        assert {p.urn for p in pods} <= set(r.dependencies)
        assert {s.urn for s in sidecars.values()} <= set(r.dependencies)
        env = r.inputs["environment"]
        assert env["LAB_CHECK"] == r.name.removeprefix("verify-")
        assert env["LAB_ARTIFACTS"] == f"artifacts/{stack}"
        topo = json.loads(env["LAB_TOPOLOGY"])
        assert topo["mode"] == stack
        assert [n["ip"] for n in topo["nodes"]] == [f"172.30.{UNDERLAY[stack]}.{i}" for i in (2, 3, 4)]
        assert "verify run --kind" in r.inputs["create"]


def test_bgp_checks_run_after_the_bgp_resources_the_echo_service_and_the_routers() -> None:
    """Sessions, learned CIDRs and the VIP exist only once Cilium's BGP resources, the echo Service
    and every FRR router runs its whole config (its readiness, after its container) do: each check
    waits for all of them, and for the routes via FRR."""
    ev = evaluate("bgp", with_project_keys(stack_config("bgp"), bgp={"routers": 2}))
    wanted = {
        ("kubernetes:cilium.io/v2:CiliumBGPPeerConfig", "bgp-lab-frr"),
        ("kubernetes:cilium.io/v2:CiliumBGPAdvertisement", "bgp-lab-advertisements"),
        ("kubernetes:cilium.io/v2:CiliumLoadBalancerIPPool", "bgp-lab-vips"),
        *(
            ("kubernetes:cilium.io/v2:CiliumBGPClusterConfig", f"bgp-lab-node-lab-bgp-{n}")
            for n in ("control-plane", "worker", "worker2")
        ),
        ("kubernetes:core/v1:Service", "bgp-echo-service"),
        (COMMAND, "frr0-ready"),
        (COMMAND, "frr1-ready"),
        *((COMMAND, f"routes-lab-bgp-{n}-routes") for n in ("control-plane", "worker", "worker2")),
    }
    needed = {name: ev.one(typ, name).urn for typ, name in wanted}
    assert {r.name for r in ev if r.type.startswith("kubernetes:cilium.io/v2:")} <= set(needed)
    for check in checks_of("bgp"):
        deps = set(ev.one(COMMAND, f"verify-{check}").dependencies)
        assert {n for n, urn in needed.items() if urn not in deps} == set(), check


def test_router_topology_names_the_frr_containers() -> None:
    """The kind probe sends a router's vtysh to the container named in LAB_TOPOLOGY: that must be
    the FRR container, and its sidecar must share that container's namespace."""
    ev = evaluate("bgp", with_project_keys(stack_config("bgp"), bgp={"routers": 2}))
    frrs = sorted(
        c.inputs["name"] for c in ev.by_type("docker:index/container:Container") if c.name.startswith("frr")
    )
    topo = json.loads(ev.one(COMMAND, "verify-bgp.sessions").inputs["environment"]["LAB_TOPOLOGY"])
    assert topo["extra"]["routers"].split(",") == frrs == ["lab-bgp-frr0", "lab-bgp-frr1"]
    assert topo["extra"]["router"] == "lab-bgp-frr0"
    sidecars = {
        c.inputs["name"]: c.inputs.get("networkMode") for c in ev.by_type("docker:index/container:Container")
    }
    for frr in frrs:
        assert sidecars[sidecar_name(frr)] == f"container:{frr}"


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
    assert images == {DEFAULT_TOOLS_IMAGE}


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


def test_bgp_transit_alone_sees_the_route_via_frr() -> None:
    """The nodes' route to the pod supernet via FRR is what bgp.transit rests on: it sees it (and
    runs again when it changes); the session, RIB and spread checks read FRR, not that route."""
    ev = evaluate("bgp")
    for check in checks_of("bgp"):
        topo = json.loads(ev.one(COMMAND, f"verify-{check}").inputs["environment"]["LAB_TOPOLOGY"])
        if check == "bgp.transit":
            assert topo["routes"] and {r["node"] for r in topo["routes"]} == {
                f"lab-bgp-{n}" for n in ("control-plane", "worker", "worker2")
            }
        else:
            assert topo["routes"] == [], check
