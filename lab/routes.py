"""Which routes each node gets where the lab (not Cilium) installs them.

static: every node routes each other node's pod CIDR via that node's underlay IP (what
autoDirectNodeRoutes would do), plus the extra `staticRoutes` of the config. bgp: every node
routes the pod supernet via the FRR router(s) — Cilium's BGP control plane advertises but
never installs routes. Lines are `ip route` syntax, sorted, one per destination, so a preview
diff of a route set reads as the routes that change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from lab.config import LabConfig
from lab.plan import AddressPlan


@dataclass(frozen=True)
class RouteTable:
    """Sorted route lines per node.

    A plain class on purpose: Pulumi walks dicts and lists inside an Output value by value on
    every `apply`, which made a 64-worker lab (4,160 route lines) slow to evaluate.
    """

    by_node: Mapping[str, tuple[str, ...]]

    def text(self, node: str) -> str:
        """One node's routes as the route set's input: one line per route."""
        return "\n".join(self.by_node[node])

    def as_text(self) -> dict[str, str]:
        return {node: self.text(node) for node in self.by_node}

    def declared(self) -> list[dict[str, str]]:
        """Single-next-hop routes as {node, dest, via} for the checks that look for them."""
        out = []
        for node, lines in self.by_node.items():
            for line in lines:
                words = line.split()
                if len(words) == 3 and words[1] == "via":
                    out.append({"node": node, "dest": words[0], "via": words[2]})
        return out


def route_line(dest: ipaddress.IPv4Network, vias: list[ipaddress.IPv4Address]) -> str:
    if len(vias) == 1:
        return f"{dest} via {vias[0]}"
    return " ".join([str(dest), *(f"nexthop via {v}" for v in vias)])


def _sorted_lines(routes: Mapping[ipaddress.IPv4Network, list[ipaddress.IPv4Address]]) -> tuple[str, ...]:
    return tuple(route_line(dest, routes[dest]) for dest in sorted(routes))


def static_routes(config: LabConfig, plan: AddressPlan, node_ips: Mapping[str, str]) -> RouteTable:
    """Per node: each remote pod CIDR via its node's IP, then the config's extra routes."""
    out: dict[str, tuple[str, ...]] = {}
    for node in plan.nodes:
        routes: dict[ipaddress.IPv4Network, list[ipaddress.IPv4Address]] = {
            other.pod_cidr: [ipaddress.IPv4Address(node_ips[other.name])]
            for other in plan.nodes
            if other.name != node.name and other.pod_cidr is not None
        }
        for extra in config.static_routes:
            if extra.node == node.name:
                routes[extra.dest] = [extra.via]
        out[node.name] = _sorted_lines(routes)
    return RouteTable(out)


def bgp_routes(config: LabConfig, plan: AddressPlan) -> RouteTable:
    """Per node: the pod supernet via every FRR router (ECMP across routers when there are several)."""
    vias = list(plan.router_ips)
    return RouteTable({node.name: (route_line(config.pod_cidr, vias),) for node in plan.nodes})
