"""verify.pcap on tunnel headers scapy's own layers get wrong, crafted byte by byte.

Each tunnel header is written with bytes, not with scapy's VXLAN/GENEVE layers, so the test says
exactly what is on the wire. The frame builders are shared with test_pcap_tshark, which checks the
same captures against tshark.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, CookedLinux, Dot1Q, Ether
from scapy.packet import Packet, Raw
from test_pcap import NODE_A, NODE_B, POD_A, POD_C, pcap_bytes, pod_icmp, underlay

from verify.pcap import PacketInfo, analyze

NODE6_A, NODE6_B = "fd00:172:31:1::3", "fd00:172:31:1::4"
POD6_A, POD6_C = "fd00:10:244:1::10", "fd00:10:244:2::10"
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


def vxlan_header(flags: int, vni: int, middle: bytes = b"\x00\x00\x00", last: int = 0) -> bytes:
    """RFC 7348: flags, 3 bytes (reserved, or GBP / GPE fields), VNI, 1 reserved byte."""
    return bytes([flags]) + middle + vni.to_bytes(3, "big") + bytes([last])


def geneve_header(
    proto: int, vni: int, options: bytes = b"", flags: int = 0, opt_words: int | None = None
) -> bytes:
    """RFC 8926: version+option length (in 4-byte words), O/C flags, protocol type, VNI, reserved."""
    words = len(options) // 4 if opt_words is None else opt_words
    return bytes([words, flags]) + proto.to_bytes(2, "big") + vni.to_bytes(3, "big") + b"\x00" + options


def geneve_option(klass: int, kind: int, data: bytes) -> bytes:
    return klass.to_bytes(2, "big") + bytes([kind, len(data) // 4]) + data


def write(tmp_path: Path, frames: list[bytes], linktype: int = 1) -> Path:
    path = tmp_path / "crafted.pcap"
    path.write_bytes(pcap_bytes(frames, linktype))
    return path


def over_udp(dport: int, header: bytes, inner: Packet | bytes) -> bytes:
    return bytes(underlay(NODE_A, NODE_B, 40001, dport) / Raw(header + bytes(inner)))


def over_ipv6(ext: Packet | None, dport: int, header: bytes, inner: Packet | bytes) -> bytes:
    """An IPv6 underlay, with extension headers between it and UDP when `ext` is given."""
    outer: Packet = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04") / IPv6(src=NODE6_A, dst=NODE6_B)
    if ext is not None:
        outer = outer / ext
    return bytes(outer / UDP(sport=40001, dport=dport) / Raw(header + bytes(inner)))


# --- the crafted captures (also read by test_pcap_tshark) --------------------------------------

# (flags, the 3 bytes after them, last byte): the I flag alone, GBP (group policy 0x1234), GPE with
# next protocol "IPv4" (which must not change what follows on the VXLAN port), GBP and GPE at once,
# every bit set, and no I flag at all.
VXLAN_FLAGS = [
    (0x08, b"\x00\x00\x00", 0x00),
    (0x88, b"\x40\x12\x34", 0x00),
    (0x0C, b"\x00\x00\x01", 0x00),
    (0x8C, b"\x00\x12\x01", 0x00),
    (0xFF, b"\xff\xff\xff", 0xFF),
    (0x00, b"\x00\x00\x00", 0x00),
]


def vxlan_flag_frames(port: int = 8472) -> list[bytes]:
    return [
        over_udp(port, vxlan_header(flags, 0x123400 + i, middle, last), pod_icmp(POD_A, POD_C, 8, seq=i))
        for i, (flags, middle, last) in enumerate(VXLAN_FLAGS)
    ]


def arp_request(psrc: str, pdst: str) -> Packet:
    return ARP(op=1, hwsrc="02:00:00:00:01:01", psrc=psrc, pdst=pdst)


def geneve_frames() -> list[bytes]:
    """Every protocol type the lab could see on Geneve, options of two lengths, and one it cannot."""
    opts = geneve_option(0x0102, 0x80, b"\x00\x00\x01\x00") + geneve_option(0xFFFF, 0x01, b"\xaa" * 8)
    eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:01")
    return [
        over_udp(6081, geneve_header(0x0806, 0x11, b""), arp_request(POD_A, POD_C)),
        over_udp(6081, geneve_header(0x0800, 0x12), IP(src=POD_A, dst=POD_C) / ICMP(type=8) / Raw(b"p" * 8)),
        over_udp(6081, geneve_header(0x86DD, 0x13), IPv6(src=POD6_A, dst=POD6_C) / ICMPv6EchoRequest()),
        over_udp(6081, geneve_header(0x6558, 0x14, opts, flags=0xC0), pod_icmp(POD_C, POD_A, 0)),
        over_udp(6081, geneve_header(0x6558, 0x15), eth / arp_request(POD_C, POD_A)),
        over_udp(6081, geneve_header(0x894F, 0x16), b"\x00" * 24),  # NSH: named by number
    ]


def ipv6_extension_frames() -> list[bytes]:
    """VXLAN and Geneve over an IPv6 underlay, with the extension headers a path may add."""
    vx = vxlan_header(0x08, 77)
    gen = geneve_header(0x6558, 78)
    inner = pod_icmp(POD_A, POD_C, 8)
    return [
        over_ipv6(None, 8472, vx, inner),
        over_ipv6(IPv6ExtHdrHopByHop(), 8472, vx, inner),
        over_ipv6(IPv6ExtHdrRouting(addresses=[NODE6_B]), 8472, vx, inner),
        over_ipv6(IPv6ExtHdrDestOpt(), 6081, gen, inner),
        over_ipv6(IPv6ExtHdrFragment(offset=0, m=1, id=9), 8472, vx, inner),
        over_ipv6(IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(), 6081, gen, inner),
    ]


def ipv6_later_fragment() -> bytes:
    """A non-first fragment whose payload happens to look like UDP to 8472 and a VXLAN header."""
    looks_like_udp = bytes(UDP(sport=40001, dport=8472, len=120)) + vxlan_header(0x08, 99)
    frag = IPv6ExtHdrFragment(offset=16, m=0, id=9, nh=17)
    return bytes(
        Ether()
        / IPv6(src=NODE6_A, dst=NODE6_B)
        / frag
        / Raw(looks_like_udp + bytes(pod_icmp(POD_A, POD_C, 8)))
    )


def ipv6_plain_frames() -> list[bytes]:
    """Pod IPv6 traffic: MLD behind hop-by-hop (router alert), and ESP behind destination options."""
    mld = Raw(bytes([143, 0, 0, 0]) + b"\x00" * 4)
    return [
        bytes(Ether() / IPv6(src=POD6_A, dst="ff02::16", nh=0) / IPv6ExtHdrHopByHop(nh=58) / mld),
        bytes(Ether() / IPv6(src=POD6_A, dst=POD6_C) / IPv6ExtHdrDestOpt(nh=50) / Raw(b"\x00" * 16)),
    ]


def link_layer_frames() -> list[bytes]:
    """VLAN tags outside and inside the tunnel."""
    tagged_inner = (
        Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:01")
        / Dot1Q(vlan=20)
        / IP(src=POD_A, dst=POD_C)
        / ICMP()
    )
    outer = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04") / Dot1Q(vlan=10) / Dot1Q(vlan=11)
    return [
        bytes(
            outer
            / IP(src=NODE_A, dst=NODE_B)
            / UDP(sport=1, dport=8472)
            / Raw(vxlan_header(0x08, 5))
            / tagged_inner
        ),
    ]


def cooked_frame() -> bytes:
    """`tcpdump -i any`: a Linux cooked header instead of Ethernet."""
    sll = CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, proto=0x0800)
    return bytes(
        sll
        / IP(src=NODE_A, dst=NODE_B)
        / UDP(sport=2, dport=8472)
        / Raw(vxlan_header(0x88, 6))
        / pod_icmp(POD_A, POD_C, 8)
    )


def cooked_v2_frame() -> bytes:
    """LINKTYPE_LINUX_SLL2 (`tcpdump -i any` on newer libpcap): protocol first, 20 bytes."""
    header = (0x86DD).to_bytes(2, "big") + b"\x00\x00" + (3).to_bytes(4, "big") + (1).to_bytes(2, "big")
    header += bytes([4, 6]) + bytes.fromhex("020000000003") + b"\x00\x00"
    payload = (
        IPv6(src=NODE6_A, dst=NODE6_B)
        / UDP(sport=3, dport=6081)
        / Raw(geneve_header(0x0800, 7))
        / IP(src=POD_A, dst=POD_C)
        / ICMP(type=0)
    )
    return header + bytes(payload)


# name -> (frames, linktype, vxlan_port)
CRAFTED: dict[str, tuple[list[bytes], int, int]] = {
    "vxlan-flags-8472": (vxlan_flag_frames(), 1, 8472),
    "vxlan-flags-4789": (vxlan_flag_frames(4789), 1, 4789),
    "geneve-protocols": (geneve_frames(), 1, 8472),
    "ipv6-extension-headers": (ipv6_extension_frames(), 1, 8472),
    "ipv6-later-fragment": ([ipv6_later_fragment()], 1, 8472),
    "ipv6-plain": (ipv6_plain_frames(), 1, 8472),
    "vlan-tags": (link_layer_frames(), 1, 8472),
    "linux-cooked": ([cooked_frame()], LINKTYPE_LINUX_SLL, 8472),
    "linux-cooked-v2": ([cooked_v2_frame()], LINKTYPE_LINUX_SLL2, 8472),
}


def decoded(tmp_path: Path, name: str) -> list[PacketInfo]:
    frames, linktype, vxlan_port = CRAFTED[name]
    return analyze(write(tmp_path, frames, linktype), vxlan_port=vxlan_port)


# --- VXLAN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [8472, 4789])
def test_vxlan_header_is_8_bytes_whatever_its_flags(tmp_path: Path, port: int) -> None:
    packets = decoded(tmp_path, f"vxlan-flags-{port}")
    assert [(p.encapsulation, p.udp_dport, p.vni) for p in packets] == [
        ("vxlan", port, 0x123400 + i) for i in range(len(VXLAN_FLAGS))
    ]
    # The inner frame starts at byte 8 every time: its addresses and ICMP type are intact.
    assert {(p.inner_src, p.inner_dst, p.inner_protocol, p.icmp_type) for p in packets} == {
        (POD_A, POD_C, "icmp", 8)
    }
    assert [p.tunnel_flags for p in packets] == [flags for flags, _, _ in VXLAN_FLAGS]


# --- Geneve --------------------------------------------------------------------------------------


def test_geneve_decodes_every_protocol_type_the_lab_could_see(tmp_path: Path) -> None:
    packets = decoded(tmp_path, "geneve-protocols")
    assert [(p.encapsulation, p.vni) for p in packets] == [("geneve", 0x11 + i) for i in range(6)]
    assert [(p.inner_src, p.inner_dst, p.inner_protocol, p.icmp_type) for p in packets] == [
        (POD_A, POD_C, "arp", None),  # ARP carried directly (0x0806)
        (POD_A, POD_C, "icmp", 8),  # IPv4 directly
        (POD6_A, POD6_C, "icmpv6", 128),  # IPv6 directly
        (POD_C, POD_A, "icmp", 0),  # Ethernet, after 20 bytes of options
        (POD_C, POD_A, "arp", None),  # Ethernet carrying ARP
        (None, None, "ethertype-0x894f", None),  # anything else: named by its number
    ]
    assert [p.tunnel_flags for p in packets] == [0, 0, 0, 0xC0, 0, 0]


def test_geneve_options_longer_than_the_packet_are_not_decoded_as_the_inner_frame(tmp_path: Path) -> None:
    # The header claims 63 words of options (252 bytes) but the datagram ends after 40.
    frame = over_udp(6081, geneve_header(0x6558, 0x21, opt_words=63), pod_icmp(POD_A, POD_C, 8))
    (packet,) = analyze(write(tmp_path, [frame]))
    assert (packet.encapsulation, packet.vni, packet.outer_src) == ("geneve", 0x21, NODE_A)
    assert (packet.inner_src, packet.inner_dst, packet.inner_protocol, packet.icmp_type) == (
        None,
        None,
        "truncated",
        None,
    )


# --- IPv6 underlay -------------------------------------------------------------------------------


def test_tunnels_behind_ipv6_extension_headers(tmp_path: Path) -> None:
    packets = decoded(tmp_path, "ipv6-extension-headers")
    assert [(p.encapsulation, p.vni, p.udp_dport) for p in packets] == [
        ("vxlan", 77, 8472),
        ("vxlan", 77, 8472),  # hop-by-hop
        ("vxlan", 77, 8472),  # routing
        ("geneve", 78, 6081),  # destination options
        ("vxlan", 77, 8472),  # first fragment: the UDP header is there
        ("geneve", 78, 6081),  # a chain of three
    ]
    assert {(p.outer_src, p.outer_dst, p.inner_src, p.inner_dst, p.icmp_type) for p in packets} == {
        (NODE6_A, NODE6_B, POD_A, POD_C, 8)
    }


def test_a_later_ipv6_fragment_has_no_udp_header(tmp_path: Path) -> None:
    (packet,) = decoded(tmp_path, "ipv6-later-fragment")
    assert packet == PacketInfo(
        0, "none", None, None, None, None, NODE6_A, NODE6_B, "udp", None, len(ipv6_later_fragment())
    )


def test_plain_ipv6_reports_the_protocol_after_the_extension_headers(tmp_path: Path) -> None:
    packets = decoded(tmp_path, "ipv6-plain")
    assert [(p.encapsulation, p.inner_src, p.inner_dst, p.inner_protocol, p.icmp_type) for p in packets] == [
        ("none", POD6_A, "ff02::16", "icmpv6", 143),
        ("none", POD6_A, POD6_C, "esp", None),
    ]


# --- link layers ---------------------------------------------------------------------------------


def test_vlan_tags_outside_and_inside_the_tunnel(tmp_path: Path) -> None:
    (packet,) = decoded(tmp_path, "vlan-tags")
    assert (packet.encapsulation, packet.vni, packet.outer_src, packet.inner_dst, packet.inner_protocol) == (
        "vxlan",
        5,
        NODE_A,
        POD_C,
        "icmp",
    )


def test_linux_cooked_v1_and_v2(tmp_path: Path) -> None:
    (v1,) = decoded(tmp_path, "linux-cooked")
    assert (v1.encapsulation, v1.vni, v1.tunnel_flags, v1.outer_src, v1.inner_dst) == (
        "vxlan",
        6,
        0x88,
        NODE_A,
        POD_C,
    )
    (v2,) = decoded(tmp_path, "linux-cooked-v2")
    assert (v2.encapsulation, v2.vni, v2.outer_src, v2.inner_src, v2.icmp_type) == (
        "geneve",
        7,
        NODE6_A,
        POD_A,
        0,
    )


# --- frames cut short by the capture's snap length -------------------------------------------------


def test_a_frame_cut_by_the_snap_length_reports_only_what_was_captured(tmp_path: Path) -> None:
    full = over_udp(8472, vxlan_header(0x08, 4242), pod_icmp(POD_A, POD_C, 8))
    # 14 + 20 + 8 + 8 bytes of tunnel headers, then 14 + 10 of the inner frame: the inner IP header is cut.
    cut_inner_ip = (full[:74], len(full))
    cut_vxlan = (full[:46], len(full))  # 4 of VXLAN's 8 bytes
    cut_outer_ip = (full[:30], len(full))
    path = tmp_path / "snaplen.pcap"
    path.write_bytes(pcap_bytes([cut_inner_ip, cut_vxlan, cut_outer_ip]))
    inner_cut, vxlan_cut, outer_cut = analyze(path)
    assert inner_cut == PacketInfo(
        0, "vxlan", NODE_A, NODE_B, 8472, 4242, None, None, "truncated", None, len(full), 0x08
    )
    # Too little of VXLAN to be sure of the VNI: plain UDP, as before the header arrived.
    assert (vxlan_cut.encapsulation, vxlan_cut.vni, vxlan_cut.inner_protocol, vxlan_cut.udp_dport) == (
        "none",
        None,
        "udp",
        8472,
    )
    assert (outer_cut.encapsulation, outer_cut.inner_src, outer_cut.inner_protocol, outer_cut.length) == (
        "none",
        None,
        "truncated",
        len(full),
    )
