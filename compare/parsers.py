"""What the comparison reads from the tools' own output: iperf3's JSON, ping's replies and a
node's routing table (a frame's length on the wire is verify.pcap's `PacketInfo.length`). Each
raises ParseError naming what was missing, so a measurement that could not be read is reported
as such, never as a zero."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass

from verify.parsers import ParseError, Route, parse_routes


def iperf3_bits_per_second(text: str) -> float:
    """The receiver's rate of one `iperf3 -c ... -J` run (bits/s): what arrived, not what was sent."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"iperf3 -J: not JSON ({exc}): {text.strip()[:200] or '(empty)'}") from exc
    if not isinstance(data, dict):
        raise ParseError(f"iperf3 -J: not an object: {text.strip()[:200]}")
    if data.get("error"):
        raise ParseError(f"iperf3: {data['error']}")
    received = data.get("end", {}).get("sum_received", {})
    rate = received.get("bits_per_second") if isinstance(received, dict) else None
    if not isinstance(rate, (int, float)) or rate <= 0:
        raise ParseError(f"iperf3 -J: no end.sum_received.bits_per_second: {str(data.get('end'))[:200]}")
    return float(rate)


_REPLY = re.compile(r"bytes from [\d.]+: icmp_seq=\d+ ttl=(\d+) time=([\d.]+) ms")


@dataclass(frozen=True)
class PingReplies:
    """The echo replies of one ping run: each one's round trip (ms) and the TTL it arrived with."""

    rtts_ms: tuple[float, ...]
    ttls: tuple[int, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.rtts_ms)


def ping_replies(text: str) -> PingReplies:
    """iputils ping's per-reply lines (`64 bytes from 10.10.0.40: icmp_seq=1 ttl=62 time=0.21 ms`)."""
    found = _REPLY.findall(text)
    if not found:
        raise ParseError(f"ping: no replies in output: {text.strip()[:200] or '(empty)'}")
    return PingReplies(tuple(float(t) for _, t in found), tuple(int(ttl) for ttl, _ in found))


# Where a route in a node's main table comes from, as the report groups them.
ORIGINS = ("kernel", "Cilium", "the lab", "BGP", "Docker")


def route_origin(route: Route) -> str:
    """One route's origin, from the protocol and device the kernel keeps with it:

    - BGP: `proto bgp` (FRR's zebra installs what bgpd chose);
    - Cilium: on a `cilium_*` device or a pod's `lxc*` (the per-endpoint routes of multi-pool),
      or `proto kernel` with a gateway (the kernel adds only connected routes, which have none;
      autoDirectNodeRoutes installs `<remote /27> via <node IP>` that way);
    - kernel: the connected routes of the node's own addresses (`proto kernel scope link`);
    - Docker: the default route the container was born with;
    - the lab: what the lab's route sets and bgp's route via the router add (`ip route replace`,
      `proto boot`), or any other route added by hand.
    """
    if route.protocol == "bgp":
        return "BGP"
    if (route.dev or "").startswith(("cilium_", "lxc")):
        return "Cilium"
    if route.protocol == "kernel":
        return "Cilium" if route.gateway or route.nexthops else "kernel"
    if route.dst == "default":
        return "Docker"
    return "the lab"


def route_origins(text: str) -> dict[str, int]:
    """`ip -j route show` of one node: how many routes of each origin (every origin, 0 if none)."""
    counts = dict.fromkeys(ORIGINS, 0)
    for route in parse_routes(text):
        counts[route_origin(route)] += 1
    return counts
