"""verify/checks.py cases a mutation run (`make mutation`) found no test for.

The fast tier's rule cases (tests/fast/) break one condition and look at the FAILs. What they
left open: the evidence a report shows (labels, commands, pcap names, the 1500-byte cut of a
link dump), the timeouts a check gives the probe, the tunnel ports a capture is decoded with,
that one broken node does not stop the others from being judged, a few edge inputs, and the
settle loop of Check.run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakeprobe import (
    Answer,
    World,
    forget_pod_cidr,
    judge,
    load_world,
    lose_replies,
    node_name,
    ping_of,
)
from mutantsupport import TimedProbe, capture_filter

from verify import checks
from verify.checks import Check, Context, Evidence, Status, Verdict, judge_encapsulated
from verify.pcap import analyze
from verify.probe import CommandResult, Topology

# --- what a verdict shows: evidence -----------------------------------------------------------


def _nodes(world: World) -> list[str]:
    return [n.name for n in world.topology.nodes]


def _each_node(*labels: str) -> Callable[[World], list[str]]:
    return lambda w: [label.format(n) for n in _nodes(w) for label in labels]


def _ip(world: World, pod: str) -> str:
    return str(world.topology.pod(pod).ip)


EVIDENCE: dict[tuple[str, str], Callable[[World], list[str]]] = {
    ("overlay", "intranode.ping"): lambda w: [f"ping pod-a -> pod-b {_ip(w, 'pod-b')}"],
    ("overlay", "datapath.bpf-hooks"): _each_node("bpftool net show on {}", "links on {}"),
    ("overlay", "datapath.cilium-host"): _each_node("cilium_host on {}"),
    ("overlay", "overlay.routes"): _each_node("cilium_host on {}", "routes on {}"),
    ("overlay", "overlay.device"): _each_node("links on {}"),
    ("overlay", "path.mtu"): lambda w: [f"largest DF packet pod-a -> pod-c {_ip(w, 'pod-c')}"],
    ("native-auto", "native.no-tunnel"): _each_node("links on {}"),
    ("native-auto", "native.routes"): _each_node("routes on {}"),
    ("native-auto", "native.pools"): lambda w: ["CiliumNodes"],
    ("static-bare", "static.fails-without-routes"): lambda w: [
        f"ping pod-a -> pod-c {_ip(w, 'pod-c')} (no routes yet)"
    ],
    ("static", "static.routes"): _each_node("routes on {}"),
    ("static", "static.ping"): lambda w: [f"ping pod-a -> pod-c {_ip(w, 'pod-c')}"],
}


@pytest.mark.parametrize(("world_name", "check_id"), EVIDENCE)
def test_each_piece_of_evidence_is_labelled_with_what_ran_where(
    world_name: str, check_id: str, tmp_path: Path
) -> None:
    world = load_world(world_name)
    verdict = judge(world, check_id, tmp_path)
    assert verdict.status is Status.PASS
    assert [e.label for e in verdict.evidence] == EVIDENCE[world_name, check_id](world)
    for e in verdict.evidence:
        assert e.output and e.command


@pytest.mark.parametrize(
    ("world_name", "check_id"),
    [
        ("overlay", "overlay.capture"),
        ("geneve", "overlay.capture"),
        ("native-auto", "native.capture"),
        ("static", "native.capture"),
    ],
)
def test_a_capture_is_kept_as_a_pcap_named_after_check_node_and_device(
    world_name: str, check_id: str, tmp_path: Path
) -> None:
    world = load_world(world_name)
    verdict = judge(world, check_id, tmp_path)
    assert verdict.passed
    capture, pinged = verdict.evidence
    a = world.topology.pod("pod-a")
    capture_filter(capture, a.node, "eth0", check_id, tmp_path)
    assert pinged.label == f"ping pod-a -> pod-c {_ip(world, 'pod-c')}"


def test_intranode_path_keeps_both_captures_the_ping_and_both_routes(tmp_path: Path) -> None:
    world = load_world("overlay")
    verdict = judge(world, "intranode.path", tmp_path)
    node = world.topology.pod("pod-a").node
    tunnel, wire, pinged, to_a, to_b = verdict.evidence
    assert capture_filter(tunnel, node, "cilium_vxlan", "intranode.path", tmp_path) == (
        f"host {_ip(world, 'pod-a')} and host {_ip(world, 'pod-b')}"
    )
    capture_filter(wire, node, "eth0", "intranode.path", tmp_path)
    assert pinged.label == f"ping pod-a -> pod-b {_ip(world, 'pod-b')}"
    assert [to_a.label, to_b.label] == [f"route to pod-a on {node}", f"route to pod-b on {node}"]


def test_path_mtu_evidence_says_how_the_size_was_found(tmp_path: Path) -> None:
    world = load_world("overlay")
    (e,) = judge(world, "path.mtu", tmp_path).evidence
    c = _ip(world, "pod-c")
    assert (e.command, e.output) == (f"ping -M do -s <size-28> {c} (binary search)", "1450 bytes")


def test_a_link_dump_is_kept_to_its_first_1500_characters(tmp_path: Path) -> None:
    world = load_world("overlay")
    verdict = judge(world, "overlay.device", tmp_path)
    for node, e in zip(_nodes(world), verdict.evidence, strict=True):
        dump = world.node(node, "ip", "-j", "-d", "link", "show").stdout
        assert len(dump) > 1500 and e.output == dump[:1500]


def test_evidence_of_a_command_keeps_4000_characters_and_both_streams() -> None:
    long = CommandResult("node n", ("ip", "x"), 0, "o" * 5000, "")
    assert Evidence.of("label", long) == Evidence("label", "[node n] $ ip x  (exit 0)", "o" * 4000)
    both = CommandResult("node n", ("ip",), 1, "out\n", "err\n")
    assert Evidence.of("l", both).output == "out\n\n[stderr]\nerr\n"
    assert Evidence.of("l", dataclasses.replace(both, stdout=" \n")).output == "err\n"


# --- what a check gives the probe: timeouts -----------------------------------------------------


def _timeouts(world_name: str, check_id: str, tmp_path: Path) -> list[tuple[str, float]]:
    from verify import catalogue  # noqa: PLC0415

    probe = TimedProbe(load_world(world_name))
    assert catalogue.by_id(check_id).run(probe, Context(tmp_path, probe.topology.mode)).passed
    return probe.timeouts


def test_captures_wait_10s_the_intranode_wire_15s_and_a_ping_30s(tmp_path: Path) -> None:
    assert _timeouts("overlay", "overlay.capture", tmp_path) == [
        ("capture replica-worker eth0", 10.0),
        ("pod pod-a ping", 30),
    ]
    assert _timeouts("overlay", "intranode.path", tmp_path) == [
        ("capture replica-worker eth0", 15.0),
        ("capture replica-worker cilium_vxlan", 10.0),
        ("pod pod-a ping", 30),
    ]


# --- captures are decoded with the lab's own tunnel ports ----------------------------------------


@pytest.mark.parametrize(("world_name", "field"), [("overlay", "vxlan_port"), ("geneve", "geneve_port")])
def test_a_capture_is_decoded_with_the_topologys_tunnel_port(
    world_name: str, field: str, tmp_path: Path
) -> None:
    """Told the lab tunnels on another port, the recorded tunnel packets are plain UDP to the check."""
    world = load_world(world_name)
    old = getattr(world.topology, field)
    node = world.topology.pod("pod-a").node
    (key,) = [
        k for k in world.captures if k[:2] == (node, "eth0") and k[2].startswith(f"udp port {old} or (")
    ]
    if field == "vxlan_port":
        world.topology = dataclasses.replace(world.topology, vxlan_port=4790)
    else:
        world.topology = dataclasses.replace(world.topology, geneve_port=4790)
    world.captures[(node, "eth0", key[2].replace(f"udp port {old} ", "udp port 4790 "))] = world.captures[key]
    verdict = judge(world, "overlay.capture", tmp_path)
    assert verdict.status is Status.FAIL
    assert any(f.startswith("FAIL 0 ") and "packets carry pod traffic" in f for f in verdict.findings)


# --- one broken node does not stop the others from being judged ----------------------------------


def _drop_route(world: World, node: str, dst: str) -> None:
    answer = world.node(node, "ip", "-j", "route", "show")
    answer.json = [r for r in answer.json if r["dst"] != dst]


def _no_cilium_host_address(world: World, node: str) -> None:
    world.node(node, "ip", "-j", "addr", "show", "dev", "cilium_host").json = []


def _drop_link(world: World, node: str, ifname: str) -> None:
    answer = world.node(node, "ip", "-j", "-d", "link", "show")
    answer.json = [link for link in answer.json if link["ifname"] != ifname]


def _bpftool_fails(world: World, node: str) -> None:
    answer = world.node(node, "bpftool", "-j", "net", "show")
    answer.returncode, answer.stdout, answer.stderr = 1, "", "Error: can't open netns"


def _no_ciliumnode(world: World, node: str) -> None:
    answer = world.answer("kube", "cluster", ("kubectl", "get", "ciliumnodes", "-o", "json"))
    data = answer.json
    data["items"] = [i for i in data["items"] if i["metadata"]["name"] != node]
    answer.json = data


def _cidr(world: World, index: int) -> str:
    return str(world.topology.nodes[index].pod_cidr)


# (world, check, break the first node or item, a finding about a later one that must stay)
LATER: list[tuple[str, str, Callable[[World], None], Callable[[World], str]]] = [
    (
        "overlay",
        "datapath.bpf-hooks",
        lambda w: _bpftool_fails(w, node_name(w, 0)),
        lambda w: node_name(w, 2),
    ),
    (
        "overlay",
        "datapath.cilium-host",
        lambda w: _no_cilium_host_address(w, node_name(w, 0)),
        lambda w: node_name(w, 2),
    ),
    (
        "overlay",
        "overlay.device",
        lambda w: _drop_link(w, node_name(w, 0), "cilium_vxlan"),
        lambda w: node_name(w, 2),
    ),
    (
        "overlay",
        "overlay.routes",
        lambda w: _no_cilium_host_address(w, node_name(w, 0)),
        lambda w: node_name(w, 2),
    ),
    (
        "overlay",
        "overlay.routes",
        lambda w: forget_pod_cidr(w, 0),
        lambda w: f"{node_name(w, 1)}: {_cidr(w, 2)}",
    ),
    (
        "overlay",
        "overlay.routes",
        lambda w: _drop_route(w, node_name(w, 1), _cidr(w, 0)),
        lambda w: f"{node_name(w, 1)}: {_cidr(w, 2)}",
    ),
    (
        "native-auto",
        "native.routes",
        lambda w: forget_pod_cidr(w, 0),
        lambda w: f"{node_name(w, 1)}: {_cidr(w, 2)}",
    ),
    (
        "native-auto",
        "native.routes",
        lambda w: _drop_route(w, node_name(w, 1), _cidr(w, 0)),
        lambda w: f"{node_name(w, 1)}: {_cidr(w, 2)}",
    ),
    ("native-auto", "native.pools", lambda w: _no_ciliumnode(w, node_name(w, 0)), lambda w: node_name(w, 2)),
    (
        "static",
        "static.routes",
        lambda w: _drop_route(w, node_name(w, 0), _cidr(w, 1)),
        lambda w: f"{node_name(w, 0)}: {_cidr(w, 2)}",
    ),
]


@pytest.mark.parametrize(("world_name", "check_id", "brk", "about"), LATER)
def test_one_broken_item_leaves_the_rest_judged(
    world_name: str,
    check_id: str,
    brk: Callable[[World], None],
    about: Callable[[World], str],
    tmp_path: Path,
) -> None:
    world = load_world(world_name)
    whole = judge(world, check_id, tmp_path)
    later = [f for f in whole.findings if about(world) in f]
    assert whole.passed and later
    brk(world)
    broken = judge(world, check_id, tmp_path)
    assert broken.status is Status.FAIL
    assert [f for f in later if f not in broken.findings] == []


# --- edge inputs ---------------------------------------------------------------------------------


def test_an_lxd_bridge_is_not_taken_for_a_pod_veth(tmp_path: Path) -> None:
    """`lxc*` means Cilium's pod veths: a host's `lxdbr0` carries no cil_from_container."""
    world = load_world("overlay")
    node = node_name(world, 1)
    answer = world.node(node, "ip", "-j", "-d", "link", "show")
    answer.json = [
        *answer.json,
        {"ifindex": 99, "ifname": "lxdbr0", "mtu": 1500, "linkinfo": {"info_kind": "bridge"}},
    ]
    verdict = judge(world, "datapath.bpf-hooks", tmp_path)
    assert verdict.passed and not any("lxdbr0" in f for f in verdict.findings)


def test_a_pod_reached_through_cilium_host_is_on_the_intranode_path(tmp_path: Path) -> None:
    world = load_world("overlay")
    a = world.topology.pod("pod-a")
    answer = world.node(a.node, "ip", "-j", "route", "get", str(a.ip))
    answer.json = [dict(answer.json[0], dev="cilium_host")]
    verdict = judge(world, "intranode.path", tmp_path)
    assert verdict.passed
    assert (
        f"ok   {a.node} reaches pod-a {a.ip} via dev cilium_host (want lxc* or cilium_host)"
        in verdict.findings
    )


def test_the_encapsulation_findings_show_the_protocols_and_vnis_seen(tmp_path: Path) -> None:
    world = load_world("overlay")
    verdict = judge(world, "overlay.capture", tmp_path)
    packets = analyze(verdict.evidence[0].artifact or "")
    vnis = sorted({p.vni for p in packets if p.encapsulation == "vxlan" and p.vni is not None})
    assert vnis and 0 not in vnis
    assert "ok   inner protocol is ICMP (['icmp'])" in verdict.findings
    assert f"ok   VNI is non-zero (the source identity): {vnis}" in verdict.findings
    zeroed = [dataclasses.replace(p, vni=0) if p.encapsulation == "vxlan" else p for p in packets]
    a, c = world.topology.pod("pod-a").ip, world.topology.pod("pod-c").ip
    v = Verdict("overlay.capture")
    judge_encapsulated(v, zeroed, "vxlan", a, c, {str(n.ip) for n in world.topology.nodes})
    assert "FAIL VNI is non-zero (the source identity): [0]" in v.findings


def test_native_pools_judges_against_the_topologys_pool_or_the_default(tmp_path: Path) -> None:
    world = load_world("native-auto")
    verdict = judge(world, "native.pools", tmp_path)
    for node in world.topology.nodes:
        assert f"ok   {node.name}: pool default allocated ['{node.pod_cidr}']" in verdict.findings
    extra = {k: v for k, v in world.topology.extra.items() if not k.startswith("pool_")}
    assert judge(world, "native.pools", tmp_path, dataclasses.replace(world.topology, extra=extra)).passed
    for changed, named in (
        ({"pool_mask": "26"}, "is a /26"),
        ({"pool_cidr": "10.20.0.0/16"}, "pool 10.20.0.0/16"),
    ):
        told: Topology = dataclasses.replace(world.topology, extra={**world.topology.extra, **changed})
        other = judge(world, "native.pools", tmp_path, told)
        assert other.status is Status.FAIL and all(named in f for f in other.findings if f.startswith("FAIL"))


def test_every_error_the_kernel_answered_is_noted(tmp_path: Path) -> None:
    world = load_world("static-bare")
    answer = ping_of(world, "pod-a", "pod-c", count=2)
    answer.stdout = answer.stdout.replace(
        "Destination Net Unreachable\n",
        "Destination Net Unreachable\nFrom 172.31.4.1 icmp_seq=2 Destination Host Unreachable\n",
    )
    verdict = judge(world, "static.fails-without-routes", tmp_path)
    assert verdict.passed, verdict.findings
    assert (
        verdict.findings[-1]
        == "note the kernel's answer: Destination Net Unreachable, Destination Host Unreachable"
    )


def _df_world(world: World, largest: int, crossed: Callable[[Answer], Answer], refused: Answer) -> None:
    samples = [
        a for (call, t, argv), a in world.commands.items() if (call, t) == ("pod", "pod-a") and "-M" in argv
    ]
    passed = next(a for a in samples if a.returncode == 0)

    def answer(key: tuple[str, str, tuple[str, ...]]) -> Answer | None:
        call, target, argv = key
        if (call, target) != ("pod", "pod-a") or "-M" not in argv:
            return None
        size = int(argv[argv.index("-s") + 1]) + 28
        return crossed(dataclasses.replace(passed)) if size <= largest else refused

    world.respond(answer)


def _half_answered(answer: Answer) -> Answer:
    lose_replies(answer, 1)
    return answer


def test_a_df_size_crosses_when_one_of_two_pings_is_answered(tmp_path: Path) -> None:
    world = load_world("overlay")
    refused = Answer(1, "", "ping: local error: message too long, mtu=1450\n")  # no statistics line at all
    _df_world(world, 1450, _half_answered, refused)
    verdict = judge(world, "path.mtu", tmp_path)
    assert verdict.passed and verdict.evidence[0].output == "1450 bytes"


# --- Check.run: settling ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _scripted(outcomes: list[bool]) -> tuple[Check, list[int]]:
    """A check whose attempts hold or not as `outcomes` says (then keeps the last)."""
    calls: list[int] = []

    def fn(probe: Any, ctx: Context, v: Verdict) -> None:
        calls.append(1)
        v.expect(outcomes[min(len(calls), len(outcomes)) - 1], f"attempt {len(calls)}")

    return Check("t.scripted", ("overlay",), "claim", "rule", fn), calls


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(checks, "time", fake)
    return fake


CTX = Context(Path("/nonexistent"), "overlay")


def test_a_failing_check_is_retried_until_it_holds_within_the_budget(clock: Clock) -> None:
    check, calls = _scripted([False, False, True])
    verdict = check.run(None, CTX, settle_seconds=10)  # type: ignore[arg-type]
    assert verdict.passed and verdict.check == "t.scripted"
    assert (len(calls), clock.sleeps) == (3, [3.0, 3.0])
    assert verdict.findings == ["ok   attempt 3", "note 3 attempts within 10s before this verdict"]


def test_a_second_attempt_is_noted_too(clock: Clock) -> None:
    check, _ = _scripted([False, True])
    assert check.run(None, CTX, settle_seconds=10, pause=1.5).findings == [  # type: ignore[arg-type]
        "ok   attempt 2",
        "note 2 attempts within 10s before this verdict",
    ]
    assert clock.sleeps == [1.5]


def test_the_last_attempt_starts_no_later_than_the_deadline(clock: Clock) -> None:
    """Budget 6 s, pause 3 s: attempts at 0, 3 and 6 s; a fourth would start after the deadline."""
    check, calls = _scripted([False])
    verdict = check.run(None, CTX, settle_seconds=6)  # type: ignore[arg-type]
    assert verdict.status is Status.FAIL
    assert (len(calls), clock.sleeps) == (3, [3.0, 3.0])


def test_without_a_budget_a_check_runs_once_whatever_the_pause(clock: Clock) -> None:
    check, calls = _scripted([False])
    verdict = check.run(None, CTX, pause=0.5)  # type: ignore[arg-type]
    assert verdict.findings == ["FAIL attempt 1"] and len(calls) == 1 and clock.sleeps == []


def test_a_check_that_collects_nothing_fails_saying_so() -> None:
    verdict = Check("t.empty", ("overlay",), "c", "r", lambda p, c, v: None).run(None, CTX)  # type: ignore[arg-type]
    assert (verdict.check, verdict.status, verdict.findings) == (
        "t.empty",
        Status.FAIL,
        ["FAIL the check collected no facts"],
    )
