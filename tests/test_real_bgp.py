"""The real BGP lab: Cilium's own BGP control plane peering FRR routers (the image this machine
builds from Debian's frr), every bgp check PASSing on real routers, and each broken claim FAILing.

One stack (a user's stack file from the shipped bgp one) goes through, in order:
1. `make up`: every check PASSes; FRR read its whole rendered config;
2. a rejected FRR line (a test-only template line): `make up` fails at the router's readiness,
   quoting the line;
3. one node's agent frozen: bgp.sessions FAILs naming that node; thawed, it PASSes again;
4. two routers and a distinct ASN per node, in one change: every check PASSes on both routers
   (the change that found a router added to a running BGP instance getting nothing from it);
5. `bgp.maximumPaths: 1`: bgp.ecmp FAILs inside `make up`;
6. destroy leaves nothing.
The failover figure (hold timer + graceful restart) is a benchmark: bench/bgp_failover.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from real_lab import (
    Lab,
    destroy_leaves_nothing,
    every_check_passed,
    open_lab,
    records,
    statuses,
    up_verified,
    verify_by_hand,
)

from lab.config import key

STACK, SUBNET = "cdltest-v-bgp", "172.30.218.0/24"  # other real labs: 172.30.213-217.0/24
BOGUS = "neighbor NODES bogus-knob 3"  # no FRR version knows it


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from open_lab(tmp_path_factory)


@pytest.fixture(scope="module")
def bgp(lab: Lab) -> dict[str, Any]:
    return up_verified(lab, STACK, "bgp", SUBNET)


def _set_bgp(lab: Lab, **changes: Any) -> None:
    path = lab.root / "stacks" / f"Pulumi.{STACK}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"][key("bgp")] = {**data["config"][key("bgp")], **changes}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _peer_states(lab: Lab, router: str) -> dict[str, str]:
    shown = lab.docker("exec", router, "vtysh", "-c", "show bgp summary json")
    assert shown.returncode == 0, shown.stderr
    peers = json.loads(shown.stdout).get("ipv4Unicast", {}).get("peers", {})
    return {ip: peer.get("state", "") for ip, peer in peers.items()}


def test_bgp_up_passes_every_check_on_frr_built_here(lab: Lab, bgp: dict[str, Any]) -> None:
    every_check_passed(lab, STACK, "bgp")
    built = lab.docker("image", "inspect", "--format", "{{.Id}}", json.loads(lab.manifest.read_text())["frr"])
    assert built.returncode == 0, built.stderr
    for router in bgp["routers"]:
        assert lab.docker("inspect", "--format", "{{.Image}}", router).stdout.strip() == built.stdout.strip()
    first_up = sorted(lab.root.parent.glob(f"make-*-up-STACK={STACK}.log"))[0].read_text()
    assert "runs its whole configuration (no line rejected)" in first_up


def test_bgp_a_rejected_frr_line_fails_the_router_quoting_it(lab: Lab, bgp: dict[str, Any]) -> None:
    """FRR would run without the line and peer anyway; the router's readiness fails instead."""
    template = lab.root / "frr" / "frr.conf.j2"
    original = template.read_text()
    template.write_text(
        original.replace(" bgp log-neighbor-changes", f" bgp log-neighbor-changes\n {BOGUS}", 1)
    )
    try:
        done = lab.make("up", f"STACK={STACK}")
        assert done.returncode != 0, done.stdout[-3000:]
        assert "rejected lines of its configuration at startup" in done.stdout, done.stdout[-6000:]
        assert BOGUS in done.stdout and "line " in done.stdout
    finally:
        template.write_text(original)


def test_bgp_a_frozen_agent_fails_sessions_naming_its_node(lab: Lab, bgp: dict[str, Any]) -> None:
    """The node's agent stops answering (SIGSTOP, as a hung agent): once the hold timer runs out
    the session is gone and bgp.sessions names the node; thawed, the session and the check return."""
    lab.ok("up", f"STACK={STACK}")  # the router of the last test, with its whole config again
    node = f"{STACK}-worker"
    node_ip = bgp["nodeIps"][node]
    router = sorted(bgp["routers"])[0]
    pids = lab.docker("exec", node, "pgrep", "-x", "cilium-agent").stdout.split()
    assert len(pids) == 1, pids
    assert lab.docker("exec", node, "kill", "-STOP", pids[0]).returncode == 0
    try:
        deadline = time.monotonic() + 90
        while _peer_states(lab, router).get(node_ip) == "Established":
            assert time.monotonic() < deadline, "FRR kept the session of a frozen agent for 90 s"
            time.sleep(1)
        code, found, said = verify_by_hand(lab, STACK, "bgp.sessions")
        assert code == 1 and statuses(found) == {"bgp.sessions": "FAIL"}, said
        failing = [f for f in found["bgp.sessions"]["findings"] if node in f and node_ip in f]
        assert failing, found["bgp.sessions"]["findings"]
    finally:
        assert lab.docker("exec", node, "kill", "-CONT", pids[0]).returncode == 0
    code, found, said = verify_by_hand(lab, STACK, "bgp.sessions", settle=True)
    assert code == 0 and statuses(found) == {"bgp.sessions": "PASS"}, said


def test_bgp_two_routers_and_an_asn_per_node_pass_every_check(lab: Lab, bgp: dict[str, Any]) -> None:
    """Both conditions at once: every node an Established peer of both routers under its own
    ASN, each /27 learned on both, the VIP with one path per node on both (multipath-relax)."""
    _set_bgp(lab, routers=2, nodeAsn=[65001, 65002, 65003])
    lab.ok("up", f"STACK={STACK}")
    every_check_passed(lab, STACK, "bgp")
    outputs = json.loads(lab.pulumi("stack", "output", "--json", "--stack", STACK))
    assert len(outputs["routers"]) == 2
    for router in outputs["routers"]:
        states = _peer_states(lab, router)
        assert states == dict.fromkeys(outputs["nodeIps"].values(), "Established"), (router, states)
        shown = lab.docker("exec", router, "vtysh", "-c", "show bgp summary json")
        asns = {p["remoteAs"] for p in json.loads(shown.stdout)["ipv4Unicast"]["peers"].values()}
        assert asns == {65001, 65002, 65003}, (router, asns)


def test_bgp_one_path_at_most_fails_ecmp(lab: Lab, bgp: dict[str, Any]) -> None:
    """maximumPaths 1: FRR keeps one path to the VIP, and the ECMP claim FAILs inside `make up`."""
    _set_bgp(lab, maximumPaths=1)
    done = lab.make("up", f"STACK={STACK}")
    assert done.returncode != 0, done.stdout[-3000:]
    found = records(lab, STACK)
    assert statuses(found)["bgp.ecmp"] == "FAIL", statuses(found)
    # Each router keeps exactly the one path it may: the FAIL is the setting's, not a broken lab.
    one_path = [
        f for f in found["bgp.ecmp"]["findings"] if f.startswith("FAIL") and "has 1 BGP nexthops" in f
    ]
    assert len(one_path) == len(
        json.loads(lab.pulumi("stack", "output", "--json", "--stack", STACK))["routers"]
    )


def test_bgp_destroy_leaves_nothing(lab: Lab, bgp: dict[str, Any]) -> None:
    destroy_leaves_nothing(lab, STACK, bgp)
