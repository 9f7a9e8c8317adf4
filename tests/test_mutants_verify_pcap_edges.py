"""verify/pcap.py at the exact edges of every length, range and field width.

A second `make mutation` sweep of the rewritten reader left boundary changes alive: a `<` read
as `<=`, a length field read one byte over, an unsigned field read as signed. Each case here
sits on one such edge, built byte by byte (scapy would fix the lengths that matter), so a
reader that is off by one there reports another protocol, another length or another error.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_mutants_verify_pcap import FRAME, SHB_ONLY, _raises, _read, decode
from test_pcap import NODE_A, POD_A, POD_C, pcap_bytes, pcapng_block, vxlan_ping

from verify import pcap
from verify.pcap import PacketInfo, analyze

ETHERNET, RAW_IP = 1, 101
SRC6, DST6 = "fd00::1", "fd00::2"


def eth(ethertype: int, payload: bytes = b"") -> bytes:
    return bytes.fromhex("020000000004 020000000003") + ethertype.to_bytes(2, "big") + payload


def ipv4(
    proto: int, payload: bytes, total: int | None = None, first_byte: int = 0x45, frag: int = 0
) -> bytes:
    """An IPv4 header (no options unless first_byte says so) with every field given, then payload."""
    length = 20 + len(payload) if total is None else total
    return (
        bytes([first_byte, 0])
        + length.to_bytes(2, "big")
        + bytes(2)  # identification 0
        + frag.to_bytes(2, "big")
        + bytes([64, proto])
        + bytes(2)
        + bytes([10, 0, 0, 1, 10, 0, 0, 2])
        + payload
    )


def udp(dport: int, payload: bytes, length: int | None = None) -> bytes:
    udp_len = 8 + len(payload) if length is None else length
    return (
        (40001).to_bytes(2, "big")
        + dport.to_bytes(2, "big")
        + udp_len.to_bytes(2, "big")
        + bytes(2)
        + payload
    )


VXLAN_100 = bytes([0x08, 0, 0, 0, 0, 0, 100, 0])  # the I flag, VNI 100
INNER = eth(0x0800, ipv4(1, bytes([8, 0]) + bytes(6)))


def ipv6(payload_len: int, next_header: int, rest: bytes) -> bytes:
    return (
        bytes([0x60, 0, 0, 0])
        + payload_len.to_bytes(2, "big")
        + bytes([next_header, 64])
        + bytes.fromhex("fd00" + "00" * 13 + "01")
        + bytes.fromhex("fd00" + "00" * 13 + "02")
        + rest
    )


ECHO6 = bytes([128, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66])  # ICMPv6 echo request: type 128
HOP_TO_ICMP6 = bytes([58, 0]) + bytes(6)  # a hop-by-hop header of 8 bytes, ICMPv6 next


def six(p: PacketInfo) -> tuple[str | None, str | None, str, int | None]:
    return (p.inner_src, p.inner_dst, p.inner_protocol, p.icmp_type)


# --- Ethernet and VLAN tags -------------------------------------------------------------------------


def test_ethertype_0x0600_is_a_type_and_0x05ff_a_length(tmp_path: Path) -> None:
    """802.3: values up to 1500 (0x05DC) are lengths, from 0x0600 on EtherTypes."""
    got = decode(tmp_path, [eth(0x0600), eth(0x05FF, bytes(46))], ETHERNET)
    assert [p.inner_protocol for p in got] == ["ethertype-0x0600", "llc"]


def test_an_ethernet_header_alone_is_read_and_one_byte_less_is_truncated(tmp_path: Path) -> None:
    got = decode(tmp_path, [eth(0x88CC), eth(0x88CC)[:13]], ETHERNET)
    assert [p.inner_protocol for p in got] == ["lldp", "truncated"]


def test_a_vlan_tag_that_ends_the_frame_is_read_and_a_cut_one_is_truncated(tmp_path: Path) -> None:
    tag = bytes([0x00, 0x01]) + (0x88CC).to_bytes(2, "big")  # VLAN 1, LLDP inside
    got = decode(tmp_path, [eth(0x8100, tag), eth(0x8100, tag[:3])], ETHERNET)
    assert [p.inner_protocol for p in got] == ["lldp", "truncated"]


# --- the tunnel ports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vxlan_port", "geneve_port", "message"),
    [
        (0, 6081, "vxlan_port 0 is not a UDP port (1-65535)"),
        (8472, 65536, "geneve_port 65536 is not a UDP port (1-65535)"),
    ],
)
def test_a_port_out_of_range_is_refused_by_its_name(
    vxlan_port: int, geneve_port: int, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "any.pcap"
    path.write_bytes(pcap_bytes([]))
    with pytest.raises(ValueError) as err:
        analyze(path, vxlan_port=vxlan_port, geneve_port=geneve_port)
    assert str(err.value) == message


def test_ports_1_and_65535_are_tunnel_ports(tmp_path: Path) -> None:
    geneve = bytes([0, 0]) + (0x6558).to_bytes(2, "big") + bytes([0, 0, 7, 0])  # VNI 7, Ethernet inside
    frames = [
        eth(0x0800, ipv4(17, udp(1, VXLAN_100 + INNER))),
        eth(0x0800, ipv4(17, udp(65535, geneve + INNER))),
    ]
    path = tmp_path / "ports.pcap"
    path.write_bytes(pcap_bytes(frames))
    got = analyze(path, vxlan_port=1, geneve_port=65535)
    assert [(p.encapsulation, p.vni, p.inner_protocol) for p in got] == [
        ("vxlan", 100, "icmp"),
        ("geneve", 7, "icmp"),
    ]


def test_iter_packets_decodes_on_cilium_s_ports_by_default(tmp_path: Path) -> None:
    geneve = bytes([0, 0]) + (0x6558).to_bytes(2, "big") + bytes([0, 0, 7, 0])
    frames = [
        eth(0x0800, ipv4(17, udp(8472, VXLAN_100 + INNER))),
        eth(0x0800, ipv4(17, udp(6081, geneve + INNER))),
    ]
    path = tmp_path / "defaults.pcap"
    path.write_bytes(pcap_bytes(frames))
    assert [p.encapsulation for p in pcap.iter_packets(path)] == ["vxlan", "geneve"]


# --- the file header --------------------------------------------------------------------------------


def test_an_empty_file_and_cut_file_headers_say_so(tmp_path: Path) -> None:
    _raises(tmp_path, b"", pcap.EmptyCapture, "the file is empty (0 bytes), not a capture")
    _raises(
        tmp_path, bytes.fromhex("0a0d"), pcap.TruncatedHeader, "the file header is truncated: 2 of 28 bytes"
    )
    _raises(
        tmp_path, bytes.fromhex("d4c3b2"), pcap.TruncatedHeader, "the file header is truncated: 3 of 24 bytes"
    )


# --- IPv4 -------------------------------------------------------------------------------------------


def test_an_ipv4_header_with_nothing_after_it_is_read(tmp_path: Path) -> None:
    udp_only, icmp_only = decode(tmp_path, [ipv4(17, b""), ipv4(1, b"")], RAW_IP)
    assert (udp_only.inner_src, udp_only.inner_protocol, udp_only.udp_dport) == ("10.0.0.1", "udp", None)
    assert six(icmp_only) == ("10.0.0.1", "10.0.0.2", "icmp", None)


def test_an_ipv4_ethertype_carrying_another_ip_version_is_malformed(tmp_path: Path) -> None:
    (p,) = decode(tmp_path, [eth(0x0800, ipv4(17, udp(4789, b""), first_byte=0x65))], ETHERNET)
    assert p.inner_protocol == "malformed"


def test_the_ipv4_total_length_ends_the_packet_before_the_link_padding(tmp_path: Path) -> None:
    """Total length 20: the 26 bytes after the header are Ethernet padding, not a UDP header, although
    they look like one to port 8472."""
    header_only = ipv4(17, udp(8472, VXLAN_100 + bytes(10)), total=20)
    (p,) = decode(tmp_path, [eth(0x0800, header_only)], ETHERNET)
    assert (p.inner_protocol, p.udp_dport, p.encapsulation) == ("udp", None, "none")


def test_an_ipv4_total_length_of_0_reads_to_the_end_of_the_frame(tmp_path: Path) -> None:
    """TSO hands the capture point frames with total length 0: the frame's end is the packet's."""
    (p,) = decode(tmp_path, [eth(0x0800, ipv4(17, udp(8472, VXLAN_100 + INNER), total=0))], ETHERNET)
    assert (p.encapsulation, p.vni, p.inner_protocol) == ("vxlan", 100, "icmp")


def test_only_the_fragment_offset_says_whether_an_ipv4_fragment_starts_the_packet(tmp_path: Path) -> None:
    """More-fragments set on offset 0 is the first fragment (ICMP type readable); offset 1 (8 bytes)
    is a later one, whose first byte is data."""
    echo = bytes([8, 0]) + bytes(6)
    first, later = decode(tmp_path, [ipv4(1, echo, frag=0x2000), ipv4(1, echo, frag=0x0001)], RAW_IP)
    assert (first.inner_protocol, first.icmp_type) == ("icmp", 8)
    assert (later.inner_protocol, later.icmp_type) == ("icmp", None)


# --- UDP and VXLAN ----------------------------------------------------------------------------------


def test_a_udp_header_with_no_payload_names_its_port(tmp_path: Path) -> None:
    (p,) = decode(tmp_path, [eth(0x0800, ipv4(17, udp(4789, b"")))], ETHERNET)
    assert (p.inner_protocol, p.udp_dport) == ("udp", 4789)


def test_the_udp_length_ends_the_datagram(tmp_path: Path) -> None:
    """UDP length 15 leaves 7 bytes, less than a VXLAN header, although more bytes follow in the IP
    packet; length 8 leaves none. Either way nothing is decoded as VXLAN."""
    short, bare = decode(
        tmp_path,
        [
            eth(0x0800, ipv4(17, udp(8472, VXLAN_100 + INNER, length=15))),
            eth(0x0800, ipv4(17, udp(8472, VXLAN_100 + INNER, length=8))),
        ],
        ETHERNET,
    )
    assert [(p.encapsulation, p.udp_dport) for p in (short, bare)] == [("none", 8472), ("none", 8472)]


def test_a_udp_length_of_0_reads_to_the_end_of_the_ip_packet(tmp_path: Path) -> None:
    """UDP GSO and jumbograms carry length 0: the IP packet's end is the datagram's."""
    (p,) = decode(tmp_path, [eth(0x0800, ipv4(17, udp(8472, VXLAN_100 + INNER, length=0)))], ETHERNET)
    assert (p.encapsulation, p.vni, p.inner_src) == ("vxlan", 100, "10.0.0.1")


def test_a_vxlan_header_with_nothing_after_it_is_still_vxlan(tmp_path: Path) -> None:
    (p,) = decode(tmp_path, [eth(0x0800, ipv4(17, udp(8472, VXLAN_100)))], ETHERNET)
    assert (p.encapsulation, p.vni, p.outer_src, p.inner_protocol) == ("vxlan", 100, "10.0.0.1", "truncated")


# --- IPv6 and its extension headers -----------------------------------------------------------------


def test_the_ipv6_payload_length_decides_whether_an_extension_header_fits(tmp_path: Path) -> None:
    """The same 16 bytes (hop-by-hop, then an echo request) after the fixed header; only the payload
    length differs. 7 and 1 cut the hop-by-hop header; 8 holds it exactly (the echo is padding);
    16 holds both; 0 is a jumbogram, read to the end of the frame."""
    rest = HOP_TO_ICMP6 + ECHO6
    got = decode(tmp_path, [ipv6(n, 0, rest) for n in (7, 1, 8, 16, 0)], RAW_IP)
    assert [six(p) for p in got] == [
        (SRC6, DST6, "truncated", None),
        (SRC6, DST6, "truncated", None),
        (SRC6, DST6, "icmpv6", None),
        (SRC6, DST6, "icmpv6", 128),
        (SRC6, DST6, "icmpv6", 128),
    ]


def test_an_extension_header_past_the_captured_bytes_is_truncated(tmp_path: Path) -> None:
    """Payload length 60 on the wire, 4 bytes captured; and a next header naming hop-by-hop with no
    byte of it captured. Neither is read from what is not there."""
    got = decode(tmp_path, [ipv6(60, 0, HOP_TO_ICMP6[:4]), ipv6(0, 0, b"")], RAW_IP)
    assert [six(p) for p in got] == [(SRC6, DST6, "truncated", None), (SRC6, DST6, "truncated", None)]


def test_an_extension_header_longer_than_the_payload_is_truncated(tmp_path: Path) -> None:
    """Hop-by-hop with length field 1 is 16 bytes; payload length 8 holds only half of it."""
    (p,) = decode(tmp_path, [ipv6(8, 0, bytes([58, 1]) + bytes(6) + ECHO6)], RAW_IP)
    assert six(p) == (SRC6, DST6, "truncated", None)


def test_an_ipv6_fragment_at_offset_1_is_a_later_fragment(tmp_path: Path) -> None:
    """Offset 1 (8 bytes) is the field's lowest unit: 0x0008 in the offset/flags word."""
    fragment = bytes([58, 0]) + (0x0008).to_bytes(2, "big") + bytes([0, 0, 0, 9])
    (p,) = decode(tmp_path, [ipv6(16, 44, fragment + ECHO6)], RAW_IP)
    assert six(p) == (SRC6, DST6, "icmpv6", None)


def test_an_authentication_header_is_measured_in_32_bit_words_plus_two(tmp_path: Path) -> None:
    """RFC 4302: AH's length field is its length in 4-byte units minus 2. Field 4 is 24 bytes
    (next header, length, reserved, SPI, sequence, a 12-byte ICV); every byte of it differs from
    the echo request's type, so reading from any other offset shows."""
    ah = bytes([58, 4, 0, 0]) + bytes([0x99, 0xAA, 0xBB, 0xCC]) + bytes([0, 0, 0, 1]) + bytes([0xEE]) * 12
    (p,) = decode(tmp_path, [ipv6(len(ah) + len(ECHO6), 51, ah + ECHO6)], RAW_IP)
    assert six(p) == (SRC6, DST6, "icmpv6", 128)


# --- pcap records -----------------------------------------------------------------------------------


def _pcap_header(major: int = 2, minor: int = 4, linktype: int = 1) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, major, minor, 0, 0, 262144, linktype)


def _record(data: bytes, caplen: int | None = None, wirelen: int | None = None) -> bytes:
    caplen = len(data) if caplen is None else caplen
    return struct.pack("<IIII", 0, 0, caplen, len(data) if wirelen is None else wirelen) + data


def test_a_pcap_version_is_read_unsigned(tmp_path: Path) -> None:
    _raises(
        tmp_path,
        _pcap_header(major=0xFFFF),
        pcap.MalformedCapture,
        "pcap version 65535.4: only version 2.x exists",
    )


def test_a_cut_pcap_record_header_names_its_index_and_byte(tmp_path: Path) -> None:
    frames = [bytes(f) for f in vxlan_ping(8472)]
    whole = pcap_bytes(frames)
    _raises(
        tmp_path,
        whole + _record(frames[0])[:5],
        pcap.TruncatedRecord,
        f"record 2 at byte {len(whole)} is truncated: its header has 5 of 16 bytes",
    )


def test_pcap_captured_lengths_at_and_over_the_limit(tmp_path: Path) -> None:
    """64 MiB may be claimed (then the record is cut); 4 GiB - 1 is a broken length field."""
    _raises(
        tmp_path,
        _pcap_header() + _record(b"abc", caplen=1 << 26),
        pcap.TruncatedRecord,
        f"record 0 at byte 24 is truncated: 3 of its {1 << 26} bytes",
    )
    _raises(
        tmp_path,
        _pcap_header() + _record(b"abc", caplen=0xFFFFFFFF),
        pcap.MalformedCapture,
        "record 0 at byte 24 claims 4294967295 captured bytes",
    )


def test_kuznetsov_pcap_records_have_24_byte_headers(tmp_path: Path) -> None:
    """The patched format (magic 0xa1b2cd34): 8 more bytes per record header (ifindex, protocol,
    packet type), written here in big-endian order."""
    frames = [bytes(f) for f in vxlan_ping(8472)]
    header = struct.pack(">IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 262144, 1)
    records = [struct.pack(">IIIIIHBB", 0, 0, len(f), len(f) + 4, 2, 0x0800, 0, 0) + f for f in frames]
    path = tmp_path / "kuznetsov.pcap"
    path.write_bytes(header + b"".join(records))
    assert [(p.encapsulation, p.inner_src, p.length) for p in analyze(path)] == [
        ("vxlan", POD_A, len(frames[0]) + 4),
        ("vxlan", POD_C, len(frames[1]) + 4),
    ]


# --- pcapng packet blocks ---------------------------------------------------------------------------

IDB = pcapng_block(1, struct.pack("<HHI", 1, 0, 262144))


def test_an_interface_link_type_is_read_unsigned(tmp_path: Path) -> None:
    idb = pcapng_block(1, struct.pack("<HHI", 65000, 0, 262144))
    epb = pcapng_block(6, struct.pack("<IIIII", 0, 0, 0, 4, 4) + b"abcd")
    (p,) = _read(tmp_path, SHB_ONLY + idb + epb)
    assert p.inner_protocol == "linktype-65000"


def test_interface_numbers_are_read_unsigned(tmp_path: Path) -> None:
    enhanced = pcapng_block(6, struct.pack("<IIIII", 0x80000000, 0, 0, len(FRAME), len(FRAME)) + FRAME)
    _raises(
        tmp_path,
        SHB_ONLY + IDB + enhanced,
        pcap.MalformedCapture,
        f"record 0 at byte {len(SHB_ONLY + IDB)}: interface 2147483648 was never described",
    )
    old = pcapng_block(2, struct.pack("<HHIIII", 0x8000, 0, 0, 0, len(FRAME), len(FRAME)) + FRAME)
    _raises(
        tmp_path,
        SHB_ONLY + IDB + old,
        pcap.MalformedCapture,
        f"record 0 at byte {len(SHB_ONLY + IDB)}: interface 32768 was never described",
    )


def test_wire_lengths_are_their_own_field_and_unsigned(tmp_path: Path) -> None:
    """Each block's original length, not its captured length or a timestamp: a 64-byte snap of a
    1514-byte frame, a simple block of a 2 GiB GSO claim."""
    snap = FRAME[:64]
    enhanced = pcapng_block(6, struct.pack("<IIIII", 0, 7, 9, len(snap), 1514) + snap)
    old = pcapng_block(2, struct.pack("<HHIIII", 0, 3, 7, 9, len(snap), 1514) + snap)
    simple = pcapng_block(3, struct.pack("<I", 0x80000000) + FRAME)
    got = _read(tmp_path, SHB_ONLY + IDB + enhanced + old + simple)
    assert [(p.length, p.outer_src) for p in got] == [(1514, NODE_A), (1514, NODE_A), (0x80000000, NODE_A)]
    assert got[2].inner_src == POD_A


def test_a_packet_block_of_its_fixed_fields_alone_is_an_empty_frame(tmp_path: Path) -> None:
    (p,) = _read(tmp_path, SHB_ONLY + IDB + pcapng_block(6, struct.pack("<IIIII", 0, 0, 0, 0, 98)))
    assert (p.length, p.inner_protocol) == (98, "truncated")


def test_one_captured_byte_more_than_the_block_holds_is_refused(tmp_path: Path) -> None:
    data = FRAME[:64]  # a multiple of 4: the block has no padding the count could borrow
    block = pcapng_block(6, struct.pack("<IIIII", 0, 0, 0, 65, 98) + data)
    _raises(
        tmp_path,
        SHB_ONLY + IDB + block,
        pcap.MalformedCapture,
        f"record 0 at byte {len(SHB_ONLY + IDB)}: 65 captured bytes in a block of 84",
    )
