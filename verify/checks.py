"""The checks catalogue: every claim of the write-up as a named unit that PASSes or FAILs with evidence.

A check only talks to a lab through the Probe interface, so the same code judges a real kind
lab and the network-namespace replica. Each verdict lists the facts it found (each marked as
holding or not) and keeps the commands and captures that produced them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from verify import parsers
from verify.monitor import parse_trace as monitor_parse
from verify.pcap import PacketInfo, analyze
from verify.probe import CommandResult, PodInfo, Probe, Topology

T = TypeVar("T")

ALL_STACKS = ("overlay", "geneve", "native-auto", "static", "bgp")
NATIVE_STACKS = ("native-auto", "static", "bgp")
TUNNEL_STACKS = ("overlay", "geneve")
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
GENEVE_MIN_OVERHEAD = 50  # as VXLAN, plus any TLV options


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    FAIL = "FAIL"


@dataclass(frozen=True)
class Evidence:
    """One command (or capture) a verdict rests on, with what it printed."""

    label: str
    command: str
    output: str
    artifact: str | None = None  # a pcap a person can open in Wireshark

    @classmethod
    def of(cls, label: str, result: CommandResult, limit: int = 4000) -> Evidence:
        text = result.stdout if result.stdout.strip() else result.stderr
        if result.stdout.strip() and result.stderr.strip():
            text = f"{result.stdout}\n[stderr]\n{result.stderr}"
        return cls(label, result.describe(), text[:limit])


@dataclass
class Verdict:
    check: str
    status: Status = Status.PASS
    findings: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def expect(self, holds: bool, fact: str) -> bool:
        """Record a fact the pass rule needs; any that does not hold makes the check FAIL."""
        self.findings.append(f"{'ok  ' if holds else 'FAIL'} {fact}")
        if not holds:
            self.status = Status.FAIL
        return holds

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS


@dataclass(frozen=True)
class Context:
    """Where a run keeps its artifacts (artifacts/<stack>/)."""

    artifacts: Path
    mode: str

    def pcap(self, check: str, suffix: str = "") -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self.artifacts / f"{check}{suffix}.pcap"


CheckFn = Callable[[Probe, Context, Verdict], None]


@dataclass(frozen=True)
class Check:
    id: str
    stacks: tuple[str, ...]
    claim: str
    pass_rule: str
    run_fn: CheckFn
    # Runs before the lab's static routes exist (the route sets wait for it; the rest wait for them).
    before_routes: bool = False
    # Its claim rests on the lab's own routes (the static route sets, bgp's route via FRR): it runs
    # again when they change. The other checks see the lab without them and are left alone.
    route_dependent: bool = False
    # Its claim rests on what the BGP routers and Cilium's BGP resources are told (routers, ASNs,
    # maximum paths): it runs again when that changes, as it does when a route set changes.
    bgp_dependent: bool = False
    # Its evidence is read from Cilium's agent itself (its monitor): only a real lab has one, so the
    # replica leaves the check out, saying so (its fast-tier worlds are recorded from real labs).
    needs_agent: bool = False
    # How long a real lab may take to settle into the claim (BGP sessions, agents, routes):
    # the kind runner retries a FAIL within this budget. The replica is built settled (0).
    settle_seconds: float = 60.0

    def run(self, probe: Probe, ctx: Context, settle_seconds: float = 0.0, pause: float = 3.0) -> Verdict:
        """Collect evidence and judge; on FAIL, try again until `settle_seconds` have passed."""
        deadline = time.monotonic() + settle_seconds
        attempt = 1
        while True:
            verdict = self._attempt(probe, ctx)
            if verdict.passed or time.monotonic() + pause > deadline:
                break
            attempt += 1
            time.sleep(pause)
        if attempt > 1:
            verdict.findings.append(f"note {attempt} attempts within {settle_seconds:g}s before this verdict")
        return verdict

    def _attempt(self, probe: Probe, ctx: Context) -> Verdict:
        verdict = Verdict(self.id)
        try:
            self.run_fn(probe, ctx, verdict)
        except (parsers.ParseError, LookupError, OSError) as exc:
            verdict.expect(False, f"could not collect the evidence: {exc}")
        if not verdict.findings:
            verdict.expect(False, "the check collected no facts")
        return verdict

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "stacks": list(self.stacks), "claim": self.claim, "pass_rule": self.pass_rule}


# --- shared steps -----------------------------------------------------------------------------


def _pods(topo: Topology) -> tuple[PodInfo, PodInfo, PodInfo]:
    """pod-a and pod-b share a node; pod-c is on another node (the lab's test workloads)."""
    return topo.pod("pod-a"), topo.pod("pod-b"), topo.pod("pod-c")


def ping(
    probe: Probe, pod: str, dst: ipaddress.IPv4Address, count: int = 3, extra: Sequence[str] = ()
) -> CommandResult:
    return probe.pod_exec(
        pod, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", *extra, str(dst)], timeout=30
    )


def ping_fact(v: Verdict, label: str, result: CommandResult) -> parsers.PingSummary:
    v.evidence.append(Evidence.of(label, result))
    return parsers.parse_ping(result.stdout + result.stderr)


def _routes(probe: Probe, node: str, v: Verdict) -> list[parsers.Route]:
    result = probe.node_exec(node, ["ip", "-j", "route", "show"])
    v.evidence.append(Evidence.of(f"routes on {node}", result))
    return parsers.parse_routes(result.stdout)


def _cilium_host_ip(probe: Probe, node: str, v: Verdict) -> ipaddress.IPv4Interface | None:
    result = probe.node_exec(node, ["ip", "-j", "addr", "show", "dev", "cilium_host"])
    v.evidence.append(Evidence.of(f"cilium_host on {node}", result))
    if not result.ok:
        return None
    addrs = parsers.parse_addresses(result.stdout)
    return addrs[0].interface if addrs else None


def _links(probe: Probe, node: str, v: Verdict) -> list[parsers.Link]:
    result = probe.node_exec(node, ["ip", "-j", "-d", "link", "show"])
    v.evidence.append(Evidence.of(f"links on {node}", result, limit=1500))
    return parsers.parse_links(result.stdout)


def capture_packets(
    probe: Probe,
    ctx: Context,
    v: Verdict,
    check: str,
    node: str,
    iface: str,
    bpf: str,
    traffic: Callable[[], T],
    timeout: float = 10.0,
) -> tuple[list[PacketInfo], T]:
    """Capture on a node interface while `traffic` runs, keep the pcap as evidence, and analyse it.

    `traffic` may itself capture elsewhere (nested captures see the same packets on two devices).
    """
    out = ctx.pcap(check, f"-{node}-{iface}")
    path, result = probe.capture(node, iface, bpf, traffic, out, timeout=timeout)
    packets = analyze(path, vxlan_port=probe.topology.vxlan_port, geneve_port=probe.topology.geneve_port)
    v.evidence.append(
        Evidence(
            f"capture on {node} {iface} ({bpf})",
            f"tcpdump -i {iface} {bpf}",
            f"{len(packets)} packets",
            str(path),
        )
    )
    return packets, result


def _between(p: PacketInfo, a: ipaddress.IPv4Address, b: ipaddress.IPv4Address) -> bool:
    return {p.inner_src, p.inner_dst} == {str(a), str(b)}


# --- the catalogue ----------------------------------------------------------------------------


def intranode_ping(probe: Probe, ctx: Context, v: Verdict) -> None:
    a, b, _ = _pods(probe.topology)
    v.expect(a.node == b.node, f"pod-a and pod-b are on one node ({a.node}, {b.node})")
    summary = ping_fact(v, f"ping pod-a -> pod-b {b.ip}", ping(probe, a.name, b.ip))
    v.expect(
        summary.all_answered,
        f"{summary.received}/{summary.transmitted} answered ({summary.loss_percent:g}% loss)",
    )


def intranode_path(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    a, b, _ = _pods(topo)
    node = a.node
    v.expect(a.node == b.node, f"pod-a and pod-b are on one node ({a.node}, {b.node})")
    tunnel_dev = "cilium_geneve" if topo.mode == "geneve" else "cilium_vxlan"
    pair = f"host {a.ip} and host {b.ip}"
    wire = f"udp port {topo.vxlan_port} or udp port {topo.geneve_port} or ({pair})"

    def traffic() -> CommandResult:
        return ping(probe, a.name, b.ip)

    def on_tunnel() -> tuple[list[PacketInfo], CommandResult]:
        return capture_packets(probe, ctx, v, "intranode.path", node, tunnel_dev, pair, traffic)

    eth0_packets, (tunnel_packets, ping_result) = capture_packets(
        probe, ctx, v, "intranode.path", node, "eth0", wire, on_tunnel, timeout=15.0
    )
    summary = ping_fact(v, f"ping pod-a -> pod-b {b.ip}", ping_result)
    v.expect(summary.all_answered, f"pod-a reached pod-b ({summary.loss_percent:g}% loss)")
    on_wire = [p for p in eth0_packets if _between(p, a.ip, b.ip)]
    v.expect(not on_wire, f"eth0 on {node} saw {len(on_wire)} packets between pod-a and pod-b (want 0)")
    on_tun = [p for p in tunnel_packets if _between(p, a.ip, b.ip)]
    v.expect(not on_tun, f"{tunnel_dev} on {node} saw {len(on_tun)} packets between pod-a and pod-b (want 0)")
    for pod in (a, b):
        result = probe.node_exec(node, ["ip", "-j", "route", "get", str(pod.ip)])
        v.evidence.append(Evidence.of(f"route to {pod.name} on {node}", result))
        dev = (parsers.parse_routes(result.stdout) or [parsers.Route("", None, None, None, None)])[
            0
        ].dev or ""
        v.expect(
            dev.startswith("lxc") or dev == "cilium_host",
            f"{node} reaches {pod.name} {pod.ip} via dev {dev or '?'} (want lxc* or cilium_host)",
        )


# (device name or prefix*, direction, program): where Cilium hooks its programs (the write-up's bpftool table).
_HOOKS: tuple[tuple[str, str, str], ...] = (
    ("lxc*", "ingress", "cil_from_container"),
    ("cilium_net", "ingress", "cil_to_host"),
    ("cilium_host", "ingress", "cil_to_host"),
    ("cilium_host", "egress", "cil_from_host"),
)


def _matches(device: str, pattern: str) -> bool:
    return device.startswith(pattern[:-1]) if pattern.endswith("*") else device == pattern


def bpf_hooks(probe: Probe, ctx: Context, v: Verdict) -> None:
    for node in probe.topology.nodes:
        result = probe.node_exec(node.name, ["bpftool", "-j", "net", "show"])
        v.evidence.append(Evidence.of(f"bpftool net show on {node.name}", result))
        if not v.expect(result.ok, f"bpftool ran on {node.name}"):
            continue
        attached = parsers.parse_bpf_net(result.stdout)
        devices = [link.ifname for link in _links(probe, node.name, v)]
        for pattern, direction, program in _HOOKS:
            targets = [d for d in devices if _matches(d, pattern)]
            v.expect(bool(targets), f"{node.name}: {pattern} exists")
            for dev in targets:
                found = any(
                    a.device == dev and a.direction == direction and a.program == program for a in attached
                )
                v.expect(found, f"{node.name}: {program} on {dev} {direction}")


def cilium_host(probe: Probe, ctx: Context, v: Verdict) -> None:
    for node in probe.topology.nodes:
        iface = _cilium_host_ip(probe, node.name, v)
        if not v.expect(iface is not None, f"{node.name}: cilium_host has an IPv4 address"):
            continue
        assert iface is not None
        v.expect(iface.network.prefixlen == 32, f"{node.name}: cilium_host {iface} is a /32")
        if v.expect(node.pod_cidr is not None, f"{node.name}: pod CIDR known"):
            assert node.pod_cidr is not None
            v.expect(
                iface.ip in node.pod_cidr,
                f"{node.name}: {iface.ip} is inside the node's pod CIDR {node.pod_cidr}",
            )


def overlay_routes(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    for node in topo.nodes:
        router = _cilium_host_ip(probe, node.name, v)
        if not v.expect(router is not None, f"{node.name}: cilium_host router IP known"):
            continue
        assert router is not None
        routes = _routes(probe, node.name, v)
        for other in topo.nodes:
            if other.name == node.name:
                continue
            if not v.expect(other.pod_cidr is not None, f"{other.name}: pod CIDR known"):
                continue
            assert other.pod_cidr is not None
            r = parsers.route_to(routes, other.pod_cidr)
            if not v.expect(r is not None, f"{node.name}: a route to {other.pod_cidr} exists"):
                continue
            assert r is not None
            have = f"(have: {r.line()})"
            v.expect(r.dev == "cilium_host", f"{node.name}: {other.pod_cidr} dev cilium_host {have}")
            v.expect(r.gateway == str(router.ip), f"{node.name}: {other.pod_cidr} via {router.ip} {have}")


def overlay_device(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    want, kind, port = (
        ("cilium_geneve", "geneve", topo.geneve_port)
        if topo.mode == "geneve"
        else ("cilium_vxlan", "vxlan", topo.vxlan_port)
    )
    for node in topo.nodes:
        links = {link.ifname: link for link in _links(probe, node.name, v)}
        dev = links.get(want)
        if not v.expect(dev is not None, f"{node.name}: {want} exists"):
            continue
        assert dev is not None
        v.expect(dev.kind == kind, f"{node.name}: {want} is a {kind} device (is {dev.kind})")
        v.expect(
            dev.data.get("port") == port, f"{node.name}: {want} dstport {port} (is {dev.data.get('port')})"
        )


def judge_encapsulated(
    v: Verdict,
    packets: list[PacketInfo],
    encapsulation: str,
    src_pod: ipaddress.IPv4Address,
    dst_pod: ipaddress.IPv4Address,
    node_ips: set[str],
) -> None:
    """The overlay.capture pass rule on analysed packets (also used on crafted Geneve pcaps)."""
    tunneled = [p for p in packets if p.encapsulation == encapsulation and _between(p, src_pod, dst_pod)]
    v.expect(
        bool(tunneled), f"{len(tunneled)} {encapsulation} packets carry pod traffic {src_pod} <-> {dst_pod}"
    )
    if not tunneled:
        return
    v.expect(
        all(p.inner_protocol == "icmp" for p in tunneled),
        f"inner protocol is ICMP ({sorted({p.inner_protocol or '?' for p in tunneled})})",
    )
    v.expect(
        all({p.outer_src, p.outer_dst} <= node_ips for p in tunneled),
        f"outer addresses are node IPs ({sorted({f'{p.outer_src}>{p.outer_dst}' for p in tunneled})})",
    )
    v.expect(
        all(p.vni for p in tunneled),
        f"VNI is non-zero (the source identity): {sorted({p.vni or 0 for p in tunneled})}",
    )
    raw = [p for p in packets if p.encapsulation == "none" and _between(p, src_pod, dst_pod)]
    v.expect(not raw, f"{len(raw)} pod packets travel unencapsulated (want 0)")


def overlay_capture(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    a, _, c = _pods(topo)
    encapsulation = "geneve" if topo.mode == "geneve" else "vxlan"
    port = topo.geneve_port if encapsulation == "geneve" else topo.vxlan_port
    bpf = f"udp port {port} or (host {a.ip} and host {c.ip})"
    packets, result = capture_packets(
        probe, ctx, v, "overlay.capture", a.node, "eth0", bpf, lambda: ping(probe, a.name, c.ip)
    )
    summary = ping_fact(v, f"ping pod-a -> pod-c {c.ip}", result)
    v.expect(summary.all_answered, f"pod-a reached pod-c across nodes ({summary.loss_percent:g}% loss)")
    judge_encapsulated(v, packets, encapsulation, a.ip, c.ip, {str(n.ip) for n in topo.nodes})


def native_no_tunnel(probe: Probe, ctx: Context, v: Verdict) -> None:
    for node in probe.topology.nodes:
        names = {link.ifname for link in _links(probe, node.name, v)}
        for dev in ("cilium_vxlan", "cilium_geneve"):
            v.expect(dev not in names, f"{node.name}: no {dev}")


def native_routes(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    for node in topo.nodes:
        routes = _routes(probe, node.name, v)
        for other in topo.nodes:
            if other.name == node.name:
                continue
            if not v.expect(other.pod_cidr is not None, f"{other.name}: pod CIDR known"):
                continue
            assert other.pod_cidr is not None
            r = parsers.route_to(routes, other.pod_cidr)
            if not v.expect(r is not None, f"{node.name}: a route to {other.pod_cidr} exists"):
                continue
            assert r is not None
            have = f"(have: {r.line()})"
            v.expect(r.gateway == str(other.ip), f"{node.name}: {other.pod_cidr} via {other.ip} {have}")
            v.expect(r.dev == "eth0", f"{node.name}: {other.pod_cidr} dev eth0 {have}")
            v.expect(r.protocol == "kernel", f"{node.name}: {other.pod_cidr} proto kernel {have}")


def native_pools(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    pool = ipaddress.IPv4Network(topo.extra.get("pool_cidr", "10.10.0.0/16"))
    mask = int(topo.extra.get("pool_mask", "27"))
    result = probe.kube_get("ciliumnodes")
    v.evidence.append(Evidence.of("CiliumNodes", result))
    items = {i["metadata"]["name"]: i for i in parsers.parse_kube_list(result.stdout)}
    seen: list[ipaddress.IPv4Network] = []
    for node in topo.nodes:
        if not v.expect(node.name in items, f"{node.name}: has a CiliumNode"):
            continue
        allocated = parsers.parse_ciliumnode_pools(items[node.name]).get("default", [])
        v.expect(bool(allocated), f"{node.name}: pool default allocated {[str(c) for c in allocated]}")
        for cidr in allocated:
            v.expect(cidr.prefixlen == mask, f"{node.name}: {cidr} is a /{mask}")
            v.expect(cidr.subnet_of(pool), f"{node.name}: {cidr} is inside the pool {pool}")
            v.expect(
                not any(cidr.overlaps(s) for s in seen), f"{node.name}: {cidr} overlaps no other node's block"
            )
            seen.append(cidr)


def native_capture(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    a, _, c = _pods(topo)
    bpf = f"udp port {topo.vxlan_port} or udp port {topo.geneve_port} or (host {a.ip} and host {c.ip})"
    packets, result = capture_packets(
        probe, ctx, v, "native.capture", a.node, "eth0", bpf, lambda: ping(probe, a.name, c.ip)
    )
    summary = ping_fact(v, f"ping pod-a -> pod-c {c.ip}", result)
    v.expect(summary.all_answered, f"pod-a reached pod-c across nodes ({summary.loss_percent:g}% loss)")
    raw = [
        p
        for p in packets
        if p.encapsulation == "none" and _between(p, a.ip, c.ip) and p.inner_protocol == "icmp"
    ]
    v.expect(bool(raw), f"{len(raw)} raw ICMP packets between pod IPs on eth0")
    tunneled = [p for p in packets if p.encapsulation != "none"]
    v.expect(not tunneled, f"{len(tunneled)} VXLAN/Geneve packets on eth0 (want 0)")


def static_fails_without_routes(probe: Probe, ctx: Context, v: Verdict) -> None:
    a, _, c = _pods(probe.topology)
    summary = ping_fact(v, f"ping pod-a -> pod-c {c.ip} (no routes yet)", ping(probe, a.name, c.ip, count=2))
    v.expect(
        summary.received == 0, f"{summary.received}/{summary.transmitted} answered (want none: 100% loss)"
    )
    if summary.errors:
        v.findings.append(f"note the kernel's answer: {', '.join(summary.errors)}")


def static_routes(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    if not v.expect(bool(topo.routes), f"{len(topo.routes)} routes are declared"):
        return
    by_node: dict[str, list[parsers.Route]] = {}
    for declared in topo.routes:
        if declared.node not in by_node:
            by_node[declared.node] = _routes(probe, declared.node, v)
        r = parsers.route_to(by_node[declared.node], declared.dest)
        if not v.expect(r is not None, f"{declared.node}: a route to {declared.dest} exists"):
            continue
        assert r is not None
        v.expect(
            r.gateway == str(declared.via),
            f"{declared.node}: {declared.dest} via {declared.via} (have: {r.line()})",
        )


def static_ping(probe: Probe, ctx: Context, v: Verdict) -> None:
    a, _, c = _pods(probe.topology)
    summary = ping_fact(v, f"ping pod-a -> pod-c {c.ip}", ping(probe, a.name, c.ip))
    v.expect(
        summary.all_answered,
        f"{summary.received}/{summary.transmitted} answered ({summary.loss_percent:g}% loss)",
    )
    v.expect(
        bool(summary.ttls) and set(summary.ttls) == {62},
        f"TTL {sorted(set(summary.ttls))} (want 62: two routed hops)",
    )


def _df_ping_ok(probe: Probe, pod: str, dst: ipaddress.IPv4Address, size: int) -> bool:
    result = probe.pod_exec(
        pod, ["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", str(size - 28), str(dst)]
    )
    try:
        return parsers.parse_ping(result.stdout + result.stderr).received > 0
    except parsers.ParseError:
        return False


def largest_df_packet(
    probe: Probe, pod: str, dst: ipaddress.IPv4Address, low: int = 1200, high: int = 9000
) -> int | None:
    """Binary search for the largest IP packet (bytes) that crosses with DF set."""
    if not _df_ping_ok(probe, pod, dst, low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if _df_ping_ok(probe, pod, dst, mid):
            low = mid
        else:
            high = mid - 1
    return low


def path_mtu(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    a, _, c = _pods(topo)
    mtu = topo.underlay_mtu
    largest = largest_df_packet(probe, a.name, c.ip, high=mtu)
    v.evidence.append(
        Evidence(
            f"largest DF packet pod-a -> pod-c {c.ip}",
            f"ping -M do -s <size-28> {c.ip} (binary search)",
            f"{largest} bytes",
        )
    )
    if not v.expect(
        largest is not None, f"a 1200-byte DF packet crosses from pod-a to pod-c (largest: {largest})"
    ):
        return
    assert largest is not None
    if topo.mode == "overlay":
        v.expect(
            largest == mtu - VXLAN_OVERHEAD,
            f"largest DF packet {largest} = underlay MTU {mtu} - {VXLAN_OVERHEAD} (VXLAN)",
        )
    elif topo.mode == "geneve":
        v.expect(
            largest <= mtu - GENEVE_MIN_OVERHEAD,
            f"largest DF packet {largest} <= {mtu} - {GENEVE_MIN_OVERHEAD} (Geneve)",
        )
    else:
        v.expect(
            largest == mtu, f"largest DF packet {largest} = underlay MTU {mtu} (native: no encapsulation)"
        )


# Where a native mode hands a cross-node packet on: to the host's stack (legacy host routing) or
# straight to the device (BPF host routing, bpf_redirect_neigh): never into the tunnel.
NATIVE_HANDOFFS = ("to-stack", "to-network")


def datapath_trace(probe: Probe, ctx: Context, v: Verdict) -> None:
    topo = probe.topology
    a, _, c = _pods(topo)
    v.expect(a.node != c.node, f"pod-a and pod-c are on two nodes ({a.node}, {c.node})")
    monitor, ping_result = probe.trace(a.node, lambda: ping(probe, a.name, c.ip, count=5))
    summary = ping_fact(v, f"ping pod-a -> pod-c {c.ip}", ping_result)
    events = monitor_parse(monitor.stdout)
    between = [e for e in events if {e.src, e.dst} == {str(a.ip), str(c.ip)}]
    kept = ctx.artifacts / f"datapath.trace-{a.node}.txt"  # the whole event stream, to read at leisure
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    kept.write_text(monitor.stdout)
    v.evidence.append(
        Evidence(
            f"cilium-dbg monitor --type trace on {a.node}: the events between pod-a and pod-c",
            monitor.describe(),
            "\n".join(e.line for e in between) + f"\n({len(events) - len(between)} other events left out)",
            str(kept),
        )
    )
    v.expect(summary.all_answered, f"pod-a reached pod-c ({summary.loss_percent:g}% loss)")
    requests = [
        e for e in between if (e.src, e.dst) == (str(a.ip), str(c.ip)) and e.what.endswith("EchoRequest")
    ]
    points = sorted({e.point for e in requests})
    v.expect(
        bool(requests),
        f"{a.node}'s agent traced pod-a's echo requests to pod-c (at: {', '.join(points) or 'none'})",
    )
    if topo.mode in TUNNEL_STACKS:
        v.expect(
            "to-overlay" in points, f"an echo request to pod-c traced at to-overlay on {a.node} ({topo.mode})"
        )
    else:
        handed = [p for p in points if p in NATIVE_HANDOFFS]
        v.expect(
            bool(handed),
            f"an echo request to pod-c traced at {' or '.join(NATIVE_HANDOFFS)} on {a.node} (native: "
            f"handed to the stack or straight to the device)",
        )
        v.expect(
            "to-overlay" not in points, f"no echo request to pod-c traced at to-overlay on {a.node} (native)"
        )


# The datapath claims; verify.catalogue adds the BGP ones and is what callers use.
DATAPATH_CHECKS: tuple[Check, ...] = (
    Check(
        "intranode.ping",
        ALL_STACKS,
        "pods on one node reach each other",
        "pod-a pings pod-b with 0% loss",
        intranode_ping,
    ),
    Check(
        "intranode.path",
        ("overlay",),
        "intranode traffic is eth0 -> lxc(pod-a) -> cil_from_container -> lxc(pod-b) -> eth0, never the tunnel",
        "pod-a and pod-b on one node, ping 0% loss; captures on the tunnel device and eth0 see none of pod-a<->pod-b; "
        "the node routes both pods via lxc* or cilium_host",
        intranode_path,
    ),
    Check(
        "datapath.bpf-hooks",
        ALL_STACKS,
        "eBPF programs sit on the host side of every veth",
        "bpftool net show: cil_from_container on every lxc* ingress; cil_to_host on cilium_net and cilium_host ingress; "
        "cil_from_host on cilium_host egress (tcx or tc form)",
        bpf_hooks,
    ),
    Check(
        "datapath.cilium-host",
        ALL_STACKS,
        "cilium_host holds the node's router IP",
        "an IPv4 /32 on cilium_host, inside the node's (known) pod CIDR",
        cilium_host,
    ),
    Check(
        "overlay.routes",
        TUNNEL_STACKS,
        "remote pod CIDRs point at cilium_host",
        "every remote pod CIDR is `via <cilium_host IP> dev cilium_host`",
        overlay_routes,
    ),
    Check(
        "overlay.device",
        TUNNEL_STACKS,
        "a tunnel device exists",
        "cilium_vxlan with dstport 8472 (overlay) / cilium_geneve with dstport 6081 (geneve)",
        overlay_device,
    ),
    Check(
        "overlay.capture",
        TUNNEL_STACKS,
        "cross-node pod traffic is encapsulated",
        "ping 0% loss; UDP 8472 (VXLAN) / 6081 (Geneve) between node IPs, inner ICMP between the pod IPs, VNI non-zero, "
        "no raw pod packets",
        overlay_capture,
    ),
    Check(
        "native.no-tunnel",
        NATIVE_STACKS,
        "no tunnel device",
        "neither cilium_vxlan nor cilium_geneve exists",
        native_no_tunnel,
    ),
    Check(
        "native.routes",
        ("native-auto",),
        "remote pod CIDRs are routed via node IPs",
        "each remote /27 is `via <node IP> dev eth0 proto kernel`",
        native_routes,
    ),
    Check(
        "native.pools",
        ("native-auto",),
        "multi-pool allocates a /27 per node from 10.10.0.0/16",
        "CiliumNode spec.ipam.pools.allocated: pool default, one non-overlapping /27 of the pool per node",
        native_pools,
    ),
    Check(
        "native.capture",
        ("native-auto", "static"),
        "pod IPs are raw on the wire",
        "ping 0% loss; raw ICMP between the pod IPs on eth0, no UDP 8472/6081",
        native_capture,
    ),
    Check(
        "static.fails-without-routes",
        ("static",),
        "no routes, no connectivity",
        "cross-node ping has 100% loss before the route set is applied",
        static_fails_without_routes,
        before_routes=True,
        settle_seconds=0.0,  # a claim of absence: retrying until it holds would prove nothing
    ),
    Check(
        "static.routes",
        ("static",),
        "the declared routes are installed",
        "every declared route is present on its node",
        static_routes,
        route_dependent=True,
    ),
    Check(
        "static.ping",
        ("static",),
        "with routes, cross-node pods reach each other",
        "0% loss, TTL 62 as in the write-up",
        static_ping,
        route_dependent=True,
    ),
    Check(
        "datapath.trace",
        ALL_STACKS,
        "Cilium's own trace points show the mode's path for a cross-node packet",
        "while pod-a pings pod-c (another node) with 0% loss, `cilium-dbg monitor --type trace` on pod-a's node "
        "traces its echo requests: at to-overlay in the tunnel modes; natively at to-stack or to-network, and "
        "never at to-overlay",
        datapath_trace,
        needs_agent=True,
    ),
    Check(
        "path.mtu",
        ALL_STACKS,
        "encapsulation costs bytes",
        "largest DF packet pod->pod across nodes: underlay MTU - 50 with VXLAN, <= MTU - 50 with Geneve, the full MTU natively",
        path_mtu,
    ),
)
