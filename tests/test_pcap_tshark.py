"""verify.pcap against tshark, packet by packet: tshark (Debian package `tshark`) is the oracle.

Two settings for every capture: the lab's (VXLAN on 8472, Geneve on 6081, and tshark told to leave
4789 alone, as our analyser does) and IANA's (VXLAN on 4789: tshark's defaults). Compared per packet:
encapsulation, outer addresses, UDP port, VNI, tunnel flags, inner addresses, inner protocol, ICMP
type and length. Reassembly is off in tshark, as the analyser reads each frame on its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_pcap import SHARED, pcap_bytes, pcapng_bytes
from test_pcap_tunnels import CRAFTED

from verify.pcap import analyze, to_json

TSHARK = shutil.which("tshark")
TSHARK_CACHE = Path(tempfile.gettempdir()) / "cdl-tshark-cache"
pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (Debian package `tshark`): it is the oracle here"
)

LAB_PORTS = ["-d", "udp.port==8472,vxlan", "-d", "udp.port==6081,geneve", "-d", "udp.port==4789,data"]
IANA_PORTS: list[str] = []  # tshark's defaults: VXLAN on 4789, Geneve on 6081
SETTINGS = {"lab": (8472, LAB_PORTS), "iana": (4789, IANA_PORTS)}

# IP protocol numbers as tshark names the layer that follows, and as verify.pcap names them.
IP_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 50: "esp", 58: "icmpv6", 132: "sctp"}
NETWORK = ("ip", "ipv6", "arp")

Pairs = list[tuple[str, Any]]


def _pairs(text: str) -> Any:
    """tshark's JSON repeats keys (two `eth` layers in a tunnel): keep every pair, in order."""
    return json.loads(text, object_pairs_hook=list)


def _get(pairs: Pairs, key: str) -> Any:
    return next(value for name, value in pairs if name == key)


def _all(pairs: Pairs, suffix: str) -> list[str]:
    """Every value whose key ends with `suffix`, depth first, in the order tshark printed them."""
    found: list[str] = []
    for name, value in pairs:
        if isinstance(value, list):
            found += _all(value, suffix)
        elif name.endswith(suffix):
            found.append(value)
    return found


def _addresses(name: str, layer: Pairs) -> tuple[str, str]:
    if name == "arp":
        return _get(layer, "arp.src.proto_ipv4"), _get(layer, "arp.dst.proto_ipv4")
    return _get(layer, f"{name}.src"), _get(layer, f"{name}.dst")


def _protocol(layers: Pairs, i: int) -> tuple[str, int | None]:
    """What the network layer at `i` carries, named as verify.pcap names it, and its ICMP type."""
    name, layer = layers[i]
    if name == "arp":
        return "arp", None
    number = int(_get(layer, "ip.proto")) if name == "ip" else int(_all(layer, ".nxt")[-1])
    expected = IP_PROTOCOLS.get(number, f"ip-proto-{number}")
    following = layers[i + 1][0] if i + 1 < len(layers) else None
    if following in IP_PROTOCOLS.values():
        assert following == expected, f"tshark decoded {following} after {name} proto {number}"
    icmp_type = None
    if following in ("icmp", "icmpv6"):
        icmp_type = int(_get(layers[i + 1][1], f"{following}.type"))
    return expected, icmp_type


def _ethertype_name(ethertype: int) -> str:
    return {0x88CC: "lldp"}.get(ethertype, f"ethertype-0x{ethertype:04x}")


@functools.cache
def _tshark_version(tshark: str) -> str:
    return subprocess.run([tshark, "--version"], capture_output=True, text=True, check=True).stdout


def _tshark_json(argv: Sequence[str], path: Path) -> str:
    """tshark's JSON for a capture, kept on disk by what decides it: tshark's version, its
    arguments other than the file, and the file's bytes. The oracle never depends on the code
    under test, so a mutation run (one test session per mutant) asks tshark once per capture."""
    key = hashlib.sha256(_tshark_version(argv[0]).encode())
    key.update("\0".join(a for a in argv[1:] if a != str(path)).encode())
    key.update(path.read_bytes())
    cached = TSHARK_CACHE / f"{key.hexdigest()}.json"
    if cached.is_file():
        return cached.read_text()
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    TSHARK_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(proc.stdout)
    partial.replace(cached)  # whole or absent, even with runs side by side
    return proc.stdout


def tshark_view(path: Path, ports: Sequence[str]) -> list[dict[str, Any]]:
    """Each packet as tshark decodes it, in the shape of verify.pcap's JSON."""
    assert TSHARK is not None
    argv = [TSHARK, "-n", "-r", str(path), "-T", "json", "-o", "ip.defragment:FALSE"]
    argv += ["-o", "ipv6.defragment:FALSE", *ports]
    views: list[dict[str, Any]] = []
    for packet in _pairs(_tshark_json(argv, path)):
        layers: Pairs = _get(_get(packet, "_source"), "layers")
        names = [name for name, _ in layers]
        assert "_ws.malformed" not in names, f"tshark calls packet {len(views)} of {path} malformed"
        tunnel = next((i for i, n in enumerate(names) if n in ("vxlan", "geneve")), None)
        view: dict[str, Any] = {
            "encapsulation": "none",
            "outer_src": None,
            "outer_dst": None,
            "udp_dport": None,
            "vni": None,
            "tunnel_flags": None,
            "inner_src": None,
            "inner_dst": None,
            "icmp_type": None,
            "length": int(_get(layers[0][1], "frame.len")),
        }
        first = next((i for i, n in enumerate(names) if n in NETWORK), None)
        if first is None:  # no IP or ARP at all: named by the link layer's protocol type
            view["inner_protocol"] = _ethertype_name(int(_get(layers[1][1], "eth.type"), 16))
            views.append(view)
            continue
        if first + 1 < len(names) and names[first + 1] == "udp":
            view["udp_dport"] = int(_get(layers[first + 1][1], "udp.dstport"))
        if tunnel is None:
            view["inner_src"], view["inner_dst"] = _addresses(names[first], layers[first][1])
            view["inner_protocol"], view["icmp_type"] = _protocol(layers, first)
        else:
            kind, header = layers[tunnel]
            view["encapsulation"] = kind
            view["outer_src"], view["outer_dst"] = _addresses(names[first], layers[first][1])
            if kind == "vxlan":
                view["vni"] = int(_get(header, "vxlan.vni"))
                view["tunnel_flags"] = int(_get(header, "vxlan.flags"), 16) >> 8  # tshark shows 16 bits
            else:
                view["vni"] = int(_get(header, "geneve.vni"), 16)
                view["tunnel_flags"] = int(_get(header, "geneve.flags"), 16)
            inner = next((i for i in range(tunnel + 1, len(names)) if names[i] in NETWORK), None)
            if inner is not None:
                view["inner_src"], view["inner_dst"] = _addresses(names[inner], layers[inner][1])
                view["inner_protocol"], view["icmp_type"] = _protocol(layers, inner)
            else:
                follows_eth = tunnel + 1 < len(names) and names[tunnel + 1] == "eth"
                field = f"{kind}.proto_type" if kind == "geneve" and not follows_eth else "eth.type"
                source = header if field.startswith("geneve") else layers[tunnel + 1][1]
                view["inner_protocol"] = _ethertype_name(int(_get(source, field), 16))
        views.append(view)
    return views


def assert_decodes_as_tshark_does(path: Path, setting: str) -> None:
    vxlan_port, ports = SETTINGS[setting]
    expected = tshark_view(path, ports)
    ours = [
        {k: v for k, v in to_json(p).items() if k != "index"} for p in analyze(path, vxlan_port=vxlan_port)
    ]
    assert len(ours) == len(expected)
    for index, (mine, oracle) in enumerate(zip(ours, expected, strict=True)):
        assert mine == oracle, f"packet {index} of {path.name} ({setting} ports)"


def _corpus() -> list[Any]:
    captures = (
        sorted(p for p in SHARED.glob("*") if p.suffix in (".pcap", ".pcapng")) if SHARED.is_dir() else []
    )
    if not captures:
        reason = f"no shared captures at {SHARED} (only in the project's workspace, not in a clone)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-shared-captures")]
    return [pytest.param(p, id=p.name) for p in captures]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("capture", _corpus())
def test_shared_capture_decodes_as_tshark_decodes_it(capture: Path, setting: str) -> None:
    assert_decodes_as_tshark_does(capture, setting)


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_capture_decodes_as_tshark_decodes_it(
    tmp_path: Path, name: str, setting: str, container: str
) -> None:
    frames, linktype, _ = CRAFTED[name]
    path = tmp_path / f"{name}.{container}"
    write = pcap_bytes if container == "pcap" else pcapng_bytes
    path.write_bytes(write(frames, linktype))
    assert_decodes_as_tshark_does(path, setting)
