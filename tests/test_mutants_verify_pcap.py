"""verify/pcap.py cases a mutation run (`make mutation`) found no test for.

The link types other than Ethernet (raw IP, BSD loopback in both byte orders), ARP on the
wire, and the exact words of each way a pcapng file can be broken: a check shows that text,
and a reader that names the wrong byte or the wrong class sends a person to the wrong fix.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw
from test_pcap import NODE_A, NODE_B, POD_A, POD_C, pcap_bytes, pcapng_block, pcapng_bytes, vxlan_ping
from test_pcap_tunnels import POD6_A, POD6_C, geneve_header, over_udp

from verify import pcap
from verify.pcap import PacketInfo, analyze

PING = IP(src=POD_A, dst=POD_C, ttl=63) / ICMP(type=8, id=7, seq=1) / Raw(bytes(range(56)))
PING6 = IPv6(src=POD6_A, dst=POD6_C) / ICMPv6EchoRequest()


def decode(tmp_path: Path, frames: list[bytes], linktype: int) -> list[PacketInfo]:
    path = tmp_path / "crafted.pcap"
    path.write_bytes(pcap_bytes(frames, linktype))
    return analyze(path)


def seen(p: PacketInfo) -> tuple[str | None, str | None, str, int | None]:
    return (p.inner_src, p.inner_dst, p.inner_protocol, p.icmp_type)


# --- link types -----------------------------------------------------------------------------------


@pytest.mark.parametrize("linktype", [101, 228, 229])  # RAW, IPV4, IPV6: the IP version says which
def test_raw_ip_links_decode_by_the_ip_version(linktype: int, tmp_path: Path) -> None:
    four, six, empty, other = decode(tmp_path, [bytes(PING), bytes(PING6), b"", b"\x55" * 20], linktype)
    assert seen(four) == (POD_A, POD_C, "icmp", 8)
    assert seen(six) == (POD6_A, POD6_C, "icmpv6", 128)
    assert empty.inner_protocol == "truncated"
    assert other.inner_protocol == "malformed"  # version 5


@pytest.mark.parametrize(
    ("family", "order", "inner", "want"),
    [
        (2, "little", PING, (POD_A, POD_C, "icmp", 8)),  # AF_INET in host order (NULL on Linux)
        (2, "big", PING, (POD_A, POD_C, "icmp", 8)),  # LOOP: network order
        (10, "little", PING6, (POD6_A, POD6_C, "icmpv6", 128)),  # AF_INET6: Linux
        (24, "big", PING6, (POD6_A, POD6_C, "icmpv6", 128)),  # OpenBSD
        (28, "little", PING6, (POD6_A, POD6_C, "icmpv6", 128)),  # FreeBSD
        (30, "big", PING6, (POD6_A, POD6_C, "icmpv6", 128)),  # macOS
    ],
)
@pytest.mark.parametrize("linktype", [0, 108])
def test_loopback_reads_the_address_family_in_either_byte_order(
    linktype: int,
    family: int,
    order: Literal["little", "big"],
    inner: Packet,
    want: tuple[object, ...],
    tmp_path: Path,
) -> None:
    frame = family.to_bytes(4, order) + bytes(inner)
    (p,) = decode(tmp_path, [frame], linktype)
    assert seen(p) == want


def test_loopback_of_another_family_or_cut_short(tmp_path: Path) -> None:
    other, bare, cut = decode(
        tmp_path, [(7).to_bytes(4, "little") + b"\x00" * 20, (17).to_bytes(4, "big"), b"\x02\x00"], 0
    )
    assert (other.inner_protocol, bare.inner_protocol, cut.inner_protocol) == ("af-7", "af-17", "truncated")


# --- ARP --------------------------------------------------------------------------------------------


def _arp(psrc: str, pdst: str) -> bytes:
    return bytes(
        Ether(src="02:00:00:00:00:03", dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc="02:00:00:00:00:03", psrc=psrc, pdst=pdst)
    )


def test_arp_on_the_wire_padded_to_the_ethernet_minimum(tmp_path: Path) -> None:
    request = _arp(NODE_A, NODE_B)
    padded = request + b"\x00" * (60 - len(request))
    (p, q) = decode(tmp_path, [request, padded], 1)
    assert seen(p) == seen(q) == (NODE_A, NODE_B, "arp", None)


def test_arp_that_is_cut_or_not_for_ipv4(tmp_path: Path) -> None:
    request = _arp(NODE_A, NODE_B)
    header_cut = request[: 14 + 7]
    body_cut = request[: 14 + 27]  # one byte of the target address missing
    exact = request[: 14 + 28]
    ethernet = request[:14]
    ipv6_arp = ethernet + bytes.fromhex("0001 86dd 0610 0001") + b"\x00" * (6 + 16 + 6 + 16)
    short_plen = ethernet + bytes.fromhex("0001 0800 0606 0001") + b"\x00" * 24
    got = decode(tmp_path, [header_cut, body_cut, exact, ipv6_arp, short_plen], 1)
    assert [seen(p) for p in got] == [
        (None, None, "truncated", None),
        (None, None, "truncated", None),
        (NODE_A, NODE_B, "arp", None),
        (None, None, "arp", None),
        (None, None, "arp", None),  # IPv4 type but 6-byte protocol addresses: not read as IPv4
    ]


# --- Geneve ------------------------------------------------------------------------------------------


def test_geneve_whose_options_fill_the_packet_carries_nothing_to_decode(tmp_path: Path) -> None:
    header = geneve_header(0x894F, 0x21, b"\x01\x02\x00\x01\xaa\xbb\xcc\xdd")
    (p,) = decode(tmp_path, [over_udp(6081, header, b"")], 1)
    assert (p.encapsulation, p.vni, p.inner_protocol) == ("geneve", 0x21, "ethertype-0x894f")


# --- broken files: the class and the words ------------------------------------------------------------

SHB = bytes.fromhex("0a0d0d0a")


def _raises(tmp_path: Path, data: bytes, error: type[pcap.CaptureError], problem: str) -> None:
    path = tmp_path / "broken.pcapng"
    path.write_bytes(data)
    with pytest.raises(pcap.CaptureError) as err:
        analyze(path)
    assert type(err.value) is error
    assert (err.value.path, err.value.problem, str(err.value)) == (str(path), problem, f"{path}: {problem}")


def _section(endian: str = "<") -> bytes:
    return pcapng_bytes([], endian=endian)


def test_a_cut_section_header_says_how_much_arrived(tmp_path: Path) -> None:
    _raises(
        tmp_path,
        SHB + b"\x1c\x00\x00\x00\x4d\x3c",
        pcap.TruncatedHeader,
        "the pcapng section header is truncated: 10 of at least 12 bytes",
    )
    _raises(
        tmp_path,
        _section()[:20],
        pcap.TruncatedHeader,
        "the pcapng section header is truncated: 20 of 28 bytes",
    )


def test_a_section_without_byte_order_magic_first_or_later(tmp_path: Path) -> None:
    bad = SHB + struct.pack("<I", 28) + b"\x00" * 16 + struct.pack("<I", 28)
    _raises(tmp_path, bad, pcap.NotACapture, "the section header at byte 0 has no byte-order magic")
    good = pcapng_bytes([bytes(vxlan_ping(8472)[0])])
    _raises(
        tmp_path,
        good + bad,
        pcap.MalformedCapture,
        f"the section header at byte {len(good)} has no byte-order magic",
    )


def test_block_lengths_that_cannot_be(tmp_path: Path) -> None:
    section = _section()
    huge = struct.pack("<II", 6, 0xFFFFFFFC) + b"\x00" * 8
    _raises(
        tmp_path,
        section + huge,
        pcap.MalformedCapture,
        f"block at byte {len(section)}: block length 4294967292 is impossible",
    )
    short_shb = SHB + struct.pack("<II", 24, 0x1A2B3C4D) + b"\x00" * 8 + struct.pack("<I", 24)
    _raises(tmp_path, short_shb, pcap.MalformedCapture, "block at byte 0: block length 24 is impossible")
    trailer = pcapng_block(6, b"\x00" * 20)[:-4] + struct.pack("<I", 0xFFFFFFFF)
    _raises(
        tmp_path,
        section + trailer,
        pcap.MalformedCapture,
        f"block at byte {len(section)}: lengths 32 and 4294967295 disagree",
    )


def test_the_largest_block_length_is_read_not_refused(tmp_path: Path) -> None:
    """A block may be up to 64 MiB: claiming that much in a short file is a cut record, not corruption."""
    section = _section()
    claim = struct.pack("<II", 6, 1 << 26) + b"\x00" * 20
    _raises(
        tmp_path,
        section + claim,
        pcap.TruncatedRecord,
        f"record 0 at byte {len(section)} is truncated: its block has 28 of {1 << 26} bytes",
    )


def test_a_cut_record_names_its_index_and_byte(tmp_path: Path) -> None:
    whole = pcapng_bytes([bytes(f) for f in vxlan_ping(8472)])
    cut = whole[:-10]
    first_end = len(pcapng_bytes([bytes(vxlan_ping(8472)[0])]))
    last = len(whole) - first_end
    _raises(
        tmp_path,
        cut,
        pcap.TruncatedRecord,
        f"record 1 at byte {first_end} is truncated: its block has {last - 10} of {last} bytes",
    )


def test_an_empty_block_of_12_bytes_is_skipped(tmp_path: Path) -> None:
    """The smallest block (no body), e.g. a custom or padding block between packets."""
    frames = [bytes(f) for f in vxlan_ping(8472)]
    with_empty = (
        pcapng_bytes(frames[:1]) + pcapng_block(0xBAD, b"") + pcapng_bytes(frames[1:])[len(_section()) :]
    )
    path = tmp_path / "empty-block.pcapng"
    path.write_bytes(with_empty)
    assert [p.inner_src for p in analyze(path)] == [POD_A, POD_C]


def test_a_record_cut_inside_its_first_eight_bytes_names_its_index_and_byte(tmp_path: Path) -> None:
    """Stray bytes after the last whole block: fewer than a block header, yet not the first block."""
    whole = pcapng_bytes([bytes(f) for f in vxlan_ping(8472)])
    _raises(
        tmp_path,
        whole + b"\x06\x00\x00",
        pcap.TruncatedRecord,
        f"record 2 at byte {len(whole)} is truncated: its block has 3 of at least 12 bytes",
    )


# --- pcapng packet blocks: each kind, and the words of each broken one ------------------------------

SHB_ONLY = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
FRAME = bytes(vxlan_ping(8472)[0])


def _epb(frame: bytes, interface: int = 0, caplen: int | None = None, wirelen: int | None = None) -> bytes:
    caplen = len(frame) if caplen is None else caplen
    wirelen = len(frame) if wirelen is None else wirelen
    return pcapng_block(6, struct.pack("<IIIII", interface, 0, 0, caplen, wirelen) + frame)


def _read(tmp_path: Path, data: bytes) -> list[PacketInfo]:
    path = tmp_path / "blocks.pcapng"
    path.write_bytes(data)
    return analyze(path)


def test_an_interface_block_too_short_to_name_its_link_type(tmp_path: Path) -> None:
    _raises(
        tmp_path,
        SHB_ONLY + pcapng_block(1, b"\x01\x00\x00\x00"),
        pcap.MalformedCapture,
        f"interface block at byte {len(SHB_ONLY)} has 4 bytes",
    )


def test_a_packet_on_an_interface_never_described(tmp_path: Path) -> None:
    _raises(
        tmp_path,
        SHB_ONLY + _epb(FRAME),
        pcap.MalformedCapture,
        f"record 0 at byte {len(SHB_ONLY)}: interface 0 was never described",
    )
    section = pcapng_bytes([FRAME, FRAME])
    _raises(
        tmp_path,
        section + _epb(FRAME, interface=1),
        pcap.MalformedCapture,
        f"record 2 at byte {len(section)}: interface 1 was never described",
    )


def test_a_packet_block_shorter_than_its_fixed_fields(tmp_path: Path) -> None:
    section = _section()
    _raises(
        tmp_path,
        section + pcapng_block(6, b"\x00" * 16),
        pcap.MalformedCapture,
        f"record 0 at byte {len(section)}: packet block of 16 bytes",
    )
    _raises(
        tmp_path,
        section + pcapng_block(3, b""),
        pcap.MalformedCapture,
        f"record 0 at byte {len(section)}: packet block of 0 bytes",
    )


def test_more_captured_bytes_than_the_block_holds(tmp_path: Path) -> None:
    section = _section()
    _raises(
        tmp_path,
        section + _epb(b"\x00" * 8, caplen=100),
        pcap.MalformedCapture,
        f"record 0 at byte {len(section)}: 100 captured bytes in a block of 28",
    )


def test_simple_and_old_packet_blocks_decode_like_enhanced_ones(tmp_path: Path) -> None:
    section = _section()
    simple = pcapng_block(3, struct.pack("<I", len(FRAME)) + FRAME)
    old = pcapng_block(2, struct.pack("<HHIIII", 0, 0, 0, 0, len(FRAME), len(FRAME)) + FRAME)
    packets = _read(tmp_path, section + simple + old + _epb(FRAME))
    assert [(p.index, p.encapsulation, p.outer_src, p.inner_src, p.length) for p in packets] == [
        (i, "vxlan", NODE_A, POD_A, len(FRAME)) for i in range(3)
    ]


def test_a_simple_packet_longer_on_the_wire_keeps_its_wire_length(tmp_path: Path) -> None:
    """A simple packet block holds no captured length: what the block holds, up to the original."""
    section = _section()
    (packet,) = _read(tmp_path, section + pcapng_block(3, struct.pack("<I", len(FRAME) + 40) + FRAME))
    assert (packet.length, packet.inner_src, packet.encapsulation) == (len(FRAME) + 40, POD_A, "vxlan")


def test_a_zero_wire_length_falls_back_to_the_captured_one(tmp_path: Path) -> None:
    (packet,) = _read(tmp_path, _section() + _epb(FRAME, wirelen=0))
    assert packet.length == len(FRAME)


def test_a_new_section_numbers_its_interfaces_from_zero(tmp_path: Path) -> None:
    """The second section's interface 0 is raw IP; read as the first section's Ethernet it would not decode."""
    raw = bytes(PING)
    second = pcapng_bytes([raw], linktype=101)
    packets = _read(tmp_path, pcapng_bytes([FRAME]) + second)
    assert [seen(p) for p in packets][1] == (POD_A, POD_C, "icmp", 8)
    assert packets[0].encapsulation == "vxlan"


def test_big_endian_blocks_are_read_in_their_own_order(tmp_path: Path) -> None:
    (packet,) = _read(tmp_path, pcapng_bytes([FRAME], endian=">"))
    assert (packet.encapsulation, packet.inner_src, packet.length) == ("vxlan", POD_A, len(FRAME))


# --- edges of the link and network readers -------------------------------------------------------

SLL_LLDP = bytes(2) + bytes(2) + bytes(2) + bytes(8) + (0x88CC).to_bytes(2, "big")  # 16 bytes: header only


def test_a_cooked_frame_shorter_than_its_header_is_truncated(tmp_path: Path) -> None:
    (v1,) = decode(tmp_path, [SLL_LLDP[:10]], 113)
    assert v1.inner_protocol == "truncated"
    (v2,) = decode(tmp_path, [bytes(12)], 276)
    assert v2.inner_protocol == "truncated"


def test_a_cooked_frame_of_its_header_alone_still_names_its_protocol(tmp_path: Path) -> None:
    (packet,) = decode(tmp_path, [SLL_LLDP], 113)
    assert packet.inner_protocol == "lldp"


def _ipv6_header(payload_len: int, next_header: int) -> bytes:
    return (
        bytes([0x60, 0, 0, 0])
        + payload_len.to_bytes(2, "big")
        + bytes([next_header, 64])
        + bytes(16)
        + bytes(16)
    )


def test_an_ipv6_header_with_nothing_after_it_is_read(tmp_path: Path) -> None:
    (packet,) = decode(tmp_path, [_ipv6_header(0, 59)], 101)
    assert (packet.inner_src, packet.inner_protocol) == ("::", "ip-proto-59")


def test_ipv6_extension_headers_stop_at_the_payload_length_not_the_padding(tmp_path: Path) -> None:
    """Payload length 8 holds one hop-by-hop header naming a destination-options header next; the
    8 bytes after it are link padding, not that header, so the packet is cut."""
    hop_by_hop = bytes([60, 0]) + bytes(6)
    (packet,) = decode(tmp_path, [_ipv6_header(8, 0) + hop_by_hop + bytes([17, 0]) + bytes(6)], 101)
    assert packet.inner_protocol == "truncated"


def test_an_arp_header_with_no_addresses_is_still_arp(tmp_path: Path) -> None:
    """Eight bytes with zero-length addresses: whole, just not IPv4-over-Ethernet."""
    header = (1).to_bytes(2, "big") + (0x0800).to_bytes(2, "big") + bytes([0, 0]) + (1).to_bytes(2, "big")
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff", type=0x0806)) + header
    (packet,) = decode(tmp_path, [frame], 1)
    assert (packet.inner_protocol, packet.inner_src) == ("arp", None)


def test_a_geneve_header_with_nothing_after_it_is_still_geneve(tmp_path: Path) -> None:
    frame = over_udp(6081, geneve_header(0x6558, 77), b"")
    (packet,) = decode(tmp_path, [frame], 1)
    assert (packet.encapsulation, packet.vni, packet.outer_src, packet.inner_protocol) == (
        "geneve",
        77,
        NODE_A,
        "truncated",
    )
