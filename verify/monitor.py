"""Cilium's trace points as `cilium-dbg monitor --type trace` prints them, one event a line:

    -> overlay flow 0x0 , identity remote-node->health state unknown ifindex cilium_vxlan orig-ip 0.0.0.0: 10.244.1.99 -> 10.244.2.242 icmp EchoRequest

The arrow and word name the observation point (pkg/monitor/api: `-> overlay` is to-overlay,
`-> stack` to-stack, `-> network` to-network, `-> endpoint 42` to-endpoint, `<- endpoint 42`
from-endpoint, ...); after the colon comes the packet's summary (addresses, then the ICMP type or
ports, "icmp EchoRequest", "tcp SYN"). Lines of another shape (the monitor's banner, its notices) are not events and are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The observation point's text in a summary line -> the name Cilium's docs and Hubble use.
_POINTS = {
    "-> endpoint": "to-endpoint",
    "-> proxy": "to-proxy",
    "-> host": "to-host",
    "-> stack": "to-stack",
    "-> overlay": "to-overlay",
    "-> network": "to-network",
    "-> crypto": "to-crypto",
    "<- endpoint": "from-endpoint",
    "<- proxy": "from-proxy",
    "<- host": "from-host",
    "<- stack": "from-stack",
    "<- overlay": "from-overlay",
    "<- network": "from-network",
    "<- crypto": "from-crypto",
}
_EVENT = re.compile(
    r"^(?P<point>(?:->|<-) (?:endpoint|proxy|host|stack|overlay|network|crypto))\b.*?"
    r"\bflow (?P<flow>0x[0-9a-f]+)\b.*?"
    r"\bifindex (?P<ifname>\S+)"
    r".*?: (?P<src>\d+\.\d+\.\d+\.\d+)(?::\d+)? -> (?P<dst>\d+\.\d+\.\d+\.\d+)(?::\d+)?(?: (?P<what>.*))?$"
)


@dataclass(frozen=True)
class TraceEvent:
    point: str  # "to-overlay", "to-stack", "from-endpoint", ...
    ifname: str  # the device the agent names for the event's ifindex ("cilium_vxlan", "eth0", "0")
    src: str
    dst: str
    what: str  # "icmp EchoRequest", "icmp EchoReply", "tcp SYN", ...
    line: str  # the line as printed, for evidence


def parse_trace(text: str) -> list[TraceEvent]:
    """The trace events of a monitor's output, in order."""
    events = []
    for raw in text.splitlines():
        line = raw.strip()
        match = _EVENT.match(line)
        if match:
            events.append(
                TraceEvent(
                    point=_POINTS[match["point"]],
                    ifname=match["ifname"],
                    src=match["src"],
                    dst=match["dst"],
                    what=(match["what"] or "").strip(),
                    line=line,
                )
            )
    return events
