"""The five routing modes of the lab and the facts that follow from each one.

A mode decides everything else about a stack (Helm values, IPAM, which checks run), so the
per-mode facts live here, in one table, instead of being re-derived with ``if`` chains.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    OVERLAY = "overlay"
    GENEVE = "geneve"
    NATIVE_AUTO = "native-auto"
    STATIC = "static"
    BGP = "bgp"


class Ipam(StrEnum):
    """How pod CIDRs are handed to nodes."""

    # The lab writes each node's spec.podCIDR itself, from the address plan, so every route and
    # advertisement is known before `pulumi up` (Cilium ipam.mode=kubernetes reads it).
    PINNED = "kubernetes"
    # Cilium's operator carves per-node blocks out of a pool (as in the write-up's native-auto lab).
    MULTI_POOL = "multi-pool"


@dataclass(frozen=True)
class ModeFacts:
    """What a routing mode means for Cilium and for the lab's address plan."""

    routing_mode: str  # Cilium `routingMode`
    tunnel_protocol: str | None  # Cilium `tunnelProtocol`, None in native routing
    tunnel_port: int | None  # UDP port on the wire (pkg/defaults: VXLAN 8472, Geneve 6081)
    auto_direct_node_routes: bool
    ipam: Ipam
    default_pod_cidr: ipaddress.IPv4Network
    default_pod_mask: int
    default_underlay: ipaddress.IPv4Network  # distinct per mode so all five stacks can coexist
    bgp_control_plane: bool
    summary: str

    @property
    def is_tunnel(self) -> bool:
        return self.tunnel_protocol is not None

    @property
    def pins_pod_cidrs(self) -> bool:
        return self.ipam is Ipam.PINNED


_TUNNEL_PODS = ipaddress.IPv4Network("10.244.0.0/16")
_NATIVE_PODS = ipaddress.IPv4Network("10.10.0.0/16")

MODE_FACTS: dict[Mode, ModeFacts] = {
    Mode.OVERLAY: ModeFacts(
        routing_mode="tunnel",
        tunnel_protocol="vxlan",
        tunnel_port=8472,
        auto_direct_node_routes=False,
        ipam=Ipam.PINNED,
        default_pod_cidr=_TUNNEL_PODS,
        default_pod_mask=24,
        default_underlay=ipaddress.IPv4Network("172.30.1.0/24"),
        bgp_control_plane=False,
        summary="VXLAN overlay: remote pod CIDRs via cilium_host, encapsulated in UDP 8472",
    ),
    Mode.GENEVE: ModeFacts(
        routing_mode="tunnel",
        tunnel_protocol="geneve",
        tunnel_port=6081,
        auto_direct_node_routes=False,
        ipam=Ipam.PINNED,
        default_pod_cidr=_TUNNEL_PODS,
        default_pod_mask=24,
        default_underlay=ipaddress.IPv4Network("172.30.2.0/24"),
        bgp_control_plane=False,
        summary="Geneve overlay: as VXLAN but UDP 6081 with a TLV option space",
    ),
    Mode.NATIVE_AUTO: ModeFacts(
        routing_mode="native",
        tunnel_protocol=None,
        tunnel_port=None,
        auto_direct_node_routes=True,
        ipam=Ipam.MULTI_POOL,
        default_pod_cidr=_NATIVE_PODS,
        default_pod_mask=27,
        default_underlay=ipaddress.IPv4Network("172.30.3.0/24"),
        bgp_control_plane=False,
        summary="native routing, Cilium installs <remote /27> via <node IP> (autoDirectNodeRoutes)",
    ),
    Mode.STATIC: ModeFacts(
        routing_mode="native",
        tunnel_protocol=None,
        tunnel_port=None,
        auto_direct_node_routes=False,
        ipam=Ipam.PINNED,
        default_pod_cidr=_NATIVE_PODS,
        default_pod_mask=27,
        default_underlay=ipaddress.IPv4Network("172.30.4.0/24"),
        bgp_control_plane=False,
        summary="native routing, routes to remote /27s set by hand (and proven missing first)",
    ),
    Mode.BGP: ModeFacts(
        routing_mode="native",
        tunnel_protocol=None,
        tunnel_port=None,
        auto_direct_node_routes=False,
        ipam=Ipam.PINNED,
        default_pod_cidr=_NATIVE_PODS,
        default_pod_mask=27,
        default_underlay=ipaddress.IPv4Network("172.30.5.0/24"),
        bgp_control_plane=True,
        summary="native routing, pod CIDRs and a LoadBalancer VIP advertised over BGP to FRR (ECMP)",
    ),
}
