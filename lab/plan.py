"""The address plan: everything about addresses that can be known before `pulumi up`.

Derived only from validated config (supernet, mask, node order), so a preview shows every pod
CIDR, route and advertisement that a change would touch. Node IPs are the one thing Docker
decides at create time; they arrive later as an output of the cluster.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from lab.config import PROJECT, LabConfig

LABEL_STACK = f"{PROJECT}.stack"
LABEL_CLUSTER = f"{PROJECT}.cluster"
UNDERLAY_MTU = 1500


@dataclass(frozen=True)
class PlannedNode:
    name: str  # kind's container name, also the Kubernetes node name
    index: int
    pod_cidr: ipaddress.IPv4Network | None  # None where Cilium's operator allocates (multi-pool)
    asn: int | None  # the node's BGP ASN in mode bgp


@dataclass(frozen=True)
class AddressPlan:
    network_name: str
    underlay: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    node_range: ipaddress.IPv4Network  # Docker's ip_range: where kind nodes get their addresses
    router_ips: tuple[ipaddress.IPv4Address, ...]
    nodes: tuple[PlannedNode, ...]
    labels: tuple[tuple[str, str], ...]
    router_names: tuple[str, ...] = ()  # the FRR containers, in router order
    vip: ipaddress.IPv4Address | None = None  # the echo Service's LoadBalancer IP (bgp)

    @property
    def control_plane(self) -> PlannedNode:
        return self.nodes[0]

    @property
    def pod_cidrs(self) -> dict[str, str]:
        """Pinned pod CIDR per node name (empty in multi-pool mode)."""
        return {n.name: str(n.pod_cidr) for n in self.nodes if n.pod_cidr is not None}


def router_name(cluster: str, index: int) -> str:
    """An FRR router's container name and hostname (0-based index)."""
    return f"{cluster}-frr{index}"


def plan(config: LabConfig) -> AddressPlan:
    lower, upper = config.underlay.subnets(prefixlen_diff=1)
    routers = config.bgp.routers if config.bgp else 0
    # Routers take fixed addresses from the top of the upper half: .254, .253, ... in a /24.
    router_ips = tuple(upper.broadcast_address - i for i in range(1, routers + 1))

    blocks = list(config.pod_cidr.subnets(new_prefix=config.pod_mask)) if config.facts.pins_pod_cidrs else []
    nodes = tuple(
        PlannedNode(
            name=name,
            index=i,
            pod_cidr=blocks[i] if blocks else None,
            asn=config.bgp.node_asns[i] if config.bgp else None,
        )
        for i, name in enumerate(config.node_names)
    )
    vip = next(config.bgp.vip_cidr.hosts(), config.bgp.vip_cidr.network_address) if config.bgp else None
    return AddressPlan(
        router_names=tuple(router_name(config.cluster_name, i) for i in range(routers)),
        vip=vip,
        network_name=f"cdl-{config.cluster_name}",
        underlay=config.underlay,
        gateway=config.underlay.network_address + 1,
        node_range=lower,
        router_ips=router_ips,
        nodes=nodes,
        labels=((LABEL_STACK, config.stack), (LABEL_CLUSTER, config.cluster_name)),
    )
