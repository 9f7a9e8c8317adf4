"""verify/bgp_checks.py cases a mutation run (`make mutation`) found no test for.

As for the datapath checks: the evidence a report shows, the capture timeout, the counts in
the notes, one broken router leaving the other judged, a topology missing a key, and the FRR
and kernel readers' error texts and less common shapes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fakeprobe import Answer, World, forget_pod_cidr, judge, load_world
from mutantsupport import TimedProbe, capture_filter

from verify import catalogue, parsers
from verify.bgp_checks import frr_peer_states, frr_route_nexthops, kernel_nexthops
from verify.checks import Context, Status
from verify.pcap import analyze

VIP = "10.99.0.1/32"


def _routers(world: World) -> list[str]:
    return world.topology.extra["routers"].split(",")


# --- evidence ----------------------------------------------------------------------------------


@pytest.mark.parametrize("world_name", ["bgp", "bgp-2-routers"])
def test_the_frr_and_kernel_evidence_names_command_and_router(world_name: str, tmp_path: Path) -> None:
    world = load_world(world_name)
    routers = _routers(world)
    labels = {
        "bgp.sessions": [f"show bgp summary json on {r}" for r in routers],
        "bgp.pod-cidrs": [f"show ip route json on {r}" for r in routers],
        "bgp.ecmp": [
            x for r in routers for x in (f"show ip route {VIP} json on {r}", f"kernel route to {VIP} on {r}")
        ],
    }
    for check_id, want in labels.items():
        verdict = judge(world, check_id, tmp_path)
        assert verdict.passed and [e.label for e in verdict.evidence] == want, check_id


def test_the_spread_evidence_the_captures_on_every_node_and_the_counts(tmp_path: Path) -> None:
    world = load_world("bgp")
    verdict = judge(world, "bgp.ecmp-spread", tmp_path)
    policy, *captures, flows = verdict.evidence
    assert policy.label == "multipath hash policy on rtr"
    assert policy.command == "[node rtr] $ sysctl -n net.ipv4.fib_multipath_hash_policy  (exit 0)"
    assert flows.label == "32 UDP flows from rtr to 10.99.0.1:9"
    nodes = [n.name for n in world.topology.nodes]
    assert sorted(e.label.split()[2] for e in captures) == sorted(nodes)
    counts = {}
    for e in captures:
        node = e.label.split()[2]
        assert (
            capture_filter(e, node, "eth0", "bgp.ecmp-spread", tmp_path)
            == "udp and dst host 10.99.0.1 and dst port 9"
        )
        counts[node] = sum(1 for p in analyze(e.artifact or "") if p.inner_dst == "10.99.0.1")
    assert "note rtr: fib_multipath_hash_policy = 1 (1 hashes on L4 ports)" in verdict.findings
    assert f"note flows per node: {dict(sorted(counts.items()))} (total 32)" in verdict.findings


def test_a_policy_the_router_does_not_print_is_shown_as_unknown(tmp_path: Path) -> None:
    world = load_world("bgp")
    world.node("rtr", "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy").stdout = "\n"
    verdict = judge(world, "bgp.ecmp-spread", tmp_path)
    assert "note rtr: fib_multipath_hash_policy = ? (1 hashes on L4 ports)" in verdict.findings


@pytest.mark.parametrize("world_name", ["bgp", "bgp-2-routers"])
def test_transit_keeps_each_routers_capture_and_counts_its_packets(world_name: str, tmp_path: Path) -> None:
    world = load_world(world_name)
    verdict = judge(world, "bgp.transit", tmp_path)
    *captures, pinged = verdict.evidence
    a, c = world.topology.pod("pod-a").ip, world.topology.pod("pod-c").ip
    assert pinged.label == f"ping pod-a -> pod-c {c}"
    carried: dict[str, Counter[tuple[str | None, str | None]]] = {}
    for e in captures:
        router = e.label.split()[2]
        capture_filter(e, router, "eth0", "bgp.transit", tmp_path)
        carried[router] = Counter((p.inner_src, p.inner_dst) for p in analyze(e.artifact or ""))
    assert sorted(carried) == sorted(_routers(world))
    there = {r: carried[r][(str(a), str(c))] for r in _routers(world)}
    assert any(f.endswith(f"crossed rtr: packets per router {there}") for f in verdict.findings)


def test_a_direction_both_routers_carried_names_both(tmp_path: Path) -> None:
    world = load_world("bgp-2-routers")
    rtr = world.capture_key("rtr", "eth0")
    world.captures[world.capture_key("rtr2", "eth0")] = world.captures[rtr]
    verdict = judge(world, "bgp.transit", tmp_path)
    assert verdict.passed
    a, c = world.topology.pod("pod-a").ip, world.topology.pod("pod-c").ip
    assert any(
        f.startswith(f"ok   pod-a -> pod-c ({a} -> {c}) crossed rtr, rtr2: ") for f in verdict.findings
    )


def test_every_capture_waits_15s(tmp_path: Path) -> None:
    probe = TimedProbe(load_world("bgp-2-routers"))
    ctx = Context(tmp_path, "bgp")
    assert catalogue.by_id("bgp.transit").run(probe, ctx).passed
    assert catalogue.by_id("bgp.ecmp-spread").run(probe, ctx).passed
    captures = [t for what, t in probe.timeouts if what.startswith("capture")]
    assert captures == [15.0] * 5


# --- one router or node broken: the rest still judged ----------------------------------------------


def _fails(world: World, router: str, *argv: str) -> None:
    answer = world.node(router, *argv)
    answer.returncode, answer.stdout, answer.stderr = 1, "", "vtysh: failed to connect to any daemons"


@pytest.mark.parametrize(
    ("check_id", "argv"),
    [
        ("bgp.sessions", ("vtysh", "-c", "show bgp summary json")),
        ("bgp.pod-cidrs", ("vtysh", "-c", "show ip route json")),
        ("bgp.ecmp", ("ip", "-j", "route", "show", VIP)),
    ],
)
def test_a_router_that_cannot_answer_leaves_the_other_judged(
    check_id: str, argv: tuple[str, ...], tmp_path: Path
) -> None:
    world = load_world("bgp-2-routers")
    whole = judge(world, check_id, tmp_path)
    later = [f for f in whole.findings if f.startswith("ok   rtr2:")]
    assert whole.passed and later
    _fails(world, "rtr", *argv)
    broken = judge(world, check_id, tmp_path)
    assert broken.status is Status.FAIL
    assert [f for f in later if f not in broken.findings] == []


def test_an_unknown_pod_cidr_leaves_the_other_nodes_judged(tmp_path: Path) -> None:
    world = load_world("bgp")
    later = [f for f in judge(world, "bgp.pod-cidrs", tmp_path).findings if "10.10.0.64/27" in f]
    forget_pod_cidr(world, 0)
    broken = judge(world, "bgp.pod-cidrs", tmp_path)
    assert broken.status is Status.FAIL and later
    assert [f for f in later if f not in broken.findings] == []


def test_installed_is_shown_per_selected_entry(tmp_path: Path) -> None:
    verdict = judge(load_world("bgp"), "bgp.pod-cidrs", tmp_path)
    for cidr in ("10.10.0.0/27", "10.10.0.32/27", "10.10.0.64/27"):
        assert f"ok   rtr: {cidr} is installed in the kernel FIB (installed: [True])" in verdict.findings


# --- the topology's keys ------------------------------------------------------------------------------


def _without(world: World, *keys: str) -> None:
    extra = {k: v for k, v in world.topology.extra.items() if k not in keys}
    world.topology = dataclasses.replace(world.topology, extra=extra)


def test_without_a_router_list_the_router_is_the_one(tmp_path: Path) -> None:
    world = load_world("bgp")
    _without(world, "routers")
    assert judge(world, "bgp.sessions", tmp_path).passed


@pytest.mark.parametrize(
    ("check_id", "keys", "why"),
    [
        (
            "bgp.sessions",
            ("routers", "router"),
            "the topology names no router (extra['router']): is this a bgp lab?",
        ),
        (
            "bgp.ecmp-spread",
            ("router",),
            "the topology names no router (extra['router']): is this a bgp lab?",
        ),
        ("bgp.ecmp", ("bgp.vip",), "the topology has no usable Service VIP (extra['bgp.vip'] = '')"),
    ],
)
def test_a_topology_missing_a_key_fails_saying_which(
    check_id: str, keys: tuple[str, ...], why: str, tmp_path: Path
) -> None:
    world = load_world("bgp")
    _without(world, *keys)
    assert judge(world, check_id, tmp_path).findings == [f"FAIL could not collect the evidence: {why}"]


# --- the readers -------------------------------------------------------------------------------------


def test_frr_json_of_the_wrong_shape_is_refused_by_name() -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: frr_peer_states([]), "show bgp summary json: expected an object"),
        (
            lambda: frr_peer_states({"ipv4Unicast": {"peers": ["172.31.5.2"]}}),
            "show bgp summary json: ipv4Unicast.peers is not an object",
        ),
        (
            lambda: frr_route_nexthops([], ipaddress.IPv4Network(VIP)),
            "show ip route json: expected an object keyed by prefix",
        ),
        (lambda: kernel_nexthops("{}"), "ip -j route show: expected a list"),
        (lambda: kernel_nexthops(""), "ip -j route show: not JSON (Expecting value): (empty)"),
        (lambda: kernel_nexthops("E" * 300), f"ip -j route show: not JSON (Expecting value): {'E' * 200}"),
        (
            lambda: kernel_nexthops('[{"nhid": 7}]', lambda nhid: "Error: nexthop not found"),
            "ip -j nexthop show id 7: not JSON (Expecting value): Error: nexthop not found",
        ),
    ]
    for call, message in cases:
        with pytest.raises(parsers.ParseError) as err:
            call()
        assert str(err.value) == message


def test_a_selected_entry_without_nexthops_has_none() -> None:
    routes = {VIP: [{"prefix": VIP, "protocol": "bgp", "selected": True, "installed": True}]}
    chosen, hops = frr_route_nexthops(routes, ipaddress.IPv4Network(VIP))
    assert len(chosen) == 1 and hops == []


def test_every_route_to_the_prefix_counts_whatever_its_form() -> None:
    """Two routes to one prefix (another metric or table): a gateway, a multipath, a nexthop object."""
    text = (
        '[{"dst": "10.99.0.1", "gateway": "172.31.5.2"},'
        ' {"dst": "10.99.0.1", "nexthops": [{"gateway": "172.31.5.3"}, {"gateway": "172.31.5.4"}]},'
        ' {"dst": "10.99.0.1", "nhid": 9}]'
    )
    groups = {9: '[{"id": 9, "group": [{"id": 10}]}]', 10: '[{"id": 10, "gateway": "172.31.5.5"}]'}
    assert kernel_nexthops(text, groups.__getitem__) == [
        "172.31.5.2",
        "172.31.5.3",
        "172.31.5.4",
        "172.31.5.5",
    ]


def test_a_nexthop_object_that_is_not_a_list_holds_no_gateway() -> None:
    assert kernel_nexthops('[{"nhid": 7}]', lambda nhid: '{"id": 7, "gateway": "172.31.5.2"}') == []


def test_nexthop_objects_the_kernel_route_points_at_are_kept_as_evidence(tmp_path: Path) -> None:
    """With nexthop_compat_mode=0 the route shows only `nhid`: each object read is evidence."""
    world = load_world("bgp")
    gateways = kernel_nexthops(world.node("rtr", "ip", "-j", "route", "show", VIP).stdout)
    world.node("rtr", "ip", "-j", "route", "show", VIP).json = [{"dst": "10.99.0.1", "nhid": 40}]
    objects = {40: [{"id": 40, "group": [{"id": 41 + i} for i in range(len(gateways))]}]}
    objects |= {41 + i: [{"id": 41 + i, "gateway": gw}] for i, gw in enumerate(gateways)}

    def nexthop(key: tuple[str, str, tuple[str, ...]]) -> Answer | None:
        call, target, argv = key
        if (call, target) != ("node", "rtr") or argv[:5] != ("ip", "-j", "nexthop", "show", "id"):
            return None
        return Answer(0, json.dumps(objects[int(argv[5])]))

    world.respond(nexthop)
    verdict = judge(world, "bgp.ecmp", tmp_path)
    assert verdict.passed and len(gateways) == 3
    ids = [40, *range(41, 41 + len(gateways))]
    assert [e.label for e in verdict.evidence][2:] == [f"nexthop object {i} on rtr" for i in ids]
