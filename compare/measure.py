"""One round of measurements of a running lab, through the same Probe the checks use.

Every measurement is taken between the lab's own probe pods: pod-a and pod-b share a node, pod-c
is on another. Throughput is iperf3 (TCP, pod-a the client), latency is ping; both on one node
and across nodes, each `samples` times. The rest is read once a round, as it does not move
between runs: the bytes a cross-node echo request takes on pod-a's node's wire, the path MTU, the
TTL and hops of the replies, and each node's routes by origin.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from compare import parsers
from verify.checks import largest_df_packet
from verify.parsers import ParseError
from verify.pcap import analyze
from verify.probe import CommandResult, Probe

IPERF_PORT = 5201
ICMP_IP_BYTES = 84  # a default ping: 56 bytes of data + ICMP 8 + IPv4 20
ETHERNET_BYTES = 14
LINUX_TTL = 64  # what a Linux pod sends with; each routing hop takes one off
PATHS = ("same node", "across nodes")

Progress = Callable[[str], None]


@dataclass
class Round:
    """What one round measured; a figure that failed says why in `errors`, never as a number."""

    throughput_bps: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    wire_bytes: int | None = None  # one cross-node echo request as pod-a's node's eth0 sends it
    path_mtu: int | None = None
    ttl: int | None = None  # of pod-c's replies as pod-a receives them
    routes: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> origin -> routes
    router_routes: dict[str, dict[str, int]] = field(default_factory=dict)  # bgp's FRR routers
    errors: list[str] = field(default_factory=list)


def _targets(probe: Probe) -> dict[str, tuple[str, ipaddress.IPv4Address]]:
    topo = probe.topology
    b, c = topo.pod("pod-b"), topo.pod("pod-c")
    return {"same node": (b.name, b.ip), "across nodes": (c.name, c.ip)}


IPERF_PIDFILE = "/tmp/cdl-iperf3.pid"  # noqa: S108 (inside the probe pod, which only the lab uses)


def _iperf_servers(probe: Probe, start: bool) -> None:
    """One iperf3 server per target pod, as a daemon for the round, stopped after it by the PID
    it wrote (only the process this started)."""
    for pod, _ in _targets(probe).values():
        if start:
            argv = ["iperf3", "-s", "-D", "-p", str(IPERF_PORT), "-I", IPERF_PIDFILE]
            started = probe.pod_exec(pod, argv, timeout=30)
            if not started.ok:
                raise OSError(
                    f"iperf3 server in {pod} did not start: {started.stderr.strip() or started.stdout}"
                )
        else:
            probe.pod_exec(pod, ["sh", "-c", 'kill "$(cat "$0")" && rm -f "$0"', IPERF_PIDFILE], timeout=30)


def iperf3_run(probe: Probe, dst: ipaddress.IPv4Address, seconds: int) -> float:
    """One TCP run from pod-a (bits/s received); a server still starting is asked again."""
    argv = ["iperf3", "-c", str(dst), "-p", str(IPERF_PORT), "-t", str(seconds), "-J"]
    last: CommandResult | None = None
    for _ in range(10):
        last = probe.pod_exec("pod-a", argv, timeout=seconds + 30)
        if "unable to connect" not in last.stdout + last.stderr:
            break
        time.sleep(0.5)
    assert last is not None
    return parsers.iperf3_bits_per_second(last.stdout or last.stderr)


def ping_run(probe: Probe, dst: ipaddress.IPv4Address, count: int) -> parsers.PingReplies:
    argv = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", str(dst)]
    result = probe.pod_exec("pod-a", argv, timeout=count * 0.2 + 30)
    return parsers.ping_replies(result.stdout + result.stderr)


def wire_bytes(probe: Probe, pcap: Path) -> int:
    """The frame length of pod-a's echo requests to pod-c on pod-a's node's eth0: the encapsulated
    frame in the tunnel modes, the packet itself natively."""
    topo = probe.topology
    a, c = topo.pod("pod-a"), topo.pod("pod-c")
    wire = f"udp port {topo.vxlan_port} or udp port {topo.geneve_port} or (host {a.ip} and host {c.ip})"
    path, _ = probe.capture(a.node, "eth0", wire, lambda: ping_run(probe, c.ip, 3), pcap, timeout=15.0)
    requests = [
        p.length  # on the wire: the record's original length
        for p in analyze(path, vxlan_port=topo.vxlan_port, geneve_port=topo.geneve_port)
        if (p.inner_src, p.inner_dst, p.icmp_type) == (str(a.ip), str(c.ip), 8)
    ]
    if not requests:
        raise ParseError(f"no echo request pod-a -> pod-c in {path}")
    return max(requests)


def routes_by_origin(probe: Probe, places: list[str]) -> dict[str, dict[str, int]]:
    """Each place's (node's or router's) main table, counted by origin."""
    counts: dict[str, dict[str, int]] = {}
    for place in places:
        result = probe.node_exec(place, ["ip", "-j", "route", "show"])
        counts[place] = parsers.route_origins(result.stdout)
    return counts


def measure_round(
    probe: Probe, artifacts: Path, samples: int, seconds: int, pings: int, say: Progress
) -> Round:
    """Every figure of one round; each measurement that fails is kept as an error and the rest go on."""
    got = Round()
    targets = _targets(probe)

    def step(what: str, fn: Callable[[], None]) -> None:
        started = time.monotonic()
        say(f"{what} ...")
        try:
            fn()
        except (ParseError, LookupError, OSError) as exc:
            got.errors.append(f"{what}: {exc}")
            say(f"{what}: FAILED ({exc})")
            return
        say(f"{what}: done in {time.monotonic() - started:.0f} s")

    def throughput() -> None:
        _iperf_servers(probe, start=True)
        try:
            for _ in range(samples):
                for path, (_, ip) in targets.items():
                    got.throughput_bps[path].append(iperf3_run(probe, ip, seconds))
        finally:
            _iperf_servers(probe, start=False)

    def latency() -> None:
        for _ in range(samples):
            for path, (_, ip) in targets.items():
                replies = ping_run(probe, ip, pings)
                got.latency_ms[path].append(replies.median_ms)
                if path == "across nodes":
                    got.ttl = min(replies.ttls)

    def wire() -> None:
        got.wire_bytes = wire_bytes(probe, artifacts / "wire.pcap")

    def mtu() -> None:
        c = probe.topology.pod("pod-c")
        got.path_mtu = largest_df_packet(probe, "pod-a", c.ip, high=probe.topology.underlay_mtu)
        if got.path_mtu is None:
            raise ParseError("not even a 1200-byte DF packet crossed from pod-a to pod-c")

    def routes() -> None:
        topo = probe.topology
        got.routes = routes_by_origin(probe, [n.name for n in topo.nodes])
        got.router_routes = routes_by_origin(
            probe, [r for r in topo.extra.get("routers", "").split(",") if r]
        )

    step(f"throughput, iperf3 {samples}x{seconds} s per path", throughput)
    step(f"latency, ping {samples}x{pings} per path", latency)
    step("bytes on the wire per packet (capture)", wire)
    step("path MTU (DF ping search)", mtu)
    step("routes per node", routes)
    return got
