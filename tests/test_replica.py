"""The network-namespace replica really moves packets the way each mode claims.

Each mode is built once per module (about 0.2 s) and always torn down, even when a test fails.
Every claim is read back from the kernel (`ip -j`, `bpftool -j`, real tcpdump captures analysed
with verify.pcap), never from the replica's own bookkeeping.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from verify.__main__ import main
from verify.pcap import PacketInfo, analyze
from verify.probe import CommandResult, DeclaredRoute, Probe
from verify.replica import (
    Replica,
    ReplicaError,
    ReplicaUnsupported,
    namespaces_with_prefix,
    remove_namespaces,
)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "replica tests need root: they create network namespaces"
    missing = [tool for tool in ("ip", "tcpdump", "ping") if shutil.which(tool) is None]
    if missing:
        return f"replica tests need {', '.join(missing)} on PATH (Debian: iproute2, tcpdump, iputils-ping)"
    return None


SKIP = _skip_reason()
needs_root = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
HAVE_BPF = all(shutil.which(t) for t in ("clang", "llvm-objcopy", "tc", "bpftool"))
BPF_MISSING = "tc hooks need clang, llvm-objcopy, tc and bpftool"


def prefix() -> str:
    return f"cdlt{secrets.token_hex(3)}-"


@contextmanager
def built(mode: str, **kwargs: Any) -> Iterator[Replica]:
    """A replica that is torn down whatever happens, and proven gone afterwards."""
    kwargs.setdefault("bpf_hooks", HAVE_BPF)
    rep = Replica(mode, prefix=prefix(), **kwargs)
    try:
        rep.up()
        yield rep
    finally:
        rep.down()
    assert namespaces_with_prefix(rep.prefix) == []


@pytest.fixture(scope="module")
def overlay() -> Iterator[Replica]:
    with built("overlay") as rep:
        yield rep


@pytest.fixture(scope="module")
def native_auto() -> Iterator[Replica]:
    with built("native-auto") as rep:
        yield rep


@pytest.fixture(scope="module")
def bgp() -> Iterator[Replica]:
    with built("bgp") as rep:
        yield rep


@pytest.fixture
def static() -> Iterator[Replica]:
    with built("static") as rep:
        yield rep


# --- helpers --------------------------------------------------------------------------------------


def ping(probe: Probe, pod: str, dst: ipaddress.IPv4Address, count: int = 2) -> CommandResult:
    return probe.pod_exec(pod, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", str(dst)], timeout=15)


def loss(result: CommandResult) -> int:
    match = re.search(r"(\d+)% packet loss", result.stdout)
    assert match, f"no ping summary in: {result.stdout!r} {result.stderr!r}"
    return int(match.group(1))


def ttls(result: CommandResult) -> set[int]:
    return {int(t) for t in re.findall(r"\bttl=(\d+)", result.stdout)}


def between(
    packets: list[PacketInfo], a: ipaddress.IPv4Address, b: ipaddress.IPv4Address
) -> list[PacketInfo]:
    return [p for p in packets if {p.inner_src, p.inner_dst} == {str(a), str(b)}]


def mentions(packets: list[PacketInfo], *ips: ipaddress.IPv4Address) -> list[PacketInfo]:
    wanted = {str(ip) for ip in ips}
    return [p for p in packets if {p.inner_src, p.inner_dst, p.outer_src, p.outer_dst} & wanted]


def ip_json(rep: Replica, node: str, *args: str) -> list[dict[str, Any]]:
    result = rep.node_exec(node, ["ip", "-j", *args])
    assert result.ok, result.describe() + result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def routes_by_dst(rep: Replica, node: str) -> dict[str, dict[str, Any]]:
    return {r["dst"]: r for r in ip_json(rep, node, "route", "show")}


def worker(rep: Replica) -> str:
    return rep.pod("pod-a").node


# --- overlay (VXLAN) ------------------------------------------------------------------------------


@needs_root
def test_overlay_cross_node_ping_is_vxlan_on_8472(overlay: Replica, tmp_path: Path) -> None:
    a, c = overlay.pod("pod-a"), overlay.pod("pod-c")
    assert a.node != c.node
    pcap, result = overlay.capture(
        a.node,
        "eth0",
        "udp port 8472 or icmp",
        lambda: ping(overlay, "pod-a", c.ip),
        tmp_path / "x.pcap",
        count=4,
    )
    assert loss(result) == 0
    packets = analyze(pcap)
    pod_traffic = between(packets, a.ip, c.ip)
    assert len(pod_traffic) == 4
    assert {p.encapsulation for p in pod_traffic} == {"vxlan"}
    assert {p.udp_dport for p in pod_traffic} == {8472}
    assert all(p.vni for p in pod_traffic), [p.vni for p in pod_traffic]
    assert {p.inner_protocol for p in pod_traffic} == {"icmp"}
    assert sorted(p.icmp_type or 0 for p in pod_traffic) == [0, 0, 8, 8]
    node_ips = {str(overlay.node(a.node).ip), str(overlay.node(c.node).ip)}
    assert all({p.outer_src, p.outer_dst} == node_ips for p in pod_traffic)


@needs_root
def test_overlay_routes_point_at_cilium_host_and_the_device_is_vxlan_8472(overlay: Replica) -> None:
    for node in overlay.topology.nodes:
        host = ip_json(overlay, node.name, "addr", "show", "dev", "cilium_host")[0]["addr_info"]
        router = next(a for a in host if a["family"] == "inet")
        assert router["prefixlen"] == 32
        assert node.pod_cidr is not None and ipaddress.IPv4Address(router["local"]) in node.pod_cidr
        routes = routes_by_dst(overlay, node.name)
        for other in overlay.topology.nodes:
            r = routes[str(other.pod_cidr)]
            assert (r.get("gateway"), r.get("dev")) == (router["local"], "cilium_host"), r
        (vxlan,) = ip_json(overlay, node.name, "-d", "link", "show", "cilium_vxlan")
        assert vxlan["linkinfo"]["info_kind"] == "vxlan"
        assert vxlan["linkinfo"]["info_data"]["port"] == 8472
        assert vxlan["mtu"] == 1450


@needs_root
def test_overlay_intranode_ping_never_touches_the_tunnel(overlay: Replica, tmp_path: Path) -> None:
    a, b = overlay.pod("pod-a"), overlay.pod("pod-b")
    node, b_lxc = a.node, b.lxc
    assert b.node == node

    def on_lxc() -> tuple[Path, CommandResult]:
        # Positive control: the same traffic *is* seen on pod-b's lxc, so silence elsewhere means
        # something.
        return overlay.capture(
            node, b_lxc, "icmp", lambda: ping(overlay, "pod-a", b.ip), tmp_path / "lxc.pcap"
        )

    def on_tunnel() -> tuple[Path, tuple[Path, CommandResult]]:
        return overlay.capture(node, "cilium_vxlan", "", on_lxc, tmp_path / "vxlan.pcap")

    eth0, (tunnel, (lxc, result)) = overlay.capture(node, "eth0", "", on_tunnel, tmp_path / "eth0.pcap")
    assert loss(result) == 0
    assert len(between(analyze(lxc), a.ip, b.ip)) == 4
    for pcap in (eth0, tunnel):
        packets = analyze(pcap)
        assert mentions(packets, a.ip, b.ip) == [], pcap
        assert [p for p in packets if p.encapsulation != "none"] == [], pcap
    routes = routes_by_dst(overlay, node)
    assert routes[str(a.ip)]["dev"].startswith("lxc")
    assert routes[str(b.ip)]["dev"].startswith("lxc")


# --- native-auto --------------------------------------------------------------------------------


@needs_root
def test_native_auto_routes_remote_27s_via_node_ips(native_auto: Replica) -> None:
    nodes = native_auto.topology.nodes
    assert [str(n.pod_cidr) for n in nodes] == ["10.10.0.0/27", "10.10.0.32/27", "10.10.0.64/27"]
    for node in nodes:
        routes = routes_by_dst(native_auto, node.name)
        for other in nodes:
            if other is node:
                assert str(other.pod_cidr) not in routes
                continue
            r = routes[str(other.pod_cidr)]
            assert (r.get("gateway"), r.get("dev"), r.get("protocol")) == (str(other.ip), "eth0", "kernel"), r
        for pod in (p for p in native_auto.topology.pods if p.node == node.name):
            r = routes[str(pod.ip)]
            assert r["dev"].startswith("lxc") and r.get("scope") == "link", r
        assert not native_auto.node_exec(node.name, ["ip", "link", "show", "cilium_vxlan"]).ok


@needs_root
def test_native_auto_pod_ips_are_raw_on_the_wire(native_auto: Replica, tmp_path: Path) -> None:
    a, c = native_auto.pod("pod-a"), native_auto.pod("pod-c")
    pcap, result = native_auto.capture(
        a.node,
        "eth0",
        "icmp or udp port 8472",
        lambda: ping(native_auto, "pod-a", c.ip),
        tmp_path / "n.pcap",
        count=4,
    )
    assert loss(result) == 0
    assert ttls(result) == {62}
    packets = analyze(pcap)
    assert len(between(packets, a.ip, c.ip)) == 4
    assert {(p.encapsulation, p.inner_protocol, p.outer_src) for p in packets} == {("none", "icmp", None)}
    assert [p for p in packets if p.udp_dport == 8472] == []


# --- static -------------------------------------------------------------------------------------


@needs_root
def test_static_fails_without_routes_works_with_them_and_fails_again(static: Replica) -> None:
    a, c = static.pod("pod-a"), static.pod("pod-c")
    remote = static.node(c.node)

    def has_route() -> bool:
        r = routes_by_dst(static, a.node).get(str(remote.pod_cidr))
        return r is not None and r.get("gateway") == str(remote.ip)

    assert not has_route()
    before = ping(static, "pod-a", c.ip)
    assert loss(before) == 100
    assert "Unreachable" in before.stdout

    static.add_static_routes()
    static.add_static_routes()  # idempotent
    assert has_route()
    declared = {(r.node, r.dest, r.via) for r in static.topology.routes}
    for node in static.topology.nodes:
        routes = routes_by_dst(static, node.name)
        for other in static.topology.nodes:
            if other is not node:
                assert other.pod_cidr is not None
                assert routes[str(other.pod_cidr)]["gateway"] == str(other.ip)
                assert (node.name, other.pod_cidr, other.ip) in declared
    after = ping(static, "pod-a", c.ip, count=3)
    assert loss(after) == 0
    assert ttls(after) == {62}

    static.remove_static_routes()
    static.remove_static_routes()  # idempotent
    assert not has_route()
    assert loss(ping(static, "pod-a", c.ip)) == 100


@needs_root
def test_static_routes_flag_installs_them_at_build() -> None:
    with built("static", static_routes=True) as rep:
        assert loss(ping(rep, "pod-a", rep.pod("pod-c").ip)) == 0


def test_static_routes_are_declared_in_the_topology() -> None:
    rep = Replica("static", prefix=prefix())
    assert set(rep.topology.routes) == {
        DeclaredRoute(n.name, o.pod_cidr, o.ip) for n in rep.nodes for o in rep.nodes if o is not n
    }
    assert len(rep.topology.routes) == 6


# --- bgp (native routing through a router namespace) ----------------------------------------------


@needs_root
def test_bgp_pod_traffic_crosses_the_router(bgp: Replica, tmp_path: Path) -> None:
    a, c = bgp.pod("pod-a"), bgp.pod("pod-c")
    router = bgp.topology.extra["router"]
    pcap, result = bgp.capture(
        router, "eth0", "icmp", lambda: ping(bgp, "pod-a", c.ip), tmp_path / "r.pcap", count=8
    )
    assert loss(result) == 0
    assert ttls(result) == {61}  # worker, router, worker2
    seen = between(analyze(pcap), a.ip, c.ip)
    assert len(seen) == 8  # each request and reply enters and leaves the router
    for node in bgp.topology.nodes:
        r = routes_by_dst(bgp, node.name)[str(bgp.pod_cidr)]
        assert (r.get("gateway"), r.get("dev")) == (str(bgp.router_ip), "eth0")


@needs_root
def test_bgp_router_namespace_is_a_forwarding_router(bgp: Replica) -> None:
    assert bgp.router_namespace.startswith(bgp.prefix)
    assert (
        bgp.router_namespace
        in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    )
    sysctls = bgp.router_exec(["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects"])
    assert sysctls.ok and sysctls.stdout.split() == ["1", "0"]
    assert sysctls.where == "router rtr"
    addrs = ip_json(bgp, "rtr", "addr", "show", "dev", "eth0")[0]["addr_info"]
    assert [a["local"] for a in addrs if a["family"] == "inet"] == [str(bgp.router_ip)]
    routes = {r["dst"]: r for r in json.loads(bgp.router_exec(["ip", "-j", "route"]).stdout)}
    for node in bgp.topology.nodes:
        assert routes[str(node.pod_cidr)]["gateway"] == str(node.ip)


@needs_root
def test_bgp_router_without_static_routes_leaves_pods_unreachable() -> None:
    with built("bgp", router_static_routes=False, router_ip="172.31.5.200") as rep:
        assert rep.topology.extra["router.ip"] == "172.31.5.200"
        routes = json.loads(rep.router_exec(["ip", "-j", "route"]).stdout)
        assert [r["dst"] for r in routes] == ["172.31.5.0/24"]
        assert loss(ping(rep, "pod-a", rep.pod("pod-c").ip)) == 100


@needs_root
def test_bgp_two_routers_share_the_pod_traffic_through_one_multipath_route(tmp_path: Path) -> None:
    with built("bgp", routers=2) as rep:
        assert rep.router_names == ("rtr", "rtr2")
        assert rep.router_namespaces == (f"{rep.prefix}rtr", f"{rep.prefix}rtr2")
        for router, ip in zip(("rtr", "rtr2"), ("172.31.5.254", "172.31.5.253"), strict=True):
            result = rep.router_exec(["ip", "-j", "addr", "show", "dev", "eth0"], router=router)
            assert result.ok and result.where == f"router {router}"
            addrs = json.loads(result.stdout)[0]["addr_info"]
            assert [a["local"] for a in addrs if a["family"] == "inet"] == [ip]
            routes = {r["dst"]: r for r in ip_json(rep, router, "route", "show")}
            for node in rep.topology.nodes:  # router_static_routes: on every router
                assert routes[str(node.pod_cidr)]["gateway"] == str(node.ip)
        for node in rep.topology.nodes:
            r = routes_by_dst(rep, node.name)[str(rep.pod_cidr)]
            assert "gateway" not in r
            assert [(h["gateway"], h["dev"]) for h in r["nexthops"]] == [
                ("172.31.5.254", "eth0"),
                ("172.31.5.253", "eth0"),
            ]
        a, c = rep.pod("pod-a"), rep.pod("pod-c")

        def ping_ac() -> CommandResult:
            return ping(rep, "pod-a", c.ip, count=3)

        def inner() -> tuple[Path, CommandResult]:
            return rep.capture("rtr2", "eth0", "icmp", ping_ac, tmp_path / "rtr2.pcap")

        rtr_pcap, (rtr2_pcap, result) = rep.capture("rtr", "eth0", "icmp", inner, tmp_path / "rtr.pcap")
        assert loss(result) == 0 and ttls(result) == {61}  # worker, one router, worker2
        seen = {"rtr": analyze(rtr_pcap), "rtr2": analyze(rtr2_pcap)}
        # The nodes' multipath hash picks a router per direction; each packet crosses exactly one.
        for src, dst in ((a.ip, c.ip), (c.ip, a.ip)):
            crossed = {
                r
                for r, pkts in seen.items()
                if any((p.inner_src, p.inner_dst) == (str(src), str(dst)) for p in pkts)
            }
            assert len(crossed) == 1, (src, dst, crossed)
        with pytest.raises(KeyError, match="routers: \\['rtr', 'rtr2'\\]"):
            rep.router_exec(["true"], router="rtr3")


# --- eBPF hooks -----------------------------------------------------------------------------------


@needs_root
@pytest.mark.skipif(not HAVE_BPF, reason=BPF_MISSING)
def test_bpftool_lists_cilium_hooks_on_every_node(overlay: Replica) -> None:
    for node in overlay.topology.nodes:
        result = overlay.node_exec(node.name, ["bpftool", "-j", "net", "show"])
        assert result.ok, result.stderr
        attached = set()
        for entry in json.loads(result.stdout)[0]["tc"]:
            program = re.sub(r"^.*:\[(.*)\]$", r"\1", entry["name"])
            attached.add((entry["devname"], entry["kind"].split("/")[-1], program))
        lxcs = [
            link["ifname"] for link in ip_json(overlay, node.name, "link") if link["ifname"].startswith("lxc")
        ]
        assert "lxc_health" in lxcs
        assert len(lxcs) == 1 + sum(1 for p in overlay.topology.pods if p.node == node.name)
        for lxc in lxcs:
            assert (lxc, "ingress", "cil_from_container") in attached
        assert ("cilium_net", "ingress", "cil_to_host") in attached
        assert ("cilium_host", "ingress", "cil_to_host") in attached
        assert ("cilium_host", "egress", "cil_from_host") in attached


# --- geneve ---------------------------------------------------------------------------------------


def kernel_has_geneve() -> bool:
    """Try what the replica will try, in a scratch namespace of our own."""
    scratch = f"{prefix()}scratch"
    subprocess.run(["ip", "netns", "add", scratch], check=True)
    try:
        probe = subprocess.run(
            [
                "ip",
                "-n",
                scratch,
                "link",
                "add",
                "name",
                "g0",
                "type",
                "geneve",
                "external",
                "dstport",
                "6081",
            ],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", scratch], check=True)


@needs_root
def test_geneve_builds_where_the_kernel_can_and_says_why_where_it_cannot(tmp_path: Path) -> None:
    rep = Replica("geneve", prefix=prefix(), bpf_hooks=False)
    if not kernel_has_geneve():
        with pytest.raises(ReplicaUnsupported, match=r"Geneve.*type geneve external dstport 6081"):
            rep.up()
        assert namespaces_with_prefix(rep.prefix) == []  # a failed build leaves nothing behind
        return
    with rep:
        a, c = rep.pod("pod-a"), rep.pod("pod-c")
        (geneve,) = ip_json(rep, a.node, "-d", "link", "show", "cilium_geneve")
        assert geneve["linkinfo"]["info_data"]["port"] == 6081
        pcap, result = rep.capture(
            a.node, "eth0", "udp port 6081", lambda: ping(rep, "pod-a", c.ip), tmp_path / "g.pcap", count=4
        )
        assert loss(result) == 0
        tunneled = between(analyze(pcap), a.ip, c.ip)
        assert {(p.encapsulation, p.udp_dport, p.inner_protocol) for p in tunneled} == {
            ("geneve", 6081, "icmp")
        }
        assert all(p.vni for p in tunneled)


# --- lifecycle ------------------------------------------------------------------------------------


@needs_root
def test_down_twice_is_fine_and_ends_processes_left_inside() -> None:
    rep = Replica("native-auto", prefix=prefix(), bpf_hooks=False)
    rep.up()
    try:
        assert sorted(namespaces_with_prefix(rep.prefix)) == sorted(rep.namespaces)
        assert len(rep.namespaces) == 10  # underlay, 3 nodes, 3 pods, 3 health endpoints
        assert rep.build_seconds is not None and rep.build_seconds < 5
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", rep.node_namespace(rep.nodes[0].name), "sleep", "60"]
        )
        time.sleep(0.05)
    finally:
        started = time.monotonic()
        rep.down()
        elapsed = time.monotonic() - started
    rep.down()
    assert remove_namespaces(rep.prefix) == []
    assert namespaces_with_prefix(rep.prefix) == []
    assert daemon.wait(2) == -signal.SIGTERM  # ended by the teardown, not by its own 60 s
    assert elapsed < 2.0, f"teardown took {elapsed:.2f}s"


@needs_root
def test_up_removes_leftovers_of_its_prefix() -> None:
    rep = Replica("native-auto", prefix=prefix(), bpf_hooks=False)
    stray = f"{rep.prefix}stray"
    subprocess.run(["ip", "netns", "add", stray], check=True)
    with rep:
        assert stray not in namespaces_with_prefix(rep.prefix)
    assert namespaces_with_prefix(rep.prefix) == []


@needs_root
def test_context_manager_tears_down_when_the_body_fails() -> None:
    rep = Replica("native-auto", prefix=prefix(), bpf_hooks=False)
    with pytest.raises(RuntimeError, match="boom"), rep:
        assert namespaces_with_prefix(rep.prefix)
        raise RuntimeError("boom")
    assert namespaces_with_prefix(rep.prefix) == []


@needs_root
def test_two_replicas_coexist(native_auto: Replica) -> None:
    with built("native-auto", bpf_hooks=False) as other:
        assert set(other.namespaces).isdisjoint(native_auto.namespaces)
        for rep in (native_auto, other):
            assert loss(ping(rep, "pod-a", rep.pod("pod-c").ip)) == 0
    assert loss(ping(native_auto, "pod-a", native_auto.pod("pod-c").ip)) == 0


@needs_root
def test_capture_refuses_a_filter_tcpdump_rejects(native_auto: Replica, tmp_path: Path) -> None:
    ran: list[bool] = []
    with pytest.raises(ReplicaError, match="did not start listening"):
        native_auto.capture(
            worker(native_auto), "eth0", "not a filter ((", lambda: ran.append(True), tmp_path / "x.pcap"
        )
    assert ran == []


@needs_root
def test_capture_with_a_count_stops_at_the_count(native_auto: Replica, tmp_path: Path) -> None:
    c = native_auto.pod("pod-c")
    started = time.monotonic()
    pcap, _ = native_auto.capture(
        worker(native_auto),
        "eth0",
        "icmp",
        lambda: ping(native_auto, "pod-a", c.ip, count=3),
        tmp_path / "c.pcap",
        count=2,
        timeout=8,
    )
    assert time.monotonic() - started < 4
    assert len(analyze(pcap)) == 2


@needs_root
def test_exec_results_say_where_and_what_ran(native_auto: Replica) -> None:
    result = native_auto.pod_exec("pod-a", ["ip", "-j", "addr", "show", "dev", "eth0"])
    assert result.ok and result.where == "pod pod-a"
    pod_ns = native_auto.pod_namespace("pod-a")
    assert result.argv == ("ip", "netns", "exec", pod_ns, "ip", "-j", "addr", "show", "dev", "eth0")
    addr = json.loads(result.stdout)[0]["addr_info"][0]
    assert (addr["local"], addr["prefixlen"]) == (str(native_auto.pod("pod-a").ip), 32)
    slow = native_auto.node_exec(worker(native_auto), ["sleep", "5"], timeout=0.3)
    assert slow.returncode == 124 and "timed out" in slow.stderr
    failing = native_auto.node_exec(worker(native_auto), ["false"])
    assert failing.returncode == 1 and failing.where == f"node {worker(native_auto)}"


@needs_root
def test_cli_up_prints_the_topology_and_down_removes_it(capsys: pytest.CaptureFixture[str]) -> None:
    p = prefix()
    try:
        assert main(["replica", "up", "--mode", "native-auto", "--prefix", p, "--no-bpf-hooks"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["topology"]["mode"] == "native-auto"
        assert [n["name"] for n in report["topology"]["nodes"]] == [
            "replica-control-plane",
            "replica-worker",
            "replica-worker2",
        ]
        assert report["enter"] == f"ip netns exec {p}replica-worker bash"
        assert set(report["namespaces"].values()) <= set(namespaces_with_prefix(p))
    finally:
        assert main(["replica", "down", "--prefix", p]) == 0
    assert namespaces_with_prefix(p) == []
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["removed"]
    assert main(["replica", "down", "--prefix", p]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == []
    assert main(["replica", "down", "--prefix", "lab-"]) == 1  # never a prefix outside cdl*-
    assert "prefix 'lab-'" in capsys.readouterr().err


# --- construction (no namespaces needed) ------------------------------------------------------------


def test_topology_matches_the_lab_plan() -> None:
    overlay = Replica("overlay", prefix="cdlplan-")
    assert [(n.name, str(n.ip), str(n.pod_cidr)) for n in overlay.topology.nodes] == [
        ("replica-control-plane", "172.31.1.2", "10.244.0.0/24"),
        ("replica-worker", "172.31.1.3", "10.244.1.0/24"),
        ("replica-worker2", "172.31.1.4", "10.244.2.0/24"),
    ]
    assert [(p.name, p.node) for p in overlay.topology.pods] == [
        ("pod-a", "replica-worker"),
        ("pod-b", "replica-worker"),
        ("pod-c", "replica-worker2"),
    ]
    assert all(ns.startswith("cdlplan-") for ns in overlay.namespaces)
    assert all(p.lxc.startswith("lxc") and len(p.lxc) <= 15 for p in overlay.pods)
    native = Replica("bgp", prefix="cdlplan-", cluster="lab", underlay="192.168.77.0/24")
    assert [str(n.pod_cidr) for n in native.topology.nodes] == [
        "10.10.0.0/27",
        "10.10.0.32/27",
        "10.10.0.64/27",
    ]
    assert native.nodes[1].name == "lab-worker" and str(native.nodes[1].ip) == "192.168.77.3"
    assert native.topology.extra["router.ip"] == "192.168.77.254"
    assert native.topology.extra["router.namespace"] == "cdlplan-rtr"
    assert {r.dest for r in native.topology.routes} == {ipaddress.IPv4Network("10.10.0.0/16")}
    assert native.topology.extra["routers"] == "rtr"
    assert native.router_names == ("rtr",) and native.router_namespaces == ("cdlplan-rtr",)
    assert overlay.routers == () and "routers" not in overlay.topology.extra


def test_two_routers_take_the_top_of_the_underlay_like_the_lab_plan() -> None:
    rep = Replica("bgp", prefix="cdlplan-", cluster="lab", underlay="192.168.77.0/24", routers=2)
    assert [(r.name, r.index, r.namespace, str(r.ip)) for r in rep.routers] == [
        ("rtr", 0, "cdlplan-rtr", "192.168.77.254"),
        ("rtr2", 1, "cdlplan-rtr2", "192.168.77.253"),
    ]
    assert rep.namespaces[-2:] == ["cdlplan-rtr", "cdlplan-rtr2"]
    extra = rep.topology.extra
    assert (extra["router"], extra["routers"], extra["router.ip"]) == ("rtr", "rtr,rtr2", "192.168.77.254")
    assert extra["router.namespace"] == "cdlplan-rtr"
    # Multipath cannot be a single-`via` DeclaredRoute; like the kind lab, none is declared.
    assert rep.topology.routes == ()
    assert rep.supernet_route() == (
        "10.10.0.0/16 nexthop via 192.168.77.254 dev eth0 nexthop via 192.168.77.253 dev eth0"
    )
    moved = Replica("bgp", prefix="cdlplan-", routers=3, router_ip="172.31.5.100")
    assert [str(ip) for ip in moved.router_ips] == ["172.31.5.100", "172.31.5.99", "172.31.5.98"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "vxlan"}, "mode must be one of"),
        ({"mode": "overlay", "prefix": "lab-"}, "prefix"),
        ({"mode": "overlay", "prefix": "cdl-x-"}, "prefix"),
        ({"mode": "overlay", "underlay": "8.8.8.0/24"}, "RFC 1918"),
        ({"mode": "overlay", "pod_cidr": "172.31.1.0/24"}, "apart from the underlay"),
        ({"mode": "native-auto", "static_routes": True}, "static_routes"),
        ({"mode": "bgp", "router_ip": "172.31.5.3"}, "router IP"),
        ({"mode": "bgp", "router_ip": "10.1.1.1"}, "router IP"),
        ({"mode": "bgp", "routers": 0}, "routers must be an integer 1-4"),
        ({"mode": "bgp", "routers": 5}, "routers must be an integer 1-4"),
        ({"mode": "overlay", "routers": 2}, "routers applies to mode 'bgp' only"),
        ({"mode": "bgp", "routers": 2, "router_ip": "172.31.5.5"}, "172.31.5.4 \\(of rtr2"),
        ({"mode": "overlay", "vni": 0}, "non-zero"),
        ({"mode": "overlay", "cluster": "Bad_Name"}, "DNS-1123"),
    ],
)
def test_bad_arguments_fail_before_anything_is_built(kwargs: dict[str, Any], message: str) -> None:
    mode = kwargs.pop("mode")
    with pytest.raises(ValueError, match=message):
        Replica(mode, **kwargs)


def test_kube_get_answers_for_the_control_plane_it_stands_in_for() -> None:
    native = Replica("native-auto", prefix="cdlplan-")
    items = json.loads(native.kube_get("ciliumnodes").stdout)["items"]
    pools = {i["metadata"]["name"]: i["spec"]["ipam"]["pools"]["allocated"] for i in items}
    assert pools == {n.name: [{"pool": "default", "cidrs": [str(n.pod_cidr)]}] for n in native.nodes}
    pods = json.loads(native.kube_get("pods").stdout)["items"]
    assert {(p["metadata"]["name"], p["spec"]["nodeName"], p["status"]["podIP"]) for p in pods} == {
        (p.name, p.node, str(p.ip)) for p in native.pods
    }
    overlay = Replica("overlay", prefix="cdlplan-")
    nodes = json.loads(overlay.kube_get("nodes").stdout)["items"]
    assert [n["spec"]["podCIDR"] for n in nodes] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
    unknown = overlay.kube_get("services")
    assert unknown.returncode == 1 and "services" in unknown.stderr
