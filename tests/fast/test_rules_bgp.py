"""Every condition of every BGP check's pass rule, broken alone in a world recorded from real FRR.

The worlds `bgp` and `bgp-2-routers` were recorded from the replica with the project's rendered
frr.conf in FRR and a GoBGP speaker per node (tests/fast/record.py); here each case edits one
fact of FRR's JSON, the kernel's FIB or a capture, and the check must FAIL naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakeprobe import (
    W2,
    Answer,
    Break,
    World,
    forget_pod_cidr,
    lose_replies,
    move_pod,
    ping_of,
    retell,
    set_fields,
)
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

NODE_IPS = ("172.31.5.2", "172.31.5.3", "172.31.5.4")  # the bgp worlds' nodes, in order
CIDRS = ("10.10.0.0/27", "10.10.0.32/27", "10.10.0.64/27")
VIP = "10.99.0.1/32"


def vtysh(world: World, router: str, command: str) -> Answer:
    return world.node(router, "vtysh", "-c", command)


def edit_vtysh(router: str, command: str, edit: Callable[[Any], None]) -> Callable[[World], None]:
    def apply(world: World) -> None:
        answer = vtysh(world, router, command)
        data = answer.json
        edit(data)
        answer.json = data

    return apply


def fails_to_run(router: str, command: str) -> Callable[[World], None]:
    def apply(world: World) -> None:
        answer = vtysh(world, router, command)
        answer.returncode, answer.stdout = 1, ""
        answer.stderr = "Exiting: failed to connect to any daemons.\n"

    return apply


def peers(data: Any) -> dict[str, Any]:
    found: dict[str, Any] = data["ipv4Unicast"]["peers"]
    return found


def rib_entry(prefix: str) -> Callable[[Any], dict[str, Any]]:
    def entry(data: Any) -> dict[str, Any]:
        (found,) = data[prefix]
        entry: dict[str, Any] = found  # the entry itself, to edit in place
        return entry

    return entry


def set_entry(prefix: str, **fields: Any) -> Callable[[Any], None]:
    return lambda data: rib_entry(prefix)(data).update(fields)


def set_nexthops(
    prefix: str, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> Callable[[Any], None]:
    def apply(data: Any) -> None:
        entry = rib_entry(prefix)(data)
        entry["nexthops"] = edit(entry["nexthops"])

    return apply


def _hop(ip: str) -> dict[str, Any]:
    return {"flags": 3, "fib": True, "ip": ip, "afi": "ipv4", "interfaceName": "eth0", "active": True}


def kernel_vip(
    router: str, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> Callable[[World], None]:
    def apply(world: World) -> None:
        answer = world.node(router, "ip", "-j", "route", "show", VIP)
        answer.json = edit(answer.json)

    return apply


def nexthop_objects(router: str, members: list[str]) -> Callable[[World], None]:
    """The kernel keeps the VIP as a nexthop object only (nexthop_compat_mode=0): the route says
    `nhid 15`, `ip -j nexthop show id 15` lists a group whose members hold the gateways."""

    def apply(world: World) -> None:
        kernel_vip(router, lambda routes: [{"dst": "10.99.0.1", "nhid": 15, "protocol": "bgp", "flags": []}])(
            world
        )
        objects = {
            15: [{"id": 15, "group": [{"id": 20 + i} for i in range(len(members))], "protocol": "zebra"}]
        }
        objects |= {
            20 + i: [{"id": 20 + i, "gateway": ip, "dev": "eth0", "scope": "link"}]
            for i, ip in enumerate(members)
        }

        def answer(key: tuple[str, str, tuple[str, ...]]) -> Answer | None:
            call, target, argv = key
            if (call, target) == ("node", router) and argv[:5] == ("ip", "-j", "nexthop", "show", "id"):
                return Answer(0, json.dumps(objects[int(argv[5])]))
            return None

        world.respond(answer)

    return apply


def spread_captures(world: World) -> dict[str, tuple[str, str, str]]:
    return {k[0]: k for k in world.captures if "dst port 9" in k[2]}


def empty_capture(*nodes: int) -> Callable[[World], None]:
    def apply(world: World) -> None:
        keys = spread_captures(world)
        for i in nodes:
            world.set_packets(keys[world.topology.nodes[i].name], [])

    return apply


def redirect_flows(*nodes: int) -> Callable[[World], None]:
    """The packets those nodes captured were addressed elsewhere than the VIP."""

    def apply(world: World) -> None:
        keys = spread_captures(world)
        for i in nodes:
            key = keys[world.topology.nodes[i].name]
            packets = world.packets(key)
            for p in packets:
                p[IP].dst = "10.99.0.2"
                del p[IP].chksum
            world.set_packets(key, packets)

    return apply


def not_udp(*nodes: int) -> Callable[[World], None]:
    """What those nodes captured to the VIP was TCP, not the UDP flows the router sent."""

    def apply(world: World) -> None:
        keys = spread_captures(world)
        for i in nodes:
            key = keys[world.topology.nodes[i].name]
            world.set_packets(
                key, [Ether() / IP(src=p[IP].src, dst=p[IP].dst) / TCP(dport=9) for p in world.packets(key)]
            )

    return apply


def transit_keys(world: World) -> list[tuple[str, str, str]]:
    return [k for k in world.captures if k[2].startswith("icmp and host")]


def drop_direction(src: str) -> Callable[[World], None]:
    def apply(world: World) -> None:
        ip = str(world.topology.pod(src).ip)
        for key in transit_keys(world):
            world.set_packets(key, [p for p in world.packets(key) if p[IP].src != ip])

    return apply


SUMMARY, ROUTES, VIP_ROUTE = "show bgp summary json", "show ip route json", f"show ip route {VIP} json"

BREAKS: list[Break] = [
    # bgp.sessions: vtysh answers on every router; every node's IP a peer there, Established
    Break(
        "bgp.sessions",
        "bgp",
        "vtysh fails",
        fails_to_run("rtr", SUMMARY),
        (r"^FAIL rtr: vtysh -c 'show bgp summary json' ran \(exit 1\)$",),
    ),
    Break(
        "bgp.sessions",
        "bgp",
        "a peer Active",
        edit_vtysh("rtr", SUMMARY, lambda d: peers(d)["172.31.5.4"].update(state="Active")),
        (r"^FAIL rtr: replica-worker2 172\.31\.5\.4 is a peer in state Active \(want Established\)$",),
    ),
    Break(
        "bgp.sessions",
        "bgp",
        "a peer Idle",
        edit_vtysh("rtr", SUMMARY, lambda d: peers(d)["172.31.5.2"].update(state="Idle")),
        (r"control-plane 172\.31\.5\.2 is a peer in state Idle",),
    ),
    Break(
        "bgp.sessions",
        "bgp",
        "a peer absent",
        edit_vtysh("rtr", SUMMARY, lambda d: peers(d).pop("172.31.5.3")),
        (r"^FAIL rtr: replica-worker 172\.31\.5\.3 is a peer in state absent",),
    ),
    Break(
        "bgp.sessions",
        "bgp",
        "no peers at all",
        edit_vtysh("rtr", SUMMARY, lambda d: d.clear()),
        (r"is a peer in state absent",),
    ),
    Break(
        "bgp.sessions",
        "bgp",
        "a peer keyed *ip as FRR's text does",
        edit_vtysh("rtr", SUMMARY, lambda d: peers(d).update({"*172.31.5.3": peers(d).pop("172.31.5.3")})),
        (),
    ),
    Break(
        "bgp.sessions",
        "bgp",
        "not JSON",
        set_fields(lambda w: vtysh(w, "rtr", SUMMARY), stdout="% Unknown command: show bgp summary json\n"),
        (r"could not collect the evidence: show bgp summary json on rtr: not JSON",),
    ),
    Break(
        "bgp.sessions",
        "bgp-2-routers",
        "a peer absent on the second router",
        edit_vtysh("rtr2", SUMMARY, lambda d: peers(d).pop("172.31.5.4")),
        (r"^FAIL rtr2: replica-worker2 172\.31\.5\.4 is a peer in state absent",),
    ),
    Break(
        "bgp.sessions",
        "bgp-2-routers",
        "vtysh fails on the second router",
        fails_to_run("rtr2", SUMMARY),
        (r"^FAIL rtr2: vtysh -c 'show bgp summary json' ran",),
    ),
    # bgp.pod-cidrs: each node's /27 in the RIB from BGP, selected, installed, nexthop = that node only
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "vtysh fails",
        fails_to_run("rtr", ROUTES),
        (r"^FAIL rtr: vtysh -c 'show ip route json' ran",),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "from the kernel, not BGP",
        edit_vtysh("rtr", ROUTES, set_entry(CIDRS[1], protocol="kernel")),
        (
            r"^FAIL rtr: 10\.10\.0\.32/27 is in the RIB from BGP and selected \(have protocols: \['kernel'\]\)$",
            r"10\.10\.0\.32/27 nexthop \[\]",
        ),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "not selected",
        edit_vtysh("rtr", ROUTES, set_entry(CIDRS[1], selected=False)),
        (
            r"^FAIL rtr: 10\.10\.0\.32/27 is in the RIB from BGP and selected",
            r"10\.10\.0\.32/27 nexthop \[\]",
        ),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "not installed",
        edit_vtysh("rtr", ROUTES, set_entry(CIDRS[2], installed=False)),
        (r"^FAIL rtr: 10\.10\.0\.64/27 is installed in the kernel FIB",),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "absent",
        edit_vtysh("rtr", ROUTES, lambda d: d.pop(CIDRS[0])),
        (
            r"10\.10\.0\.0/27 is in the RIB from BGP and selected \(have protocols: none\)",
            r"10\.10\.0\.0/27 nexthop \[\]",
        ),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "another node's nexthop",
        edit_vtysh("rtr", ROUTES, set_nexthops(CIDRS[2], lambda h: [_hop(NODE_IPS[1])])),
        (
            r"^FAIL rtr: 10\.10\.0\.64/27 nexthop \['172\.31\.5\.3'\] \(want only replica-worker2 172\.31\.5\.4\)$",
        ),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "an extra nexthop",
        edit_vtysh("rtr", ROUTES, set_nexthops(CIDRS[2], lambda h: [*h, _hop(NODE_IPS[0])])),
        (r"10\.10\.0\.64/27 nexthop \['172\.31\.5\.4', '172\.31\.5\.2'\] \(want only",),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "nexthop inactive",
        edit_vtysh("rtr", ROUTES, set_nexthops(CIDRS[2], lambda h: [{**n, "active": False} for n in h])),
        (r"10\.10\.0\.64/27 nexthop \[\] \(want only",),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp",
        "pod CIDR unknown",
        lambda w: forget_pod_cidr(w, W2),
        (r"^FAIL replica-worker2: pod CIDR known$",),
    ),
    Break(
        "bgp.pod-cidrs",
        "bgp-2-routers",
        "not installed on the second router",
        edit_vtysh("rtr2", ROUTES, set_entry(CIDRS[0], installed=False)),
        (r"^FAIL rtr2: 10\.10\.0\.0/27 is installed in the kernel FIB",),
    ),
    # bgp.ecmp: on every router, FRR's RIB and the kernel FIB hold one nexthop per node for the VIP
    Break(
        "bgp.ecmp",
        "bgp",
        "vtysh fails",
        fails_to_run("rtr", VIP_ROUTE),
        (r"^FAIL rtr: vtysh -c 'show ip route 10\.99\.0\.1/32 json' ran",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "RIB lacks a node",
        edit_vtysh("rtr", VIP_ROUTE, set_nexthops(VIP, lambda h: h[:2])),
        (r"^FAIL rtr: FRR's RIB has 2 BGP nexthops for 10\.99\.0\.1/32",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "RIB nexthop inactive",
        edit_vtysh("rtr", VIP_ROUTE, set_nexthops(VIP, lambda h: [*h[:2], {**h[2], "active": False}])),
        (r"^FAIL rtr: FRR's RIB has 2 BGP nexthops",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "RIB entry not selected",
        edit_vtysh("rtr", VIP_ROUTE, set_entry(VIP, selected=False)),
        (r"^FAIL rtr: FRR's RIB has 0 BGP nexthops",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "RIB entry not from BGP",
        edit_vtysh("rtr", VIP_ROUTE, set_entry(VIP, protocol="static")),
        (r"^FAIL rtr: FRR's RIB has 0 BGP nexthops",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "kernel route unreadable",
        set_fields(
            lambda w: w.node("rtr", "ip", "-j", "route", "show", VIP),
            returncode=1,
            stdout="",
            stderr="Error: any valid prefix is expected",
        ),
        (r"^FAIL rtr: ip route show 10\.99\.0\.1/32 ran$",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "kernel FIB holds one path",
        kernel_vip(
            "rtr", lambda r: [{"dst": "10.99.0.1", "gateway": NODE_IPS[0], "dev": "eth0", "protocol": "bgp"}]
        ),
        (r"^FAIL rtr: the kernel FIB has 1 nexthops for 10\.99\.0\.1/32",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "kernel FIB lacks a node",
        kernel_vip("rtr", lambda r: [{**r[0], "nexthops": r[0]["nexthops"][:2]}]),
        (r"^FAIL rtr: the kernel FIB has 2 nexthops",),
    ),
    Break("bgp.ecmp", "bgp", "kernel FIB as nexthop objects", nexthop_objects("rtr", list(NODE_IPS)), ()),
    Break(
        "bgp.ecmp",
        "bgp",
        "nexthop object group lacks a node",
        nexthop_objects("rtr", list(NODE_IPS[:2])),
        (r"^FAIL rtr: the kernel FIB has 2 nexthops",),
    ),
    Break(
        "bgp.ecmp",
        "bgp",
        "no VIP known",
        lambda w: retell(w, extra={k: v for k, v in w.topology.extra.items() if k != "bgp.vip"}),
        (r"could not collect the evidence: the topology has no usable Service VIP",),
    ),
    Break(
        "bgp.ecmp",
        "bgp-2-routers",
        "second router's FIB lacks a node",
        kernel_vip("rtr2", lambda r: [{**r[0], "nexthops": r[0]["nexthops"][1:]}]),
        (r"^FAIL rtr2: the kernel FIB has 2 nexthops",),
    ),
    # bgp.ecmp-spread: the sender ran; UDP flows to the VIP reached >= 2 nodes' eth0
    Break(
        "bgp.ecmp-spread",
        "bgp",
        "sender fails",
        set_fields(
            lambda w: w.node("rtr", "python3", "-c", "", "10.99.0.1", "9", "40000", "32"),
            returncode=1,
            stderr="OSError: [Errno 101] Network is unreachable",
        ),
        (r"^FAIL rtr sent 32 UDP flows",),
    ),
    Break(
        "bgp.ecmp-spread",
        "bgp",
        "all flows on one node",
        empty_capture(0, 1),
        (r"^FAIL the flows reached 1 nodes \['replica-worker2'\] \(want >= 2\)$",),
    ),
    Break(
        "bgp.ecmp-spread",
        "bgp",
        "no flow arrived",
        empty_capture(0, 1, 2),
        (r"^FAIL the flows reached 0 nodes",),
    ),
    Break(
        "bgp.ecmp-spread",
        "bgp",
        "flows to another address",
        redirect_flows(0, 2),
        (r"^FAIL the flows reached 1 nodes \['replica-worker'\]",),
    ),
    Break("bgp.ecmp-spread", "bgp", "two nodes are enough", empty_capture(2), ()),
    Break(
        "bgp.ecmp-spread",
        "bgp",
        "not UDP",
        not_udp(0, 2),
        (r"^FAIL the flows reached 1 nodes \['replica-worker'\]",),
    ),
    # bgp.transit: pods on two nodes, every reply, each direction captured on a router
    Break(
        "bgp.transit",
        "bgp",
        "pods on one node",
        lambda w: move_pod(w, "pod-c", 1),
        (r"^FAIL pod-a and pod-c are on different nodes \(replica-worker, replica-worker\)$",),
    ),
    Break(
        "bgp.transit",
        "bgp",
        "a reply lost",
        lambda w: lose_replies(ping_of(w, "pod-a", "pod-c")),
        (r"^FAIL pod-a reached pod-c across nodes \(33\.3333% loss\)$",),
    ),
    Break(
        "bgp.transit",
        "bgp",
        "requests bypass the router",
        drop_direction("pod-a"),
        (r"^FAIL pod-a -> pod-c \(10\.10\.0\.42 -> 10\.10\.0\.74\) crossed no router",),
    ),
    Break(
        "bgp.transit",
        "bgp",
        "replies bypass the router",
        drop_direction("pod-c"),
        (r"^FAIL pod-c -> pod-a \(10\.10\.0\.74 -> 10\.10\.0\.42\) crossed no router",),
    ),
    Break(
        "bgp.transit",
        "bgp-2-routers",
        "requests bypass both routers",
        drop_direction("pod-a"),
        (r"^FAIL pod-a -> pod-c .* crossed no router",),
    ),
]


@pytest.mark.parametrize("case", BREAKS, ids=lambda c: c.id)
def test_breaking_one_condition_fails_the_check_naming_it(case: Break, tmp_path: Path) -> None:
    case.run(tmp_path)
