"""The BGP claims of the write-up as checks: sessions, learned pod CIDRs, ECMP for the VIP, real spread, transit.

Written like `verify.checks` (same Check/Verdict/Evidence), and like them they touch the lab only
through the Probe interface. The router is a node name in the topology (`extra["router"]`): an FRR
namespace in the replica, an FRR container in the kind lab (the kind probe routes the name to it).
`extra["routers"]` lists every router, comma-separated (the nodes route the pod supernet through
all of them; `extra["router"]` is the first, which sends the spread flows). The Service VIP the
nodes advertise is `extra["bgp.vip"]`.

The FRR JSON readers are public because the replica's daemon runner waits on the same facts.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verify import parsers
from verify.checks import Check, Context, Evidence, Verdict, capture_packets, ping, ping_fact
from verify.pcap import PacketInfo
from verify.probe import CommandResult, NodeInfo, Probe, Topology

BGP_STACKS = ("bgp",)
SPREAD_FLOWS = 32
SPREAD_FIRST_SOURCE_PORT = 40000
SPREAD_PORT = 9  # discard: nothing has to answer, the captures count what arrives
# Sends one UDP datagram per flow, each from its own source port: with fib_multipath_hash_policy=1
# the router hashes on ports, so these are SPREAD_FLOWS distinct L4 flows. Values come in as argv.
# Run as `python3 -c <text>` in the router, where this package is not installed.
_SPREAD_SENDER = (Path(__file__).resolve().parent / "remote" / "spread_sender.py").read_text()


# --- reading FRR's JSON ------------------------------------------------------------------------


def _load(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise parsers.ParseError(f"{what}: not JSON ({exc.msg}): {text.strip()[:200] or '(empty)'}") from None


def frr_peer_states(summary: Any) -> dict[str, str]:
    """peer IP -> BGP state from `show bgp summary json` (ipv4Unicast).

    Dynamic neighbours (from a listen range) are keyed by their IP in FRR 8.4 and 10.x, with
    `dynamicPeer: true`; some versions key them `*<ip>` as the text summary prints them.
    FRR prints `{}` when there are no peers at all.
    """
    if not isinstance(summary, dict):
        raise parsers.ParseError("show bgp summary json: expected an object")
    afi = summary.get("ipv4Unicast") or {}
    peers = afi.get("peers") or {}
    if not isinstance(peers, dict):
        raise parsers.ParseError("show bgp summary json: ipv4Unicast.peers is not an object")
    return {key.lstrip("*"): str(peer.get("state", "?")) for key, peer in peers.items()}


def frr_route_nexthops(routes: Any, prefix: ipaddress.IPv4Network) -> tuple[list[dict[str, Any]], list[str]]:
    """(the selected BGP entries for `prefix`, their active nexthop IPs) from `show ip route json`."""
    if not isinstance(routes, dict):
        raise parsers.ParseError("show ip route json: expected an object keyed by prefix")
    entries = routes.get(str(prefix)) or []
    chosen = [e for e in entries if e.get("protocol") == "bgp" and e.get("selected")]
    hops = [
        str(nh["ip"]) for e in chosen for nh in e.get("nexthops", []) if nh.get("ip") and nh.get("active")
    ]
    return chosen, hops


def kernel_nexthops(route_json: str, nexthop_lookup: Callable[[int], str] | None = None) -> list[str]:
    """Gateways of the kernel route(s) in `ip -j route show <prefix>`.

    Reads a multipath route's `nexthops`, a single `gateway`, or, when the kernel reports only a
    nexthop object (`nhid`, with nexthop_compat_mode off), the group that `nexthop_lookup(id)`
    returns as `ip -j nexthop show id <id>` text.
    """
    data = _load(route_json, "ip -j route show")
    if not isinstance(data, list):
        raise parsers.ParseError("ip -j route show: expected a list")
    gateways: list[str] = []
    for route in data:
        if route.get("nexthops"):
            gateways += [str(n["gateway"]) for n in route["nexthops"] if n.get("gateway")]
        elif route.get("gateway"):
            gateways.append(str(route["gateway"]))
        elif route.get("nhid") is not None and nexthop_lookup is not None:
            gateways += _nexthop_object(int(route["nhid"]), nexthop_lookup)
    return gateways


def _nexthop_object(nhid: int, lookup: Callable[[int], str]) -> list[str]:
    objects = _load(lookup(nhid), f"ip -j nexthop show id {nhid}")
    gateways: list[str] = []
    for obj in objects if isinstance(objects, list) else []:
        if obj.get("gateway"):
            gateways.append(str(obj["gateway"]))
        for member in obj.get("group", []):
            gateways += _nexthop_object(int(member["id"]), lookup)
    return gateways


# --- shared steps ------------------------------------------------------------------------------


def _router(topo: Topology) -> str:
    """The router the nodes send the pod supernet to (a LookupError, reported as a FAIL, if none)."""
    router = topo.extra.get("router")
    if not router:
        raise LookupError("the topology names no router (extra['router']): is this a bgp lab?")
    return router


def _routers(topo: Topology) -> list[str]:
    listed = [r.strip() for r in topo.extra.get("routers", "").split(",") if r.strip()]
    return listed or [_router(topo)]


def _vip(topo: Topology) -> ipaddress.IPv4Address:
    raw = topo.extra.get("bgp.vip", "")
    try:
        return ipaddress.IPv4Address(raw)
    except ValueError:
        raise LookupError(f"the topology has no usable Service VIP (extra['bgp.vip'] = {raw!r})") from None


def _vtysh_json(probe: Probe, v: Verdict, router: str, command: str) -> Any | None:
    result = probe.node_exec(router, ["vtysh", "-c", command])
    v.evidence.append(Evidence.of(f"{command} on {router}", result))
    if not v.expect(result.ok, f"{router}: vtysh -c '{command}' ran (exit {result.returncode})"):
        return None
    return _load(result.stdout, f"{command} on {router}")


def _node_ips(topo: Topology) -> set[str]:
    return {str(n.ip) for n in topo.nodes}


def _pod_cidr_known(v: Verdict, node: NodeInfo) -> ipaddress.IPv4Network | None:
    if not v.expect(node.pod_cidr is not None, f"{node.name}: pod CIDR known"):
        return None
    return node.pod_cidr


def _capture_all(
    probe: Probe,
    ctx: Context,
    v: Verdict,
    check: str,
    nodes: list[str],
    iface: str,
    bpf: str,
    traffic: Callable[[], CommandResult],
) -> tuple[dict[str, list[PacketInfo]], CommandResult]:
    """Capture on `iface` of every node at once (nested captures) while `traffic` runs once."""
    if not nodes:
        return {}, traffic()
    first, rest = nodes[0], nodes[1:]

    def inner() -> tuple[dict[str, list[PacketInfo]], CommandResult]:
        return _capture_all(probe, ctx, v, check, rest, iface, bpf, traffic)

    seen, (packets, result) = capture_packets(probe, ctx, v, check, first, iface, bpf, inner, timeout=15.0)
    return {first: seen, **packets}, result


# --- the checks --------------------------------------------------------------------------------


def bgp_sessions(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    for router in _routers(topo):
        summary = _vtysh_json(probe, v, router, "show bgp summary json")
        if summary is None:
            continue
        states = frr_peer_states(summary)
        for node in topo.nodes:
            state = states.get(str(node.ip))
            v.expect(
                state == "Established",
                f"{router}: {node.name} {node.ip} is a peer in state {state or 'absent'} (want Established)",
            )


def bgp_pod_cidrs(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    for router in _routers(topo):
        routes = _vtysh_json(probe, v, router, "show ip route json")
        if routes is None:
            continue
        for node in topo.nodes:
            cidr = _pod_cidr_known(v, node)
            if cidr is None:
                continue
            chosen, hops = frr_route_nexthops(routes, cidr)
            have = sorted({str(e.get("protocol")) for e in routes.get(str(cidr)) or []})
            if v.expect(
                bool(chosen),
                f"{router}: {cidr} is in the RIB from BGP and selected (have protocols: {have or 'none'})",
            ):
                v.expect(
                    all(e.get("installed") for e in chosen),
                    f"{router}: {cidr} is installed in the kernel FIB (installed: {[bool(e.get('installed')) for e in chosen]})",
                )
            v.expect(
                hops == [str(node.ip)], f"{router}: {cidr} nexthop {hops} (want only {node.name} {node.ip})"
            )


def bgp_ecmp(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    vip = _vip(topo)
    prefix = ipaddress.IPv4Network(f"{vip}/32")
    want = _node_ips(topo)
    for router in _routers(topo):
        routes = _vtysh_json(probe, v, router, f"show ip route {prefix} json")
        if routes is not None:
            _, hops = frr_route_nexthops(routes, prefix)
            v.expect(
                sorted(hops) == sorted(want),
                f"{router}: FRR's RIB has {len(hops)} BGP nexthops for {prefix} {sorted(hops)} "
                f"(want {len(want)}, one per node: {sorted(want)})",
            )
        result = probe.node_exec(router, ["ip", "-j", "route", "show", str(prefix)])
        v.evidence.append(Evidence.of(f"kernel route to {prefix} on {router}", result))
        if not v.expect(result.ok, f"{router}: ip route show {prefix} ran"):
            continue

        def lookup(nhid: int, router: str = router) -> str:
            found = probe.node_exec(router, ["ip", "-j", "nexthop", "show", "id", str(nhid)])
            v.evidence.append(Evidence.of(f"nexthop object {nhid} on {router}", found))
            return found.stdout

        gateways = kernel_nexthops(result.stdout, lookup)
        v.expect(
            sorted(gateways) == sorted(want),
            f"{router}: the kernel FIB has {len(gateways)} nexthops for {prefix} {sorted(gateways)} "
            f"(want {len(want)}, one per node)",
        )


def bgp_ecmp_spread(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    router, vip = _router(topo), _vip(topo)
    policy = probe.node_exec(router, ["sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"])
    v.evidence.append(Evidence.of(f"multipath hash policy on {router}", policy))
    v.findings.append(
        f"note {router}: fib_multipath_hash_policy = {policy.stdout.strip() or '?'} (1 hashes on L4 ports)"
    )
    argv = [
        "python3",
        "-c",
        _SPREAD_SENDER,
        str(vip),
        str(SPREAD_PORT),
        str(SPREAD_FIRST_SOURCE_PORT),
        str(SPREAD_FLOWS),
    ]

    def send() -> CommandResult:
        return probe.node_exec(router, argv)

    bpf = f"udp and dst host {vip} and dst port {SPREAD_PORT}"
    nodes = [n.name for n in topo.nodes]
    seen, result = _capture_all(probe, ctx, v, "bgp.ecmp-spread", nodes, "eth0", bpf, send)
    v.evidence.append(Evidence.of(f"{SPREAD_FLOWS} UDP flows from {router} to {vip}:{SPREAD_PORT}", result))
    v.expect(
        result.ok,
        f"{router} sent {SPREAD_FLOWS} UDP flows (source ports {SPREAD_FIRST_SOURCE_PORT}+) to {vip}",
    )
    counts = Counter(
        {
            node: sum(1 for p in packets if p.inner_dst == str(vip) and p.inner_protocol == "udp")
            for node, packets in seen.items()
        }
    )
    reached = sorted(node for node, n in counts.items() if n)
    v.findings.append(f"note flows per node: {dict(sorted(counts.items()))} (total {sum(counts.values())})")
    v.expect(len(reached) >= 2, f"the flows reached {len(reached)} nodes {reached} (want >= 2)")


def bgp_transit(probe: Probe, ctx: Context, v: Verdict) -> None:
    """Each direction must cross a router; with several routers the nodes' multipath hash picks
    which, so every router is captured and each direction counts on whichever carried it."""
    topo = probe.topology
    routers = _routers(topo)
    a, c = topo.pod("pod-a"), topo.pod("pod-c")
    v.expect(a.node != c.node, f"pod-a and pod-c are on different nodes ({a.node}, {c.node})")
    bpf = f"icmp and host {a.ip} and host {c.ip}"
    seen, result = _capture_all(
        probe, ctx, v, "bgp.transit", routers, "eth0", bpf, lambda: ping(probe, a.name, c.ip)
    )
    summary = ping_fact(v, f"ping pod-a -> pod-c {c.ip}", result)
    v.expect(summary.all_answered, f"pod-a reached pod-c across nodes ({summary.loss_percent:g}% loss)")
    for label, src, dst in (("pod-a -> pod-c", a.ip, c.ip), ("pod-c -> pod-a", c.ip, a.ip)):
        carried = {
            router: sum(1 for p in seen.get(router, []) if (p.inner_src, p.inner_dst) == (str(src), str(dst)))
            for router in routers
        }
        crossed = sorted(r for r, n in carried.items() if n)
        v.expect(
            bool(crossed),
            f"{label} ({src} -> {dst}) crossed {', '.join(crossed) or 'no router'}: packets per router {carried}",
        )


BGP_CATALOGUE: tuple[Check, ...] = (
    Check(
        "bgp.sessions",
        BGP_STACKS,
        "every node peers with every FRR router",
        "vtysh `show bgp summary json`: every node IP is a peer in ipv4Unicast.peers, state Established",
        bgp_sessions,
        bgp_dependent=True,
    ),
    Check(
        "bgp.pod-cidrs",
        BGP_STACKS,
        "FRR learns each node's pod CIDR from that node",
        "`show ip route json`: each node's pod CIDR, protocol bgp, selected and installed, nexthop = that node's IP",
        bgp_pod_cidrs,
        bgp_dependent=True,
    ),
    Check(
        "bgp.ecmp",
        BGP_STACKS,
        "the Service VIP has one path per node",
        "FRR's RIB and the router's kernel FIB hold N nexthops for the VIP /32, one per node IP",
        bgp_ecmp,
        bgp_dependent=True,
    ),
    Check(
        "bgp.ecmp-spread",
        BGP_STACKS,
        "flows to the VIP really spread across nodes",
        f"{SPREAD_FLOWS} UDP flows (distinct source ports) from the router to the VIP are captured on >= 2 nodes' eth0 "
        "(fib_multipath_hash_policy=1 on the router)",
        bgp_ecmp_spread,
        bgp_dependent=True,
    ),
    Check(
        "bgp.transit",
        BGP_STACKS,
        "cross-node pod traffic goes through FRR",
        "pod-a pings pod-c with 0% loss and a capture on the router's eth0 sees the packets both ways between the pod IPs",
        bgp_transit,
        bgp_dependent=True,
        route_dependent=True,
    ),
)
