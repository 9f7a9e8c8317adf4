"""The BGP checks against real routing daemons: the project's rendered FRR config in FRR, GoBGP on the nodes.

PASS where the claim holds (default lab), and FAIL where it really does not: one path kept
(maximumPaths 1), a speaker gone, RFC 8212 left on, flows hashed on addresses only, nodes
routing around the router. Each scenario runs in its own replica, so they never share daemons.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labsupport import CONVERGE_LIMIT, failed, needs_bgp_daemons, run_check, run_prefix

from lab.frr import frr_spec
from lab.plan import plan
from verify.bgp_checks import BGP_CATALOGUE
from verify.bgp_replica import BgpDaemonError, BgpDaemons, replica_lab_config
from verify.checks import Status
from verify.replica import Replica

pytestmark = needs_bgp_daemons
SYSTEM_FRR_DIRS = (Path("/etc/frr"), Path("/var/run/frr"))


def bgp_replica(tag: str) -> Replica:
    """A bgp replica whose router learns the pod CIDRs only from BGP."""
    return Replica("bgp", prefix=run_prefix(tag), router_static_routes=False, bpf_hooks=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BgpDaemons]:
    """The default lab: nodeAsn 65001 everywhere, maximumPaths 8, one router."""
    with (
        bgp_replica("bgpd") as rep,
        BgpDaemons(rep, replica_lab_config(rep), log_dir=tmp_path_factory.mktemp("bgp-daemons")) as daemons,
    ):
        yield daemons


def _snapshot(dirs: tuple[Path, ...]) -> dict[str, Any]:
    return {str(d): sorted(p.name for p in d.iterdir()) if d.is_dir() else None for d in dirs}


def _pids(namespace: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    return out.stdout.split()


# --- PASS where the claim holds ---------------------------------------------------------------


def test_converges_within_the_budget(lab: BgpDaemons) -> None:
    assert lab.converge_seconds is not None and lab.converge_seconds <= CONVERGE_LIMIT


@pytest.mark.parametrize("check_id", [c.id for c in BGP_CATALOGUE])
def test_default_lab_passes(check_id: str, lab: BgpDaemons, tmp_path: Path) -> None:
    assert run_check(check_id, lab.probe, tmp_path).status is Status.PASS


def test_frr_runs_the_rendered_config(lab: BgpDaemons) -> None:
    """What FRR runs is the project's frr.conf, not a hand-written one."""
    running = lab.router_vtysh("show running-config")
    assert running.ok, running.stderr
    for line in lab.files["frr.conf"].splitlines():
        if line.startswith(
            (" bgp listen range", " neighbor NODES remote-as", "  maximum-paths", "router bgp")
        ):
            assert line in running.stdout.splitlines(), line


def test_each_pod_cidr_is_learned_from_its_node(lab: BgpDaemons, tmp_path: Path) -> None:
    verdict = run_check("bgp.pod-cidrs", lab.probe, tmp_path)
    for node in lab.probe.topology.nodes:
        assert (
            f"ok   rtr: {node.pod_cidr} nexthop ['{node.ip}'] (want only {node.name} {node.ip})"
            in verdict.findings
        )


def test_vip_has_one_nexthop_per_node_in_frr_and_kernel(lab: BgpDaemons, tmp_path: Path) -> None:
    verdict = run_check("bgp.ecmp", lab.probe, tmp_path)
    assert verdict.passed
    assert any(f.startswith("ok   rtr: FRR's RIB has 3 BGP nexthops") for f in verdict.findings)
    assert any(f.startswith("ok   rtr: the kernel FIB has 3 nexthops") for f in verdict.findings)


def test_ecmp_reads_nexthop_objects_when_routes_hide_them(lab: BgpDaemons, tmp_path: Path) -> None:
    """With nexthop_compat_mode=0 a route shows only `nhid`; the check follows it to the group."""
    rep = lab.replica
    assert rep.router_exec(["sysctl", "-q", "-w", "net.ipv4.nexthop_compat_mode=0"]).ok
    try:
        shown = rep.router_exec(["ip", "-j", "route", "show", f"{lab.vip}/32"])
        verdict = run_check("bgp.ecmp", lab.probe, tmp_path)
    finally:
        assert rep.router_exec(["sysctl", "-q", "-w", "net.ipv4.nexthop_compat_mode=1"]).ok
    assert '"nhid"' in shown.stdout and '"nexthops"' not in shown.stdout
    assert verdict.passed
    assert any("ip -j nexthop show id" in e.command for e in verdict.evidence)


def test_transit_evidence_is_a_pcap(lab: BgpDaemons, tmp_path: Path) -> None:
    verdict = run_check("bgp.transit", lab.probe, tmp_path)
    pcaps = [e.artifact for e in verdict.evidence if e.artifact]
    assert pcaps and all(Path(p).is_file() and Path(p).stat().st_size > 24 for p in pcaps)


# --- FAIL where it does not -------------------------------------------------------------------


def test_spread_fails_when_the_router_hashes_addresses_only(lab: BgpDaemons, tmp_path: Path) -> None:
    """Policy 0 hashes source and destination address only: every flow takes one path."""
    router = lab.replica
    assert router.router_exec(["sysctl", "-q", "-w", "net.ipv4.fib_multipath_hash_policy=0"]).ok
    try:
        verdict = run_check("bgp.ecmp-spread", lab.probe, tmp_path)
    finally:
        assert router.router_exec(["sysctl", "-q", "-w", "net.ipv4.fib_multipath_hash_policy=1"]).ok
    assert verdict.status is Status.FAIL
    assert [f for f in failed(verdict) if "reached 1 nodes" in f]


def test_transit_fails_when_nodes_route_around_the_router(lab: BgpDaemons, tmp_path: Path) -> None:
    """Direct node-to-node routes: the ping still works, but the router never sees it."""
    rep = lab.replica
    a_node, c_node = rep.node(rep.pod("pod-a").node), rep.node(rep.pod("pod-c").node)
    direct = [(a_node, c_node), (c_node, a_node)]
    for here, there in direct:
        assert rep.node_exec(here.name, ["ip", "route", "add", str(there.pod_cidr), "via", str(there.ip)]).ok
    try:
        verdict = run_check("bgp.transit", lab.probe, tmp_path)
    finally:
        for here, there in direct:
            rep.node_exec(here.name, ["ip", "route", "del", str(there.pod_cidr), "via", str(there.ip)])
    assert verdict.status is Status.FAIL
    assert "ok   pod-a reached pod-c across nodes (0% loss)" in verdict.findings
    assert any("crossed no router" in f for f in failed(verdict))


def test_one_path_kept_fails_ecmp(tmp_path: Path) -> None:
    """maximumPaths 1: FRR selects a single path and installs one nexthop; flows cannot spread."""
    with bgp_replica("bgpm") as rep:
        with BgpDaemons(rep, replica_lab_config(rep, maximumPaths=1)) as bgp:
            assert bgp.converge_seconds is not None and bgp.converge_seconds <= CONVERGE_LIMIT
            assert run_check("bgp.sessions", bgp.probe, tmp_path).passed
            assert run_check("bgp.pod-cidrs", bgp.probe, tmp_path).passed
            ecmp = run_check("bgp.ecmp", bgp.probe, tmp_path)
            assert ecmp.status is Status.FAIL
            assert any("FRR's RIB has 1 BGP nexthops" in f for f in failed(ecmp))
            assert any("kernel FIB has 1 nexthops" in f for f in failed(ecmp))
            assert run_check("bgp.ecmp-spread", bgp.probe, tmp_path).status is Status.FAIL
            runtime = bgp.runtime
            namespaces = [rep.router_namespace, *(n.namespace for n in rep.nodes)]
            assert all(_pids(ns) for ns in namespaces)
        # Everything it started is gone: no process in any namespace, no runtime directory.
        assert runtime is not None and not runtime.exists()
        assert not any(_pids(ns) for ns in namespaces)


def test_stopped_speaker_fails_sessions(tmp_path: Path) -> None:
    """Different ASN per node (multipath-relax really needed), then one node's speaker dies."""
    with bgp_replica("bgpa") as rep:
        config = replica_lab_config(rep, nodeAsn=[65001, 65002, 65003])
        with BgpDaemons(rep, config) as bgp:
            assert bgp.spec.multipath_relax
            assert run_check("bgp.ecmp", bgp.probe, tmp_path).passed
            assert run_check("bgp.sessions", bgp.probe, tmp_path).passed
            gone = rep.nodes[2]
            assert bgp.stop_speaker(gone.name) < bgp.spec.hold
            sessions = run_check("bgp.sessions", bgp.probe, tmp_path)
            assert sessions.status is Status.FAIL
            assert failed(sessions) == [
                f"FAIL rtr: {gone.name} {gone.ip} is a peer in state absent (want Established)"
            ]
            pod_cidrs = run_check("bgp.pod-cidrs", bgp.probe, tmp_path)
            assert pod_cidrs.status is Status.FAIL
            assert all(str(gone.pod_cidr) in f for f in failed(pod_cidrs))
            assert run_check("bgp.ecmp", bgp.probe, tmp_path).status is Status.FAIL


def test_rfc8212_policy_left_on_learns_nothing(tmp_path: Path) -> None:
    """`bgp ebgp-requires-policy` without policies: sessions come up, no route is accepted."""
    before = _snapshot(SYSTEM_FRR_DIRS)
    with bgp_replica("bgpp") as rep:
        config = replica_lab_config(rep)
        strict = dataclasses.replace(frr_spec(config, plan(config), 0), ebgp_requires_policy=True)
        with BgpDaemons(rep, config, spec=strict) as bgp:
            assert " bgp ebgp-requires-policy" in bgp.files["frr.conf"].splitlines()
            assert run_check("bgp.sessions", bgp.probe, tmp_path).passed
            pod_cidrs = run_check("bgp.pod-cidrs", bgp.probe, tmp_path)
            assert pod_cidrs.status is Status.FAIL
            assert len([f for f in failed(pod_cidrs) if "in the RIB from BGP" in f]) == len(rep.nodes)
            assert run_check("bgp.ecmp", bgp.probe, tmp_path).status is Status.FAIL
            assert run_check("bgp.transit", bgp.probe, tmp_path).status is Status.FAIL
    assert _snapshot(SYSTEM_FRR_DIRS) == before, "a system FRR directory changed"


def test_a_failed_start_leaves_nothing_behind() -> None:
    """GoBGP waits >= 5 s before it first dials: a 1 s budget must fail, and clean up."""
    with bgp_replica("bgpf") as rep:
        daemons = BgpDaemons(rep, replica_lab_config(rep), timeout=1.0)
        with pytest.raises(BgpDaemonError, match="timed out"):
            daemons.start()
        assert daemons.runtime is None
        assert not list(Path(tempfile.gettempdir()).glob(f"{rep.prefix}bgp-*"))
        assert not any(_pids(ns) for ns in [rep.router_namespace, *(n.namespace for n in rep.nodes)])
        addrs = rep.node_exec(rep.nodes[0].name, ["ip", "-br", "addr", "show", "dev", "lo"])
        assert str(daemons.vip) not in addrs.stdout


def test_config_must_describe_the_replica() -> None:
    rep = bgp_replica("bgpx")  # never built: the check happens before anything starts
    other = replica_lab_config(Replica("bgp", prefix="cdlbgpy-", underlay="172.31.9.0/24", bpf_hooks=False))
    with pytest.raises(ValueError, match="does not describe this replica"):
        BgpDaemons(rep, other)
    with pytest.raises(ValueError, match="router_static_routes=False"):
        BgpDaemons(Replica("bgp", prefix="cdlbgpz-", bpf_hooks=False), replica_lab_config(rep))
