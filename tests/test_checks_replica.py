"""Every non-BGP check of the catalogue, proven on the replica: PASS where its claim holds, FAIL where not.

Most FAIL cases break the lab for real and let the check find it: another mode's datapath
(overlay claims on native routing and the reverse), a veth link down, a tc program detached,
no programs at all, cilium_host's address flushed, the static routes absent or removed again.

Four FAIL cases keep the datapath as it is and tell the check a different topology instead
(`Retold`), so what breaks is the claim about the lab, not the lab:
- intranode.path: pod-c (on another node) is presented as pod-b;
- datapath.cilium-host: each node is said to own the next node's pod CIDR;
- native.pools: a replica built with /26 blocks is judged against the claimed /27;
- path.mtu: native routing judged as overlay (VXLAN overhead), and the overlay as native.

Each condition of each pass rule is broken alone in tests/fast/ (recorded output, no root).
Geneve, which this kernel cannot build, is judged on crafted and real captures instead.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labsupport import needs_replica, run_check
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

from verify import checks
from verify.checks import Status, Verdict
from verify.pcap import analyze
from verify.probe import Topology
from verify.replica import Replica

pytestmark = needs_replica

SHARED_PCAPS = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "pcaps"


class Retold:
    """The same lab, described differently: the checks judge the claim, the datapath stays real."""

    def __init__(self, probe: Replica, **changes: Any) -> None:
        self._probe = probe
        self.topology: Topology = dataclasses.replace(probe.topology, **changes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._probe, name)


@pytest.fixture(scope="module")
def overlay() -> Iterator[Replica]:
    with Replica("overlay", prefix="cdltov-") as rep:
        yield rep


@pytest.fixture(scope="module")
def native() -> Iterator[Replica]:
    with Replica("native-auto", prefix="cdltna-") as rep:
        yield rep


@pytest.fixture
def static() -> Iterator[Replica]:
    with Replica("static", prefix="cdltst-") as rep:
        yield rep


@pytest.fixture
def scratch_overlay() -> Iterator[Replica]:
    """An overlay replica a test may break."""
    with Replica("overlay", prefix="cdltsc-") as rep:
        yield rep


# --- PASS where the claim holds ---------------------------------------------------------------

OVERLAY_PASSES = [
    "intranode.ping",
    "intranode.path",
    "datapath.bpf-hooks",
    "datapath.cilium-host",
    "overlay.routes",
    "overlay.device",
    "overlay.capture",
    "path.mtu",
]
NATIVE_PASSES = [
    "intranode.ping",
    "datapath.bpf-hooks",
    "datapath.cilium-host",
    "native.no-tunnel",
    "native.routes",
    "native.pools",
    "native.capture",
    "path.mtu",
]


@pytest.mark.parametrize("check_id", OVERLAY_PASSES)
def test_passes_on_overlay(check_id: str, overlay: Replica, tmp_path: Path) -> None:
    assert run_check(check_id, overlay, tmp_path).status is Status.PASS


@pytest.mark.parametrize("check_id", NATIVE_PASSES)
def test_passes_on_native_auto(check_id: str, native: Replica, tmp_path: Path) -> None:
    assert run_check(check_id, native, tmp_path).status is Status.PASS


def test_static_fails_then_passes_with_routes_then_fails_again(static: Replica, tmp_path: Path) -> None:
    """The write-up's 3B in order: no routes, no connectivity; routes, TTL 62; and back."""
    assert run_check("static.fails-without-routes", static, tmp_path).status is Status.PASS
    assert run_check("static.routes", static, tmp_path).status is Status.FAIL
    assert run_check("static.ping", static, tmp_path).status is Status.FAIL

    static.add_static_routes()
    assert run_check("static.routes", static, tmp_path).status is Status.PASS
    assert run_check("static.ping", static, tmp_path).status is Status.PASS
    assert run_check("native.capture", static, tmp_path).status is Status.PASS
    assert run_check("native.no-tunnel", static, tmp_path).status is Status.PASS
    assert run_check("static.fails-without-routes", static, tmp_path).status is Status.FAIL

    static.remove_static_routes()
    assert run_check("static.fails-without-routes", static, tmp_path).status is Status.PASS


# --- FAIL where it does not -------------------------------------------------------------------

FAILS_ON_NATIVE = ["overlay.routes", "overlay.device", "overlay.capture"]
FAILS_ON_OVERLAY = ["native.no-tunnel", "native.routes", "native.capture"]


@pytest.mark.parametrize("check_id", FAILS_ON_NATIVE)
def test_overlay_claims_fail_on_native_routing(check_id: str, native: Replica, tmp_path: Path) -> None:
    assert run_check(check_id, native, tmp_path).status is Status.FAIL


@pytest.mark.parametrize("check_id", FAILS_ON_OVERLAY)
def test_native_claims_fail_on_the_overlay(check_id: str, overlay: Replica, tmp_path: Path) -> None:
    assert run_check(check_id, overlay, tmp_path).status is Status.FAIL


def test_intranode_path_fails_when_the_traffic_crosses_the_tunnel(overlay: Replica, tmp_path: Path) -> None:
    """Say pod-c (another node) is pod-b: its traffic really is encapsulated, and the check sees it."""
    pod_c = overlay.topology.pod("pod-c")
    pods = tuple(
        dataclasses.replace(pod_c, name="pod-b") if p.name == "pod-b" else p for p in overlay.topology.pods
    )
    retold = Retold(overlay, pods=pods)
    verdict = run_check("intranode.path", retold, tmp_path)
    assert verdict.status is Status.FAIL
    assert any(f.startswith("FAIL") and "eth0" in f for f in verdict.findings)


def test_intranode_ping_fails_when_the_peer_is_cut_off(scratch_overlay: Replica, tmp_path: Path) -> None:
    pod_b = scratch_overlay.pod("pod-b")
    cut = scratch_overlay.node_exec(pod_b.node, ["ip", "link", "set", "dev", pod_b.lxc, "down"])
    assert cut.ok, cut.stderr
    assert run_check("intranode.ping", scratch_overlay, tmp_path).status is Status.FAIL


def test_bpf_hooks_fail_when_a_program_is_detached(scratch_overlay: Replica, tmp_path: Path) -> None:
    node = scratch_overlay.topology.nodes[0].name
    detached = scratch_overlay.node_exec(node, ["tc", "filter", "del", "dev", "cilium_host", "egress"])
    assert detached.ok, detached.stderr
    verdict = run_check("datapath.bpf-hooks", scratch_overlay, tmp_path)
    assert verdict.status is Status.FAIL
    assert f"FAIL {node}: cil_from_host on cilium_host egress" in verdict.findings


def test_bpf_hooks_fail_without_any_program(tmp_path: Path) -> None:
    with Replica("native-auto", prefix="cdltnb-", bpf_hooks=False) as bare:
        assert run_check("datapath.bpf-hooks", bare, tmp_path).status is Status.FAIL


def test_cilium_host_fails_without_its_router_ip(scratch_overlay: Replica, tmp_path: Path) -> None:
    node = scratch_overlay.topology.nodes[2].name
    flushed = scratch_overlay.node_exec(node, ["ip", "addr", "flush", "dev", "cilium_host"])
    assert flushed.ok, flushed.stderr
    verdict = run_check("datapath.cilium-host", scratch_overlay, tmp_path)
    assert verdict.status is Status.FAIL
    assert f"FAIL {node}: cilium_host has an IPv4 address" in verdict.findings


def test_cilium_host_fails_outside_the_node_pod_cidr(overlay: Replica, tmp_path: Path) -> None:
    """Claim each node holds another node's CIDR: the /32 on cilium_host is then outside it."""
    nodes = overlay.topology.nodes
    shifted = tuple(
        dataclasses.replace(n, pod_cidr=nodes[(i + 1) % len(nodes)].pod_cidr) for i, n in enumerate(nodes)
    )
    assert run_check("datapath.cilium-host", Retold(overlay, nodes=shifted), tmp_path).status is Status.FAIL


def test_native_pools_fail_when_blocks_are_not_the_claimed_size(tmp_path: Path) -> None:
    """A /26 per node is not the write-up's /27 per node."""
    with Replica("native-auto", prefix="cdltnp-", pod_mask=26, bpf_hooks=False) as wide:
        retold = Retold(wide, extra={**wide.topology.extra, "pool_mask": "27"})
        assert run_check("native.pools", retold, tmp_path).status is Status.FAIL


def test_path_mtu_fails_when_the_overhead_is_not_there(native: Replica, tmp_path: Path) -> None:
    """Native routing carries 1500-byte packets; claiming VXLAN (1450) must fail."""
    assert run_check("path.mtu", Retold(native, mode="overlay"), tmp_path).status is Status.FAIL


def test_path_mtu_fails_when_claiming_native_on_the_overlay(overlay: Replica, tmp_path: Path) -> None:
    assert run_check("path.mtu", Retold(overlay, mode="native-auto"), tmp_path).status is Status.FAIL


def test_verdicts_keep_their_evidence(overlay: Replica, tmp_path: Path) -> None:
    verdict = run_check("overlay.capture", overlay, tmp_path)
    pcaps = [e.artifact for e in verdict.evidence if e.artifact]
    assert pcaps and all(Path(p).is_file() for p in pcaps)
    assert any(p.encapsulation == "vxlan" for p in analyze(pcaps[0]))
    assert any("ping" in e.command for e in verdict.evidence)


# --- Geneve: this kernel has no Geneve module; judged on captures -----------------------------

NODE_A, NODE_B = "172.30.2.2", "172.30.2.3"
POD_A, POD_C = ipaddress.IPv4Address("10.244.1.10"), ipaddress.IPv4Address("10.244.2.10")


def _geneve_pcap(path: Path, vni: int, port: int = 6081) -> Path:
    from scapy.contrib.geneve import GENEVE  # noqa: PLC0415

    inner = Ether() / IP(src=str(POD_A), dst=str(POD_C)) / ICMP(type=8)
    reply = Ether() / IP(src=str(POD_C), dst=str(POD_A)) / ICMP(type=0)
    wrpcap(
        str(path),
        [
            Ether()
            / IP(src=NODE_A, dst=NODE_B)
            / UDP(sport=40000, dport=port)
            / GENEVE(vni=vni, proto=0x6558)
            / inner,
            Ether()
            / IP(src=NODE_B, dst=NODE_A)
            / UDP(sport=40001, dport=port)
            / GENEVE(vni=vni, proto=0x6558)
            / reply,
        ],
    )
    return path


def _judge(path: Path, encapsulation: str = "geneve") -> Verdict:
    verdict = Verdict("overlay.capture")
    checks.judge_encapsulated(verdict, analyze(path), encapsulation, POD_A, POD_C, {NODE_A, NODE_B})
    return verdict


def test_geneve_capture_passes(tmp_path: Path) -> None:
    assert _judge(_geneve_pcap(tmp_path / "g.pcap", vni=4242)).status is Status.PASS


def test_geneve_capture_fails_with_vni_zero(tmp_path: Path) -> None:
    verdict = _judge(_geneve_pcap(tmp_path / "g0.pcap", vni=0))
    assert verdict.status is Status.FAIL and any("VNI" in f for f in verdict.findings if f.startswith("FAIL"))


def test_geneve_capture_fails_on_another_port(tmp_path: Path) -> None:
    assert _judge(_geneve_pcap(tmp_path / "gp.pcap", vni=4242, port=7000)).status is Status.FAIL


def test_geneve_rule_rejects_vxlan(tmp_path: Path) -> None:
    path = tmp_path / "v.pcap"
    inner = Ether() / IP(src=str(POD_A), dst=str(POD_C)) / ICMP()
    wrpcap(
        str(path), [Ether() / IP(src=NODE_A, dst=NODE_B) / UDP(sport=1, dport=8472) / VXLAN(vni=7) / inner]
    )
    assert _judge(path, "geneve").status is Status.FAIL
    assert _judge(path, "vxlan").status is Status.PASS


def test_real_geneve_capture_from_tcpdump_tests() -> None:
    """geneve.pcap (tcpdump's test suite): ICMP inside Geneve with VNI 0xa between two hosts."""
    pcap = SHARED_PCAPS / "geneve.pcap"
    if not pcap.is_file():
        pytest.skip(f"{pcap} is absent (a user's clone has no shared/ folder)")
    packets = [p for p in analyze(pcap) if p.encapsulation == "geneve" and p.inner_protocol == "icmp"]
    assert packets
    first = packets[0]
    assert first.inner_src is not None and first.inner_dst is not None
    verdict = Verdict("overlay.capture")
    checks.judge_encapsulated(
        verdict,
        packets,
        "geneve",
        ipaddress.IPv4Address(first.inner_src),
        ipaddress.IPv4Address(first.inner_dst),
        {p.outer_src or "" for p in packets} | {p.outer_dst or "" for p in packets},
    )
    assert verdict.status is Status.PASS
