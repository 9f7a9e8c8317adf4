"""verify.pcap on captures nobody in this project made (tcpdump's test suite) and on crafted ones.

The crafted pcaps pin the lab's own shapes (Cilium's VXLAN on 8472 with a non-zero VNI between pod
IPs, Geneve on 6081, plain pod ICMP); the shared ones prove the decoder on real-world traffic.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, CookedLinux, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from verify import pcap
from verify.__main__ import main
from verify.pcap import PacketInfo, analyze, to_json

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "pcaps"

NODE_A, NODE_B = "172.31.1.3", "172.31.1.4"
POD_A, POD_C = "10.244.1.10", "10.244.2.10"
LINKTYPE_LINUX_SLL = 113


def shared(name: str) -> Path:
    """A capture from ../shared/testdata/pcaps; a user's clone does not have that folder."""
    path = SHARED / name
    if not SHARED.is_dir():
        pytest.skip(f"shared captures not present at {SHARED} (only in the project's workspace)")
    if not path.is_file():
        pytest.skip(f"{path} is missing from the shared captures")
    return path


def write(tmp_path: Path, name: str, packets: Sequence[Packet], linktype: int | None = None) -> Path:
    path = tmp_path / name
    if linktype is None:
        wrpcap(str(path), packets)
    else:
        wrpcap(str(path), packets, linktype=linktype)
    return path


def pcap_bytes(records: Sequence[bytes | tuple[bytes, int]], linktype: int = 1) -> bytes:
    """A classic little-endian pcap, written byte by byte so a test controls every length field.

    A record is its captured bytes, or (captured bytes, length on the wire) for a snaplen-cut frame.
    """
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for ts, record in enumerate(records):
        data, wirelen = record if isinstance(record, tuple) else (record, len(record))
        out.append(struct.pack("<IIII", 1_700_000_000 + ts, 0, len(data), wirelen) + data)
    return b"".join(out)


def pcapng_block(block_type: int, body: bytes, endian: str = "<") -> bytes:
    """One pcapng block: type, total length, body padded to 32 bits, total length again."""
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(endian + "II", block_type, length) + body + struct.pack(endian + "I", length)


def pcapng_bytes(frames: Sequence[bytes], linktype: int = 1, endian: str = "<") -> bytes:
    """A pcapng section: its header, one interface, one enhanced packet block per frame."""
    shb = pcapng_block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)
    idb = pcapng_block(1, struct.pack(endian + "HHI", linktype, 0, 262144), endian)
    epbs = [
        pcapng_block(6, struct.pack(endian + "IIIII", 0, 0, ts, len(f), len(f)) + f, endian)
        for ts, f in enumerate(frames)
    ]
    return shb + idb + b"".join(epbs)


def underlay(src: str, dst: str, sport: int, dport: int) -> Packet:
    return (
        Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04")
        / IP(src=src, dst=dst, ttl=64)
        / UDP(sport=sport, dport=dport)
    )


def pod_icmp(src: str, dst: str, icmp_type: int, seq: int = 1) -> Packet:
    """What `ping` sends: 56 bytes of payload, 98-byte frames."""
    return (
        Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:01")
        / IP(src=src, dst=dst, ttl=63)
        / ICMP(type=icmp_type, id=7, seq=seq)
        / Raw(bytes(range(56)))
    )


def vxlan_ping(port: int, vni: int = 4242) -> list[Packet]:
    """pod-a -> pod-c and the reply, in VXLAN between two nodes, as Cilium sends it."""
    return [
        underlay(NODE_A, NODE_B, 40001, port) / VXLAN(flags=0x08, vni=vni) / pod_icmp(POD_A, POD_C, 8),
        underlay(NODE_B, NODE_A, 40002, port) / VXLAN(flags=0x08, vni=vni) / pod_icmp(POD_C, POD_A, 0),
    ]


# --- real-world captures ------------------------------------------------------------------------


def test_vxlan_on_8472_decodes_vni_100_with_inner_icmp_and_arp() -> None:
    packets = analyze(shared("vxlan_port_8472.pcap"))
    assert len(packets) == 10
    assert {p.encapsulation for p in packets} == {"vxlan"}
    assert {p.udp_dport for p in packets} == {8472}
    assert {p.vni for p in packets} == {100}
    assert Counter(p.inner_protocol for p in packets) == {"icmp": 8, "arp": 2}
    first = packets[0]
    assert (first.outer_src, first.outer_dst) == ("192.168.203.1", "192.168.202.1")
    assert (first.inner_src, first.inner_dst, first.icmp_type) == ("192.168.203.3", "192.168.203.5", 8)
    assert packets[3].icmp_type == 0
    arp = packets[1]
    assert (arp.inner_src, arp.inner_dst, arp.icmp_type) == ("192.168.203.5", "192.168.203.3", None)
    assert [p.index for p in packets] == list(range(10))
    assert {p.length for p in packets} == {148, 92}


def test_vxlan_on_8472_is_plain_udp_when_the_lab_port_is_4789() -> None:
    packets = analyze(shared("vxlan_port_8472.pcap"), vxlan_port=4789)
    assert {p.encapsulation for p in packets} == {"none"}
    assert {p.inner_protocol for p in packets} == {"udp"}
    assert {p.udp_dport for p in packets} == {8472}
    assert all(p.vni is None and p.outer_src is None for p in packets)
    # The outer header is all there is: its addresses are what a plain packet reports.
    assert (packets[0].inner_src, packets[0].inner_dst) == ("192.168.203.1", "192.168.202.1")


def test_vxlan_on_4789_is_vxlan_only_when_configured() -> None:
    path = shared("vxlan.pcap")
    default = analyze(path)
    assert {p.encapsulation for p in default} == {"none"}
    assert {p.udp_dport for p in default} == {4789}
    iana = analyze(path, vxlan_port=4789)
    assert {p.encapsulation for p in iana} == {"vxlan"}
    assert {p.vni for p in iana} == {100}
    assert {p.inner_protocol for p in iana} == {"icmp", "arp"}


def test_geneve_vnis_and_inner_protocols() -> None:
    packets = analyze(shared("geneve.pcap"))
    assert len(packets) == 39
    assert {p.encapsulation for p in packets} == {"geneve"}
    assert {p.udp_dport for p in packets} == {6081}
    by_direction = {(p.outer_src, p.inner_src, p.vni) for p in packets}
    assert by_direction == {("20.0.0.1", "30.0.0.1", 0xA), ("20.0.0.2", "30.0.0.2", 0xB)}
    assert Counter(p.inner_protocol for p in packets) == {"tcp": 33, "icmp": 6}
    assert {p.icmp_type for p in packets if p.inner_protocol == "icmp"} == {8, 0}


def test_geneve_with_options_and_vni_0() -> None:
    (packet,) = analyze(shared("geneve-gcp.pcap"))
    assert packet.encapsulation == "geneve"
    assert packet.vni == 0
    assert (packet.outer_src, packet.outer_dst) == ("192.168.100.254", "192.168.100.3")
    # 40 bytes of options are skipped, not mistaken for the inner header.
    assert (packet.inner_src, packet.inner_dst, packet.inner_protocol) == (
        "192.168.100.2",
        "192.168.100.1",
        "tcp",
    )


def test_geneve_is_not_decoded_on_another_port() -> None:
    packets = analyze(shared("geneve.pcap"), geneve_port=6082)
    assert {p.encapsulation for p in packets} == {"none"}
    assert {p.inner_protocol for p in packets} == {"udp"}


@pytest.mark.parametrize(
    ("name", "vxlan_port", "encapsulation"),
    [("gso-ipv4-vxlan-ipv4.pcap", 4789, "vxlan"), ("gso-ipv4-geneve-ipv4.pcap", 8472, "geneve")],
)
def test_gso_frames_keep_their_real_length(name: str, vxlan_port: int, encapsulation: str) -> None:
    (packet,) = analyze(shared(name), vxlan_port=vxlan_port)
    assert packet.length == 7106  # far above any MTU: one GSO super-frame, as the kernel handed it over
    assert packet.encapsulation == encapsulation
    assert packet.vni == 5001
    assert (packet.inner_src, packet.inner_dst, packet.inner_protocol) == (
        "192.168.1.2",
        "192.168.1.1",
        "tcp",
    )


# --- crafted captures -----------------------------------------------------------------------------


def test_crafted_vxlan_8472_between_pod_ips(tmp_path: Path) -> None:
    packets = analyze(write(tmp_path, "vxlan.pcap", vxlan_ping(8472, vni=4242)))
    assert packets == [
        PacketInfo(0, "vxlan", NODE_A, NODE_B, 8472, 4242, POD_A, POD_C, "icmp", 8, 148, 0x08),
        PacketInfo(1, "vxlan", NODE_B, NODE_A, 8472, 4242, POD_C, POD_A, "icmp", 0, 148, 0x08),
    ]


def test_crafted_vxlan_8472_is_not_vxlan_with_port_4789(tmp_path: Path) -> None:
    path = write(tmp_path, "vxlan.pcap", vxlan_ping(8472))
    packets = analyze(path, vxlan_port=4789)
    assert [p.encapsulation for p in packets] == ["none", "none"]
    assert [(p.inner_src, p.inner_dst, p.inner_protocol, p.vni) for p in packets] == [
        (NODE_A, NODE_B, "udp", None),
        (NODE_B, NODE_A, "udp", None),
    ]
    # Nothing leaked from that call into the next one.
    assert [p.encapsulation for p in analyze(path)] == ["vxlan", "vxlan"]


def test_vxlan_on_a_port_scapy_does_not_know(tmp_path: Path) -> None:
    path = write(tmp_path, "vxlan-9999.pcap", vxlan_ping(9999, vni=7))
    assert [p.encapsulation for p in analyze(path)] == ["none", "none"]
    decoded = analyze(path, vxlan_port=9999)
    assert [(p.encapsulation, p.vni, p.inner_src, p.icmp_type) for p in decoded] == [
        ("vxlan", 7, POD_A, 8),
        ("vxlan", 7, POD_C, 0),
    ]


def test_crafted_geneve_6081_with_an_option(tmp_path: Path) -> None:
    option = GeneveOptions(classid=0x0102, type=0x80, data=b"\x00\x00\x01\x00")
    frames = [
        underlay(NODE_A, NODE_B, 50001, 6081)
        / GENEVE(vni=0x10203, proto=0x6558, options=[option])
        / pod_icmp(POD_A, POD_C, 8),
        underlay(NODE_B, NODE_A, 50002, 6081) / GENEVE(vni=0x10204, proto=0x6558) / pod_icmp(POD_C, POD_A, 0),
    ]
    packets = analyze(write(tmp_path, "geneve.pcap", frames))
    assert [(p.encapsulation, p.udp_dport, p.vni) for p in packets] == [
        ("geneve", 6081, 0x10203),
        ("geneve", 6081, 0x10204),
    ]
    assert [(p.outer_src, p.outer_dst, p.inner_src, p.inner_dst, p.icmp_type) for p in packets] == [
        (NODE_A, NODE_B, POD_A, POD_C, 8),
        (NODE_B, NODE_A, POD_C, POD_A, 0),
    ]
    assert packets[0].length == len(frames[0])


def test_geneve_carrying_ip_without_ethernet(tmp_path: Path) -> None:
    frame = (
        underlay(NODE_A, NODE_B, 50001, 6081)
        / GENEVE(vni=5, proto=0x0800)
        / IP(src=POD_A, dst=POD_C)
        / TCP(dport=80)
    )
    (packet,) = analyze(write(tmp_path, "geneve-ip.pcap", [frame]))
    assert (packet.encapsulation, packet.inner_src, packet.inner_dst, packet.inner_protocol) == (
        "geneve",
        POD_A,
        POD_C,
        "tcp",
    )


def test_plain_pod_icmp(tmp_path: Path) -> None:
    frames = [pod_icmp(POD_A, POD_C, 8), pod_icmp(POD_C, POD_A, 0)]
    packets = analyze(write(tmp_path, "native.pcap", frames))
    assert packets == [
        PacketInfo(0, "none", None, None, None, None, POD_A, POD_C, "icmp", 8, 98),
        PacketInfo(1, "none", None, None, None, None, POD_C, POD_A, "icmp", 0, 98),
    ]


def test_other_traffic_is_named(tmp_path: Path) -> None:
    frames = [
        underlay(NODE_A, NODE_B, 5353, 53) / Raw(b"\x00" * 12),
        Ether(src="02:00:00:00:00:03", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=NODE_A, pdst=NODE_B),
        Ether(type=0x88CC) / Raw(b"\x02\x07\x04"),
        Ether() / IP(src=POD_A, dst=POD_C, proto=47) / Raw(b"\x00\x00\x08\x00"),
        underlay(NODE_A, NODE_B, 40001, 8472) / Raw(b"\x08\x00"),  # too short for a VXLAN header
    ]
    packets = analyze(write(tmp_path, "mixed.pcap", frames))
    assert [(p.encapsulation, p.inner_protocol, p.udp_dport) for p in packets] == [
        ("none", "udp", 53),
        ("none", "arp", None),
        ("none", "lldp", None),
        ("none", "gre", None),
        ("none", "udp", 8472),
    ]
    assert (packets[1].inner_src, packets[1].inner_dst) == (NODE_A, NODE_B)
    assert (packets[2].inner_src, packets[2].inner_dst) == (None, None)


def test_linux_cooked_capture(tmp_path: Path) -> None:
    """`tcpdump -i any` writes Linux cooked headers, not Ethernet."""
    frames = [
        CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, proto=0x0800)
        / IP(src=NODE_A, dst=NODE_B)
        / UDP(sport=40001, dport=8472)
        / VXLAN(vni=99)
        / pod_icmp(POD_A, POD_C, 8)
    ]
    (packet,) = analyze(write(tmp_path, "any.pcap", frames, linktype=LINKTYPE_LINUX_SLL))
    assert (packet.encapsulation, packet.vni, packet.outer_src, packet.inner_dst, packet.icmp_type) == (
        "vxlan",
        99,
        NODE_A,
        POD_C,
        8,
    )


def test_same_port_for_both_tunnels_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "vxlan.pcap", vxlan_ping(8472))
    with pytest.raises(ValueError, match="both 6081"):
        analyze(path, vxlan_port=6081)


def test_to_json_is_plain_json() -> None:
    info = PacketInfo(3, "vxlan", NODE_A, NODE_B, 8472, 4242, POD_A, POD_C, "icmp", 8, 148, 0x88)
    data = to_json(info)
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "index": 3,
        "encapsulation": "vxlan",
        "outer_src": NODE_A,
        "outer_dst": NODE_B,
        "udp_dport": 8472,
        "vni": 4242,
        "inner_src": POD_A,
        "inner_dst": POD_C,
        "inner_protocol": "icmp",
        "icmp_type": 8,
        "length": 148,
        "tunnel_flags": 0x88,
    }


def test_cli_prints_one_json_object_per_packet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "vxlan.pcap", vxlan_ping(8472, vni=12))
    assert main(["pcap", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [to_json(p) for p in pcap.analyze(path)]
    assert [json.loads(line)["vni"] for line in lines] == [12, 12]
    assert main(["pcap", str(path), "--vxlan-port", "4789"]) == 0
    assert {json.loads(line)["encapsulation"] for line in capsys.readouterr().out.splitlines()} == {"none"}
