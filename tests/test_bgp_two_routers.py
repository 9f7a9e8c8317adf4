"""`bgp.routers: 2` on the replica with real daemons: two FRR routers, every node peering with both.

As in the kind lab (components/frr_router.py, lab/routes.py bgp_routes): each router runs the
project's own rendered config for its index, every node's GoBGP dials both, and every node routes
the pod supernet through both with one multipath route.

Which router a pod-to-pod flow crosses is the nodes' multipath hash: policy 0 hashes source and
destination address only, with a seed the kernel draws at random once per boot (shared by every
namespace unless `net.ipv4.fib_multipath_hash_seed`, Linux 6.11+, sets one). So on a given host
pod-a -> pod-c always crosses the same router each way, but which one (rtr, rtr2, or one each
way) depends on the boot. bgp.transit therefore captures on every router and counts each
direction on whichever carried it: the tests read where the traffic really went and expect the
check to name exactly that router, whichever the hash chose, and pin the nodes' seeds both ways.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from labsupport import CONVERGE_LIMIT, failed, needs_bgp_daemons, run_check, run_prefix

from lab.frr import frr_spec
from lab.plan import plan
from verify.bgp_checks import kernel_nexthops
from verify.bgp_replica import BgpDaemons, replica_lab_config
from verify.checks import Status
from verify.pcap import analyze
from verify.probe import CommandResult
from verify.replica import Replica, ReplicaPod

ROUTERS = ("rtr", "rtr2")
SEED_SYSCTL = "net.ipv4.fib_multipath_hash_seed"
SEED_TRIES = 256  # each try sends a flow to rtr with odds 1/2: never running out in practice


def two_router_replica(tag: str) -> Replica:
    return Replica("bgp", prefix=run_prefix(tag), routers=2, router_static_routes=False, bpf_hooks=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BgpDaemons]:
    """The default lab with two routers: nodeAsn 65001 everywhere, maximumPaths 8."""
    with (
        two_router_replica("bgp2") as rep,
        BgpDaemons(rep, replica_lab_config(rep), log_dir=tmp_path_factory.mktemp("bgp2-daemons")) as daemons,
    ):
        yield daemons


# --- helpers ------------------------------------------------------------------------------------


def ping(rep: Replica, pod: str, dst: ipaddress.IPv4Address) -> CommandResult:
    return rep.pod_exec(pod, ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", str(dst)], timeout=15)


def routers_crossed(rep: Replica, tmp_path: Path) -> tuple[CommandResult, dict[str, set[str]]]:
    """Ping pod-a -> pod-c while capturing on every router's eth0; per direction, the routers
    whose eth0 carried it ("there": pod-a -> pod-c, "back": the replies)."""
    a, c = rep.pod("pod-a"), rep.pod("pod-c")
    bpf = f"icmp and host {a.ip} and host {c.ip}"
    pcaps: dict[str, Path] = {}

    def capture_from(routers: list[str]) -> Callable[[], CommandResult]:
        if not routers:
            return lambda: ping(rep, "pod-a", c.ip)

        def traffic() -> CommandResult:
            path, result = rep.capture(
                routers[0], "eth0", bpf, capture_from(routers[1:]), tmp_path / f"{routers[0]}.pcap"
            )
            pcaps[routers[0]] = path
            return result

        return traffic

    result = capture_from(list(rep.router_names))()
    crossed: dict[str, set[str]] = {"there": set(), "back": set()}
    for router, path in pcaps.items():
        for p in analyze(path):
            if (p.inner_src, p.inner_dst) == (str(a.ip), str(c.ip)):
                crossed["there"].add(router)
            elif (p.inner_src, p.inner_dst) == (str(c.ip), str(a.ip)):
                crossed["back"].add(router)
    return result, crossed


def hashed_router(rep: Replica, src: ReplicaPod, dst: ReplicaPod) -> str:
    """The router src's node picks for src -> dst, as the kernel routes a packet arriving from src."""
    got = rep.node_exec(
        src.node, ["ip", "-j", "route", "get", str(dst.ip), "from", str(src.ip), "iif", src.lxc]
    )
    assert got.ok, got.describe() + got.stderr
    gateway = json.loads(got.stdout)[0]["gateway"]
    return next(r.name for r in rep.routers if str(r.ip) == gateway)


def pin_seed(rep: Replica, src: ReplicaPod, dst: ReplicaPod, router: str) -> int:
    """Set a fib_multipath_hash_seed on src's node that hashes src -> dst to `router`."""
    for seed in range(1, SEED_TRIES + 1):
        assert rep.node_exec(src.node, ["sysctl", "-q", "-w", f"{SEED_SYSCTL}={seed}"]).ok
        if hashed_router(rep, src, dst) == router:
            return seed
    raise AssertionError(f"no seed in 1-{SEED_TRIES} hashes {src.name} -> {dst.name} to {router}")


def seedable(rep: Replica) -> bool:
    return rep.node_exec(rep.nodes[0].name, ["sysctl", "-n", SEED_SYSCTL]).ok


@pytest.fixture
def pinned(lab: BgpDaemons) -> Iterator[Callable[[str, str], None]]:
    """pinned(forward_router, reply_router): fix the hash of pod-a -> pod-c and of the replies;
    the seeds go back to 0 (the kernel's per-boot random one) afterwards."""
    rep = lab.replica
    if not seedable(rep):
        pytest.skip(f"this kernel has no {SEED_SYSCTL} (Linux 6.11+): the hash cannot be pinned")
    a, c = rep.pod("pod-a"), rep.pod("pod-c")

    def pin(there: str, back: str) -> None:
        pin_seed(rep, a, c, there)
        pin_seed(rep, c, a, back)

    try:
        yield pin
    finally:
        for node in {a.node, c.node}:
            rep.node_exec(node, ["sysctl", "-q", "-w", f"{SEED_SYSCTL}=0"])


# --- the lab converges with both routers --------------------------------------------------------


@needs_bgp_daemons
def test_converges_within_the_budget(lab: BgpDaemons) -> None:
    assert lab.converge_seconds is not None and lab.converge_seconds <= CONVERGE_LIMIT
    assert lab.router_names == ROUTERS
    assert lab.probe.topology.extra["routers"] == "rtr,rtr2"
    assert lab.probe.topology.extra["router"] == "rtr"


@needs_bgp_daemons
def test_each_router_runs_its_own_rendered_config(lab: BgpDaemons) -> None:
    """rtr runs frr_spec(config, plan, 0), rtr2 frr_spec(config, plan, 1): own hostname and router-id."""
    for index, router in enumerate(lab.routers):
        expected = frr_spec(lab.config, lab.plan, index)
        assert router.spec == expected and router.ip == lab.plan.router_ips[index]
        running = lab.router_vtysh("show running-config", router=router.name)
        assert running.ok, running.stderr
        lines = running.stdout.splitlines()
        # FRR 8.4 shows the host's hostname (a network namespace has no UTS namespace of its own),
        # so the hostname is read from the file this router's FRR was booted from.
        booted = (lab.frr_dir_of(router.name) / "frr.conf").read_text()
        assert booted == router.files["frr.conf"]
        assert f"hostname {expected.hostname}" in booted.splitlines()
        assert f" bgp router-id {expected.router_id}" in lines
        for line in router.files["frr.conf"].splitlines():
            if line.startswith((" bgp listen range", " neighbor NODES remote-as", "  maximum-paths")):
                assert line in lines, (router.name, line)
    assert [r.spec.hostname for r in lab.routers] == ["replica-frr0", "replica-frr1"]


@needs_bgp_daemons
def test_every_speaker_dials_every_router(lab: BgpDaemons) -> None:
    for speaker in lab.speakers:
        shown = lab.gobgp(speaker.node, ["neighbor", "-j"])
        assert shown.ok, shown.stderr
        peers = {n["conf"]["neighbor_address"]: n["state"]["session_state"] for n in json.loads(shown.stdout)}
        assert peers == {str(ip): 6 for ip in lab.replica.router_ips}  # 6: ESTABLISHED


@needs_bgp_daemons
@pytest.mark.parametrize("check_id", ["bgp.sessions", "bgp.pod-cidrs", "bgp.ecmp", "bgp.ecmp-spread"])
def test_two_router_lab_passes(check_id: str, lab: BgpDaemons, tmp_path: Path) -> None:
    assert run_check(check_id, lab.probe, tmp_path).status is Status.PASS


@needs_bgp_daemons
def test_sessions_and_routes_are_checked_on_both_routers(lab: BgpDaemons, tmp_path: Path) -> None:
    sessions = run_check("bgp.sessions", lab.probe, tmp_path)
    pod_cidrs = run_check("bgp.pod-cidrs", lab.probe, tmp_path)
    ecmp = run_check("bgp.ecmp", lab.probe, tmp_path)
    for router in ROUTERS:
        for node in lab.probe.topology.nodes:
            assert (
                f"ok   {router}: {node.name} {node.ip} is a peer in state Established (want Established)"
                in sessions.findings
            )
            assert (
                f"ok   {router}: {node.pod_cidr} nexthop ['{node.ip}'] (want only {node.name} {node.ip})"
                in pod_cidrs.findings
            )
        assert any(f.startswith(f"ok   {router}: FRR's RIB has 3 BGP nexthops") for f in ecmp.findings)
        assert any(f.startswith(f"ok   {router}: the kernel FIB has 3 nexthops") for f in ecmp.findings)


@needs_bgp_daemons
def test_nodes_route_the_supernet_via_both_routers(lab: BgpDaemons) -> None:
    rep = lab.replica
    for node in rep.nodes:
        shown = rep.node_exec(node.name, ["ip", "-j", "route", "show", str(rep.pod_cidr)])
        assert shown.ok, shown.stderr
        assert sorted(kernel_nexthops(shown.stdout)) == sorted(str(ip) for ip in rep.router_ips)
        assert len(json.loads(shown.stdout)) == 1  # one multipath route, not two routes


# --- bgp.transit with two routers ---------------------------------------------------------------


@needs_bgp_daemons
def test_pod_traffic_crosses_a_router_and_transit_names_it(lab: BgpDaemons, tmp_path: Path) -> None:
    """With the kernel's own (per-boot random) seed: every packet crosses exactly one router, and
    bgp.transit PASSes naming the router each direction really crossed."""
    rep = lab.replica
    result, crossed = routers_crossed(rep, tmp_path / "truth")
    assert result.ok and " 0% packet loss" in result.stdout, result.stdout
    assert len(crossed["there"]) == 1 and len(crossed["back"]) == 1, crossed
    a, c = rep.pod("pod-a"), rep.pod("pod-c")
    assert crossed["there"] == {hashed_router(rep, a, c)}
    assert crossed["back"] == {hashed_router(rep, c, a)}

    verdict = run_check("bgp.transit", lab.probe, tmp_path / "check")
    assert verdict.status is Status.PASS
    (there,) = crossed["there"]
    (back,) = crossed["back"]
    assert any(
        f.startswith(f"ok   pod-a -> pod-c ({a.ip} -> {c.ip}) crossed {there}:") for f in verdict.findings
    )
    assert any(
        f.startswith(f"ok   pod-c -> pod-a ({c.ip} -> {a.ip}) crossed {back}:") for f in verdict.findings
    )


@needs_bgp_daemons
@pytest.mark.parametrize("router", ["rtr", "rtr2"])
def test_transit_follows_the_hash_to_either_router(
    lab: BgpDaemons, pinned: Callable[[str, str], None], router: str, tmp_path: Path
) -> None:
    pinned(router, router)
    _, crossed = routers_crossed(lab.replica, tmp_path / "truth")
    assert crossed == {"there": {router}, "back": {router}}
    verdict = run_check("bgp.transit", lab.probe, tmp_path / "check")
    assert verdict.status is Status.PASS
    assert sum(f" crossed {router}:" in f for f in verdict.findings) == 2


# --- FAIL where a node is gone ------------------------------------------------------------------


@needs_bgp_daemons
def test_stopped_speaker_fails_sessions_on_both_routers(tmp_path: Path) -> None:
    with two_router_replica("bgp2s") as rep, BgpDaemons(rep, replica_lab_config(rep)) as bgp:
        assert bgp.converge_seconds is not None and bgp.converge_seconds <= CONVERGE_LIMIT
        assert run_check("bgp.sessions", bgp.probe, tmp_path).passed
        gone = rep.nodes[1]
        assert bgp.stop_speaker(gone.name) < bgp.spec.hold
        sessions = run_check("bgp.sessions", bgp.probe, tmp_path)
        assert sessions.status is Status.FAIL
        assert failed(sessions) == [
            f"FAIL {router}: {gone.name} {gone.ip} is a peer in state absent (want Established)"
            for router in ROUTERS
        ]
        pod_cidrs = run_check("bgp.pod-cidrs", bgp.probe, tmp_path)
        assert pod_cidrs.status is Status.FAIL
        assert {f.split(":")[0] for f in failed(pod_cidrs)} == {f"FAIL {r}" for r in ROUTERS}
        assert all(str(gone.pod_cidr) in f for f in failed(pod_cidrs))


# --- a config that does not describe the replica is refused (nothing is started) ----------------


def test_router_count_must_match_the_replica() -> None:
    two = two_router_replica("bgp2x")
    one = Replica("bgp", prefix="cdlbgp2y-", router_static_routes=False, bpf_hooks=False)
    assert replica_lab_config(two).bgp is not None
    assert plan(replica_lab_config(two)).router_ips == two.router_ips
    with pytest.raises(ValueError, match=r"config's 1 router\(s\) \(bgp.routers\) are at \['172.31.5.254'\]"):
        BgpDaemons(two, replica_lab_config(two, routers=1))
    with pytest.raises(ValueError, match=r"the replica's 1 \(rtr\) at \['172.31.5.254'\]"):
        BgpDaemons(one, replica_lab_config(one, routers=2))
    config = replica_lab_config(two)
    with pytest.raises(ValueError, match="use specs="):
        BgpDaemons(two, config, spec=frr_spec(config, plan(config), 0))
    swapped = [frr_spec(config, plan(config), 1), frr_spec(config, plan(config), 0)]
    with pytest.raises(ValueError, match=r"the spec for rtr has router-id 172\.31\.5\.253"):
        BgpDaemons(two, config, specs=swapped)
    moved = Replica(
        "bgp", prefix="cdlbgp2z-", routers=2, router_ip="172.31.5.200", router_static_routes=False
    )
    with pytest.raises(ValueError, match="does not describe this replica"):
        BgpDaemons(moved, replica_lab_config(moved))
