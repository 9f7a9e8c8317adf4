"""Captures turned into facts: which packets were encapsulated, on which port, carrying what.

The pcap/pcapng container and every header are read here byte by byte, with no scapy and no
tshark, for three reasons found by comparing with tshark on other people's captures:

- scapy's VXLAN layer grows its header when the GBP (0x80) or GPE (0x04) flag is set, which moves
  the inner frame and corrupts the VNI; VXLAN's header is 8 bytes whatever its flags say;
- a layer scapy does not bind (ARP straight on Geneve, UDP behind IPv6 extension headers) is lost;
- a file that is cut short must be an error naming the file, never a packet with made-up fields.

Tunnels are decoded on the UDP destination port the *lab* uses (Cilium's 8472 unless told
otherwise), never on ports some library binds globally, so `vxlan_port=4789` turns 8472 traffic into
plain UDP and no call changes how the next one decodes. A header is decoded only when every byte
of it was captured; what a snap length cut off is reported as "truncated", not guessed.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

Encapsulation = Literal["vxlan", "geneve", "none"]

VXLAN_HEADER_LEN = 8
GENEVE_HEADER_LEN = 8

# Fixed names, independent of the host's /etc/protocols.
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
_ETHER_TYPES = {0x88CC: "lldp"}  # protocols that carry no IP address; any other is named by number

ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6 = 0x0800, 0x0806, 0x86DD
ETHERTYPE_TRANSPARENT_ETHERNET = 0x6558  # Geneve's protocol type for an Ethernet frame
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad (QinQ) and the pre-standard QinQ tag
_IPV6_EXTENSIONS_8 = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_IPV6_FRAGMENT, _IPV6_AH = 44, 51


@dataclass(frozen=True)
class PacketInfo:
    """One captured frame, reduced to what a datapath check decides on.

    For encapsulated frames `outer_*` describe the underlay (node to node) and `inner_*` the
    tunnelled packet (pod to pod). For plain frames `outer_*` are None and `inner_*` are the IP
    addresses on the wire, so "pod IPs seen" reads the same in both cases. For ARP the addresses
    are the sender/target protocol addresses.

    `inner_protocol` names what the (inner) IP header carries: "icmp", "tcp", "udp", "icmpv6", ...
    (after any IPv6 extension headers), or "ip-proto-N"; "arp"; a protocol that carries no IP
    address by name ("lldp") or number ("ethertype-0x894f"); "truncated" when the capture stops
    inside a header (snap length), "malformed" when a header contradicts itself. `tunnel_flags` is
    the tunnel header's flags byte as it was on the wire: VXLAN byte 0 (0x08 VNI valid, 0x80 GBP,
    0x04 GPE), Geneve byte 1 (0x80 OAM, 0x40 critical options).
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
    tunnel_flags: int | None = None


def to_json(p: PacketInfo) -> dict[str, Any]:
    """A plain dict (JSON-ready) of one packet, for reports and the CLI."""
    return dataclasses.asdict(p)


# --- errors: one class per way a file can fail to be a capture ---------------------------------


class CaptureError(OSError):
    """A file that cannot be read as a capture.

    An OSError, because to a check it is evidence that could not be read: checks already turn an
    OSError into "could not collect the evidence". `exit_code` is what `verify pcap` exits with.
    """

    exit_code: ClassVar[int] = 8
    summary: ClassVar[str] = "a malformed capture (lengths that contradict each other)"

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class EmptyCapture(CaptureError):
    exit_code = 4
    summary = "the file is empty (0 bytes)"


class NotACapture(CaptureError):
    exit_code = 5
    summary = "the file is not a pcap or pcapng capture"


class TruncatedHeader(CaptureError):
    exit_code = 6
    summary = "the file header is cut short"


class TruncatedRecord(CaptureError):
    exit_code = 7
    summary = "a record is cut short (the records before it are decoded)"


class MalformedCapture(CaptureError):
    pass


CAPTURE_ERRORS: tuple[type[CaptureError], ...] = (
    EmptyCapture,
    NotACapture,
    TruncatedHeader,
    TruncatedRecord,
    MalformedCapture,
)


# --- the container: pcap and pcapng ---------------------------------------------------------------

# magic -> (byte order, record header length). Nanosecond files differ only in the fraction unit;
# Kuznetsov's patched format (0xa1b2cd34) adds 8 bytes to each record header.
_PCAP_MAGIC = {
    bytes.fromhex("d4c3b2a1"): ("<", 16),
    bytes.fromhex("a1b2c3d4"): (">", 16),
    bytes.fromhex("4d3cb2a1"): ("<", 16),
    bytes.fromhex("a1b23c4d"): (">", 16),
    bytes.fromhex("34cdb2a1"): ("<", 24),
    bytes.fromhex("a1b2cd34"): (">", 24),
}
_PCAP_HEADER_LEN = 24
_PCAPNG_SHB = bytes.fromhex("0a0d0d0a")
_PCAPNG_SHB_TYPE = 0x0A0D0D0A  # a palindrome: the same in either byte order
_PCAPNG_BYTE_ORDER = 0x1A2B3C4D
_PCAPNG_SHB_MIN = 28
_PCAPNG_IDB, _PCAPNG_OLD_PACKET, _PCAPNG_SIMPLE_PACKET, _PCAPNG_ENHANCED_PACKET = 1, 2, 3, 6
# Far above any frame (a BIG TCP GSO frame is 512 KiB): a longer record is a corrupt length field.
_MAX_RECORD = 1 << 26


@dataclass(frozen=True)
class _Frame:
    linktype: int
    data: bytes
    wirelen: int


class _Source:
    """A binary stream read in bounded chunks, counting the offset for error messages."""

    def __init__(self, stream: BinaryIO, path: str | Path, pending: bytes = b"") -> None:
        self.stream = stream
        self.path = path
        self.pending = pending
        self.offset = 0

    def read(self, n: int) -> bytes:
        """n bytes, or fewer only at the end of the file."""
        chunks = [self.pending[:n]]
        self.pending = self.pending[n:]
        missing = n - len(chunks[0])
        while missing > 0:
            chunk = self.stream.read(min(missing, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            missing -= len(chunk)
        data = b"".join(chunks)
        self.offset += len(data)
        return data


def _pcap_frames(src: _Source, magic: bytes) -> Iterator[_Frame]:
    endian, record_len = _PCAP_MAGIC[magic]
    rest = src.read(_PCAP_HEADER_LEN - len(magic))
    if len(rest) < _PCAP_HEADER_LEN - len(magic):
        got = len(magic) + len(rest)
        raise TruncatedHeader(
            src.path, f"the pcap file header is truncated: {got} of {_PCAP_HEADER_LEN} bytes"
        )
    major, minor, _zone, _sigfigs, _snaplen, network = struct.unpack(endian + "HHiIII", rest)
    if major != 2:
        raise MalformedCapture(src.path, f"pcap version {major}.{minor}: only version 2.x exists")
    linktype = network & 0xFFFF  # the upper bits describe a frame check sequence, not the link
    index = 0
    while True:
        start = src.offset
        header = src.read(record_len)
        if not header:
            return
        if len(header) < record_len:
            raise TruncatedRecord(
                src.path,
                f"record {index} at byte {start} is truncated: its header has {len(header)} of {record_len} bytes",
            )
        caplen, wirelen = struct.unpack(endian + "II", header[8:16])
        if caplen > _MAX_RECORD:
            raise MalformedCapture(src.path, f"record {index} at byte {start} claims {caplen} captured bytes")
        data = src.read(caplen)
        if len(data) < caplen:
            raise TruncatedRecord(
                src.path, f"record {index} at byte {start} is truncated: {len(data)} of its {caplen} bytes"
            )
        yield _Frame(linktype, data, wirelen or caplen)
        index += 1


def _pcapng_block(src: _Source, endian: str, index: int) -> tuple[str, int, bytes] | None:
    """(byte order, block type, body) of the next block; None at the end of the file."""
    start = src.offset
    first = start == 0
    head = src.read(8)
    if not head:
        return None
    section = head[:4] == _PCAPNG_SHB
    if section:  # a section header says its own byte order, right after its length
        head += src.read(4)
        if len(head) == 12:
            endian = _byte_order(src, head[8:12], start, first)
    if len(head) < (12 if section else 8):
        raise _cut_block(src, first, index, start, len(head), None)
    block_type, total = struct.unpack(endian + "II", head[:8])
    if total < 12 or total % 4 or total > _MAX_RECORD or (section and total < _PCAPNG_SHB_MIN):
        raise MalformedCapture(src.path, f"block at byte {start}: block length {total} is impossible")
    rest = src.read(total - len(head))
    if len(rest) < total - len(head):
        raise _cut_block(src, first, index, start, len(head) + len(rest), total)
    block = head + rest
    (trailer,) = struct.unpack(endian + "I", block[-4:])
    if trailer != total:
        raise MalformedCapture(src.path, f"block at byte {start}: lengths {total} and {trailer} disagree")
    return endian, block_type, block[8:-4]


def _byte_order(src: _Source, magic: bytes, start: int, first: bool) -> str:
    for order in "<>":
        if struct.unpack(order + "I", magic)[0] == _PCAPNG_BYTE_ORDER:
            return order
    problem = f"the section header at byte {start} has no byte-order magic"
    raise (NotACapture if first else MalformedCapture)(src.path, problem)


def _cut_block(
    src: _Source, first: bool, index: int, start: int, got: int, total: int | None
) -> CaptureError:
    of = f"{got} of {total}" if total is not None else f"{got} of at least 12"
    if first:
        return TruncatedHeader(src.path, f"the pcapng section header is truncated: {of} bytes")
    return TruncatedRecord(src.path, f"record {index} at byte {start} is truncated: its block has {of} bytes")


def _pcapng_frames(src: _Source) -> Iterator[_Frame]:
    endian = "<"
    linktypes: list[int] = []
    index = 0
    while True:
        start = src.offset
        block = _pcapng_block(src, endian, index)
        if block is None:
            return
        endian, block_type, body = block
        if block_type == _PCAPNG_SHB_TYPE:
            linktypes = []  # a new section: its interfaces are numbered from 0 again
            continue
        if block_type == _PCAPNG_IDB:
            if len(body) < 8:
                raise MalformedCapture(src.path, f"interface block at byte {start} has {len(body)} bytes")
            linktypes.append(struct.unpack(endian + "H", body[:2])[0])
            continue
        if block_type == _PCAPNG_ENHANCED_PACKET:
            fixed, layout = 20, "IIIII"
        elif block_type == _PCAPNG_OLD_PACKET:
            fixed, layout = 20, "HHIIII"
        elif block_type == _PCAPNG_SIMPLE_PACKET:
            fixed, layout = 4, "I"
        else:
            continue  # statistics, name resolution, custom blocks: nothing to decode
        if len(body) < fixed:
            raise MalformedCapture(
                src.path, f"record {index} at byte {start}: packet block of {len(body)} bytes"
            )
        fields = struct.unpack(endian + layout, body[:fixed])
        if block_type == _PCAPNG_SIMPLE_PACKET:
            interface, wirelen = 0, fields[0]
            caplen = min(wirelen, len(body) - fixed)
        else:
            interface, caplen, wirelen = fields[0], fields[-2], fields[-1]
        if interface >= len(linktypes):
            raise MalformedCapture(
                src.path, f"record {index} at byte {start}: interface {interface} was never described"
            )
        if caplen > len(body) - fixed:
            raise MalformedCapture(
                src.path, f"record {index} at byte {start}: {caplen} captured bytes in a block of {len(body)}"
            )
        yield _Frame(linktypes[interface], body[fixed : fixed + caplen], wirelen or caplen)
        index += 1


def _frames(path: str | Path) -> Iterator[_Frame]:
    """Every frame of a pcap or pcapng file; a CaptureError as soon as the file stops making sense."""
    with open(path, "rb") as stream:
        magic = stream.read(4)
        src = _Source(stream, path, pending=magic)
        if not magic:
            raise EmptyCapture(path, "the file is empty (0 bytes), not a capture")
        if magic in _PCAP_MAGIC:
            src.read(4)
            yield from _pcap_frames(src, magic)
        elif magic == _PCAPNG_SHB:
            yield from _pcapng_frames(src)
        elif len(magic) < 4 and _PCAPNG_SHB.startswith(magic):
            raise TruncatedHeader(
                path, f"the file header is truncated: {len(magic)} of {_PCAPNG_SHB_MIN} bytes"
            )
        elif len(magic) < 4 and any(m.startswith(magic) for m in _PCAP_MAGIC):
            raise TruncatedHeader(
                path, f"the file header is truncated: {len(magic)} of {_PCAP_HEADER_LEN} bytes"
            )
        else:
            raise NotACapture(path, f"not a pcap or pcapng capture (it starts with 0x{magic.hex()})")


# --- the headers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Net:
    """A network layer read as far as it was captured; `udp` when a whole UDP header follows it."""

    src: str | None
    dst: str | None
    protocol: str
    icmp_type: int | None = None
    udp: tuple[int, bytes] | None = None  # (destination port, datagram payload)


_TRUNCATED = _Net(None, None, "truncated")
_MALFORMED = _Net(None, None, "malformed")


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")


def _ether_name(ethertype: int) -> str:
    return _ETHER_TYPES.get(ethertype, f"ethertype-0x{ethertype:04x}")


def _after_tags(data: bytes, ethertype: int, offset: int) -> tuple[int, bytes] | str:
    """(protocol type, payload) past any VLAN tags, or why there is none."""
    while ethertype in _VLAN_TAGS:
        if len(data) < offset + 4:
            return "truncated"
        ethertype, offset = _u16(data, offset + 2), offset + 4
    if ethertype < 0x0600:  # an 802.3 length field: LLC follows, not an EtherType
        return "llc"
    return ethertype, data[offset:]


def _ethernet(data: bytes) -> tuple[int, bytes] | str:
    if len(data) < 14:
        return "truncated"
    return _after_tags(data, _u16(data, 12), 14)


def _by_ip_version(data: bytes) -> tuple[int, bytes] | str:
    if not data:
        return "truncated"
    version = data[0] >> 4
    if version not in (4, 6):
        return "malformed"
    return (ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6), data


def _cooked(header_len: int, proto_at: int, data: bytes) -> tuple[int, bytes] | str:
    """Linux cooked headers (`tcpdump -i any`): a fixed length, the protocol type at an offset.

    A plain function bound with functools.partial, not a closure made at import, so each call runs
    the code as it is then (which mutation testing relies on)."""
    return "truncated" if len(data) < header_len else _after_tags(data, _u16(data, proto_at), header_len)


def _loopback(data: bytes) -> tuple[int, bytes] | str:
    """BSD loopback: a 4-byte address family, in either byte order."""
    if len(data) < 4:
        return "truncated"
    family = min(int.from_bytes(data[:4], "little"), int.from_bytes(data[:4], "big"))
    if family == 2:
        return ETHERTYPE_IPV4, data[4:]
    if family in (10, 24, 28, 30):  # AF_INET6 on Linux, the BSDs and macOS
        return ETHERTYPE_IPV6, data[4:]
    return f"af-{family}"


# Link types as written in capture files (LINKTYPE_*): what Linux tools produce.
_LINK_TYPES: dict[int, Callable[[bytes], tuple[int, bytes] | str]] = {
    0: _loopback,  # NULL
    1: _ethernet,  # ETHERNET
    101: _by_ip_version,  # RAW
    108: _loopback,  # LOOP
    113: functools.partial(_cooked, 16, 14),  # LINUX_SLL
    228: _by_ip_version,  # IPV4
    229: _by_ip_version,  # IPV6
    276: functools.partial(_cooked, 20, 0),  # LINUX_SLL2
}


def _link(linktype: int, data: bytes) -> tuple[int, bytes] | str:
    """(protocol type, payload) the link layer carries, or the name of what could not be read."""
    read = _LINK_TYPES.get(linktype)
    return read(data) if read is not None else f"linktype-{linktype}"


def _transport(src: str, dst: str, proto: int, payload: bytes, first: bool, icmp: int) -> _Net:
    """What an IP header carries; only a first (or only) fragment starts with its L4 header."""
    name = _IP_PROTOCOLS.get(proto, f"ip-proto-{proto}")
    if not first:
        return _Net(src, dst, name)
    if proto == icmp:
        return _Net(src, dst, name, icmp_type=payload[0] if payload else None)
    if proto == 17 and len(payload) >= 8:
        length = _u16(payload, 4)
        end = length if 8 <= length <= len(payload) else len(payload)  # shorter: cut by the snap length
        return _Net(src, dst, name, udp=(_u16(payload, 2), payload[8:end]))
    return _Net(src, dst, name)


def _ipv4(data: bytes) -> _Net:
    if len(data) < 20:
        return _TRUNCATED
    header_len = (data[0] & 0x0F) * 4
    if data[0] >> 4 != 4 or header_len < 20:
        return _MALFORMED
    if len(data) < header_len:
        return _TRUNCATED
    total = _u16(data, 2)
    end = total if header_len <= total <= len(data) else len(data)  # 0 in a TSO frame
    first = _u16(data, 6) & 0x1FFF == 0
    src, dst = str(ipaddress.IPv4Address(data[12:16])), str(ipaddress.IPv4Address(data[16:20]))
    return _transport(src, dst, data[9], data[header_len:end], first, icmp=1)


def _ipv6(data: bytes) -> _Net:
    """IPv6, walking the extension headers to the upper-layer header."""
    if len(data) < 40:
        return _TRUNCATED
    if data[0] >> 4 != 6:
        return _MALFORMED
    payload_len = _u16(data, 4)
    end = 40 + payload_len if 0 < payload_len <= len(data) - 40 else len(data)  # 0: a jumbogram
    src, dst = str(ipaddress.IPv6Address(data[8:24])), str(ipaddress.IPv6Address(data[24:40]))
    next_header, offset, first = data[6], 40, True
    while next_header in (*_IPV6_EXTENSIONS_8, _IPV6_FRAGMENT, _IPV6_AH):
        if offset + 8 > end:
            return _Net(src, dst, "truncated")
        if next_header == _IPV6_FRAGMENT:
            first = _u16(data, offset + 2) >> 3 == 0
            length = 8
        elif next_header == _IPV6_AH:
            length = (data[offset + 1] + 2) * 4
        else:
            length = (data[offset + 1] + 1) * 8
        if offset + length > end:
            return _Net(src, dst, "truncated")
        next_header, offset = data[offset], offset + length
        if not first:
            break  # a later fragment: what follows is the middle of the upper-layer packet
    return _transport(src, dst, next_header, data[offset:end], first, icmp=58)


def _arp(data: bytes) -> _Net:
    if len(data) < 8:
        return _Net(None, None, "truncated")
    proto_type, hw_len, proto_len = _u16(data, 2), data[4], data[5]
    if len(data) < 8 + 2 * hw_len + 2 * proto_len:
        return _Net(None, None, "truncated")
    if proto_type != ETHERTYPE_IPV4 or proto_len != 4:
        return _Net(None, None, "arp")
    sender, target = 8 + hw_len, 8 + 2 * hw_len + 4
    return _Net(
        str(ipaddress.IPv4Address(data[sender : sender + 4])),
        str(ipaddress.IPv4Address(data[target : target + 4])),
        "arp",
    )


def _network(link: tuple[int, bytes] | str) -> _Net:
    if isinstance(link, str):
        return _Net(None, None, link)
    ethertype, data = link
    if ethertype == ETHERTYPE_IPV4:
        return _ipv4(data)
    if ethertype == ETHERTYPE_IPV6:
        return _ipv6(data)
    if ethertype == ETHERTYPE_ARP:
        return _arp(data)
    return _Net(None, None, _ether_name(ethertype))


def _vxlan(payload: bytes) -> tuple[int, int, _Net] | None:
    """(VNI, flags, inner): RFC 7348's fixed 8 bytes, whatever the flags; Ethernet follows."""
    if len(payload) < VXLAN_HEADER_LEN:
        return None
    return int.from_bytes(payload[4:7], "big"), payload[0], _network(_ethernet(payload[8:]))


def _geneve(payload: bytes) -> tuple[int, int, _Net] | None:
    """(VNI, flags, inner): RFC 8926, 8 bytes plus options; the protocol type says what follows."""
    if len(payload) < GENEVE_HEADER_LEN:
        return None
    vni, flags, proto = int.from_bytes(payload[4:7], "big"), payload[1], _u16(payload, 2)
    start = GENEVE_HEADER_LEN + (payload[0] & 0x3F) * 4
    if len(payload) < start:
        return vni, flags, _TRUNCATED
    inner = payload[start:]
    if proto == ETHERTYPE_TRANSPARENT_ETHERNET:
        return vni, flags, _network(_ethernet(inner))
    return vni, flags, _network((proto, inner))


def _classify(index: int, frame: _Frame, vxlan_port: int, geneve_port: int) -> PacketInfo:
    net = _network(_link(frame.linktype, frame.data))
    dport = net.udp[0] if net.udp is not None else None
    if net.udp is not None and dport in (vxlan_port, geneve_port):
        tunnel = _vxlan(net.udp[1]) if dport == vxlan_port else _geneve(net.udp[1])
        if tunnel is not None:
            vni, flags, inner = tunnel
            return PacketInfo(
                index=index,
                encapsulation="vxlan" if dport == vxlan_port else "geneve",
                outer_src=net.src,
                outer_dst=net.dst,
                udp_dport=dport,
                vni=vni,
                inner_src=inner.src,
                inner_dst=inner.dst,
                inner_protocol=inner.protocol,
                icmp_type=inner.icmp_type,
                length=frame.wirelen,
                tunnel_flags=flags,
            )
    return PacketInfo(
        index=index,
        encapsulation="none",
        outer_src=None,
        outer_dst=None,
        udp_dport=dport,
        vni=None,
        inner_src=net.src,
        inner_dst=net.dst,
        inner_protocol=net.protocol,
        icmp_type=net.icmp_type,
        length=frame.wirelen,
    )


def _check_ports(vxlan_port: int, geneve_port: int) -> None:
    for name, port in (("vxlan_port", vxlan_port), ("geneve_port", geneve_port)):
        if not 1 <= port <= 65535:
            raise ValueError(f"{name} {port} is not a UDP port (1-65535)")
    if vxlan_port == geneve_port:
        raise ValueError(f"vxlan_port and geneve_port are both {vxlan_port}: a port decodes one tunnel")


def iter_packets(path: str | Path, vxlan_port: int = 8472, geneve_port: int = 6081) -> Iterator[PacketInfo]:
    """Each frame as it is read (a CaptureError where the file stops making sense).

    The ports are checked at once, not at the first packet.
    """
    _check_ports(vxlan_port, geneve_port)
    return (_classify(i, frame, vxlan_port, geneve_port) for i, frame in enumerate(_frames(path)))


def analyze(path: str | Path, vxlan_port: int = 8472, geneve_port: int = 6081) -> list[PacketInfo]:
    """Every frame of a pcap/pcapng file, tunnels decoded on the given UDP destination ports.

    `index` is 0-based in file order. `length` is the frame's length on the wire (the record's
    original length), so oversized GSO frames report their real size. A file that is empty, not a
    capture, or cut short raises the CaptureError naming it; no packet is made up.
    """
    return list(iter_packets(path, vxlan_port, geneve_port))
