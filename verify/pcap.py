"""Captures turned into facts: which packets were encapsulated, on which port, carrying what.

Pure scapy, no tshark, so the same analysis runs on a laptop, in CI and next to a replica.

Tunnels are decoded on the port the *lab* uses, not on whatever scapy happens to bind: scapy binds
VXLAN to 4789 and 8472 (and more) globally, and `scapy.contrib.geneve` binds 6081 when imported. The
analysis ignores those bindings entirely: it takes the raw UDP payload and dissects it as VXLAN or
Geneve only when the destination port is the configured one. So `vxlan_port=4789` really does turn
Cilium's 8472 traffic into plain UDP, and no call changes how the next one decodes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import NoPayload, Packet
from scapy.utils import PcapReader

Encapsulation = Literal["vxlan", "geneve", "none"]

VXLAN_HEADER_LEN = 8
GENEVE_HEADER_LEN = 8

# Fixed names, independent of the host's /etc/protocols (which scapy would otherwise consult).
_IP_PROTOCOLS = {
    1: "icmp",
    2: "igmp",
    6: "tcp",
    17: "udp",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    89: "ospf",
    112: "vrrp",
    132: "sctp",
}
_ETHER_TYPES = {0x0800: "ip", 0x0806: "arp", 0x86DD: "ipv6", 0x8100: "vlan", 0x88CC: "lldp"}


@dataclass(frozen=True)
class PacketInfo:
    """One captured frame, reduced to what a datapath check decides on.

    For encapsulated frames `outer_*` describe the underlay (node to node) and `inner_*` the
    tunnelled packet (pod to pod). For plain frames `outer_*` are None and `inner_*` are the IP
    addresses on the wire, so "pod IPs seen" reads the same in both cases. For ARP the addresses
    are the sender/target protocol addresses.
    """

    index: int
    encapsulation: Encapsulation
    outer_src: str | None
    outer_dst: str | None
    udp_dport: int | None
    vni: int | None
    inner_src: str | None
    inner_dst: str | None
    inner_protocol: str
    icmp_type: int | None
    length: int


def to_json(p: PacketInfo) -> dict[str, Any]:
    """A plain dict (JSON-ready) of one packet, for reports and the CLI."""
    return dataclasses.asdict(p)


@dataclass(frozen=True)
class _L3:
    src: str | None
    dst: str | None
    protocol: str
    icmp_type: int | None


def _network_layer(pkt: Packet) -> Packet | None:
    """The first IP/IPv6/ARP layer of a frame (after Ethernet, VLAN tags, Linux cooked headers)."""
    layer: Any = pkt
    while isinstance(layer, Packet) and not isinstance(layer, NoPayload):
        if isinstance(layer, IP | IPv6 | ARP):
            return layer
        layer = layer.payload
    return None


def _ether_protocol(pkt: Packet) -> str:
    ether_type = int(pkt.type) if isinstance(pkt, Ether) else None
    if ether_type is None:
        return "other"
    return _ETHER_TYPES.get(ether_type, f"ethertype-0x{ether_type:04x}")


def _describe_l3(pkt: Packet) -> _L3:
    """Addresses and protocol of a (possibly inner) packet, whatever its link layer."""
    net = _network_layer(pkt)
    if net is None:
        return _L3(None, None, _ether_protocol(pkt), None)
    if isinstance(net, ARP):
        return _L3(str(net.psrc), str(net.pdst), "arp", None)
    if isinstance(net, IP):
        proto = int(net.proto)
        icmp_type = None
        if proto == 1 and int(net.frag) == 0 and isinstance(net.payload, ICMP):
            icmp_type = int(net.payload.type)
        return _L3(str(net.src), str(net.dst), _IP_PROTOCOLS.get(proto, f"ip-proto-{proto}"), icmp_type)
    # IPv6: extension headers are rare on a pod network; report the first next-header.
    nh = int(net.nh)
    icmp6_type = None
    if nh == 58:
        raw = bytes(net.payload)
        icmp6_type = raw[0] if raw else None
    return _L3(str(net.src), str(net.dst), _IP_PROTOCOLS.get(nh, f"ip-proto-{nh}"), icmp6_type)


def _outer_udp(net: Packet | None) -> Packet | None:
    """The UDP header right above the outer IP, if this is a first (or only) fragment."""
    if isinstance(net, IP):
        if int(net.frag) != 0 or int(net.proto) != 17:
            return None
    elif isinstance(net, IPv6):
        if int(net.nh) != 17:
            return None
    else:
        return None
    udp = net.payload
    return udp if isinstance(udp, UDP) else None


def _classify(index: int, pkt: Packet, length: int, vxlan_port: int, geneve_port: int) -> PacketInfo:
    net = _network_layer(pkt)
    udp = _outer_udp(net)
    if udp is not None and net is not None:
        dport = int(udp.dport)
        # bytes() of a dissected, unmodified layer is the captured bytes (scapy's raw cache), so
        # this is the UDP payload as it was on the wire, whatever scapy chose to dissect it as.
        payload = bytes(udp.payload)
        tunnel: Packet | None = None
        encapsulation: Encapsulation = "none"
        if dport == vxlan_port and len(payload) >= VXLAN_HEADER_LEN:
            tunnel, encapsulation = VXLAN(payload), "vxlan"
        elif dport == geneve_port and len(payload) >= GENEVE_HEADER_LEN:
            tunnel, encapsulation = GENEVE(payload), "geneve"
        if tunnel is not None:
            inner = _describe_l3(tunnel.payload)
            return PacketInfo(
                index=index,
                encapsulation=encapsulation,
                outer_src=str(net.src),
                outer_dst=str(net.dst),
                udp_dport=dport,
                vni=int(tunnel.vni),
                inner_src=inner.src,
                inner_dst=inner.dst,
                inner_protocol=inner.protocol,
                icmp_type=inner.icmp_type,
                length=length,
            )
    plain = _describe_l3(pkt)
    return PacketInfo(
        index=index,
        encapsulation="none",
        outer_src=None,
        outer_dst=None,
        udp_dport=int(udp.dport) if udp is not None else None,
        vni=None,
        inner_src=plain.src,
        inner_dst=plain.dst,
        inner_protocol=plain.protocol,
        icmp_type=plain.icmp_type,
        length=length,
    )


def analyze(path: str | Path, vxlan_port: int = 8472, geneve_port: int = 6081) -> list[PacketInfo]:
    """Every frame of a pcap/pcapng file, tunnels decoded on the given UDP destination ports.

    `index` is 0-based in file order. `length` is the frame's length on the wire (the pcap
    record's original length), so oversized GSO frames report their real size.
    """
    if vxlan_port == geneve_port:
        raise ValueError(f"vxlan_port and geneve_port are both {vxlan_port}: a port decodes one tunnel")
    infos: list[PacketInfo] = []
    with PcapReader(str(path)) as reader:
        for index, pkt in enumerate(reader):
            wirelen = getattr(pkt, "wirelen", None)
            length = int(wirelen) if wirelen else len(bytes(pkt))
            infos.append(_classify(index, pkt, length, vxlan_port, geneve_port))
    return infos
