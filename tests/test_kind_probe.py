"""The kind probe, end to end, against a replica behind a fake `docker` CLI.

The fake translates exactly the docker/kubectl argv shapes the kind probe emits into the
replica's namespaces (sidecar -> node namespace, `kubectl exec` -> pod namespace, the Cilium
agent -> node namespace, `kubectl get` -> the replica's control-plane answers). So this runs the
real probe code — topology from LAB_TOPOLOGY plus the cluster, captures streamed through
`docker exec`, tcpdump stopped by its recorded PID — and the real checks on a real datapath.

Without root, a second fake `docker` answers from the fast tier's recorded worlds for every stack,
bgp included, and the tests read its log: where every node, pod, agent and router command ran.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeprobe import World, load_world
from labsupport import needs_replica
from readme_checks import checks_of

from lab.config import parse_config
from lab.plan import plan
from verify import catalogue, kind
from verify.checks import Context, Status
from verify.kind import topology_spec
from verify.replica import Replica

FAKE_DOCKER = f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
assert args[0] == "exec", args
args = args[1:]
if args[0] == "-i":
    args = args[1:]
prefix, kube = os.environ["REPLICA_PREFIX"], os.environ["FAKE_KUBE_DIR"]
container, rest = args[0], args[1:]

def netns(name, argv):
    os.execvp("ip", ["ip", "netns", "exec", prefix + name, *argv])

if container.startswith("cdl-tools-"):
    netns(container.removeprefix("cdl-tools-"), rest)
assert rest[:3] == ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"], rest
k = rest[3:]
if k[:2] == ["-n", "kube-system"] and k[2] == "get":  # the agent pod on a node
    node = k[k.index("--field-selector") + 1].split("=", 1)[1]
    print("pod/cilium-" + node)
elif k[:2] == ["-n", "kube-system"] and k[2] == "exec":
    dash = k.index("--")
    netns(k[3].removeprefix("pod/cilium-"), k[dash + 1:])
elif k[:3] == ["-n", "cdl-verify", "exec"]:
    netns(k[3], k[k.index("--") + 1:])
elif k[0] == "get":
    sys.stdout.write(open(os.path.join(kube, k[1] + ".json")).read())
else:
    sys.exit("fake docker: unexpected " + repr(args))
"""


@pytest.fixture(scope="module", params=["overlay", "native-auto"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kind.KindProbe]:
    mode: str = request.param
    tmp = tmp_path_factory.mktemp(f"kind-{mode}")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "docker").write_text(FAKE_DOCKER)
    (tmp / "bin" / "docker").chmod(0o755)
    with Replica(mode, prefix=f"cdltk{mode[:2]}-") as rep:
        for resource in ("pods", "ciliumnodes"):
            (tmp / f"{resource}.json").write_text(rep.kube_get(resource).stdout)
        old_path = os.environ["PATH"]
        os.environ.update(
            {"PATH": f"{tmp / 'bin'}:{old_path}", "REPLICA_PREFIX": rep.prefix, "FAKE_KUBE_DIR": str(tmp)}
        )
        try:
            # What the Verify resource hands the probe: the program's own topology spec.
            config = parse_config(
                {"mode": mode, "clusterName": "replica", "underlaySubnet": str(rep.underlay)}, mode
            )
            spec = topology_spec(config, plan(config), {n.name: str(n.ip) for n in rep.topology.nodes}, [])
            yield kind.connect("replica-control-plane", spec)
        finally:
            os.environ["PATH"] = old_path


@needs_replica
def test_topology_comes_from_the_spec_and_the_cluster(lab: kind.KindProbe) -> None:
    topo = lab.topology
    assert [n.name for n in topo.nodes] == ["replica-control-plane", "replica-worker", "replica-worker2"]
    assert all(n.pod_cidr is not None for n in topo.nodes)  # native-auto: read from CiliumNodes
    assert {p.name: p.node for p in topo.pods} == {
        "pod-a": "replica-worker",
        "pod-b": "replica-worker",
        "pod-c": "replica-worker2",
    }


@needs_replica
def test_every_check_of_the_mode_passes_through_the_kind_probe(lab: kind.KindProbe, tmp_path: Path) -> None:
    ctx = Context(artifacts=tmp_path, mode=lab.topology.mode)
    # All but Cilium's own trace points: the replica runs no agent to trace (see the kind-* worlds below).
    checks = [c for c in checks_of(lab.topology.mode) if c != "datapath.trace"]
    results = {c: catalogue.by_id(c).run(lab, ctx) for c in checks}
    failed = {k: v.findings for k, v in results.items() if v.status is not Status.PASS}
    assert failed == {}
    capture = "overlay.capture" if lab.topology.mode == "overlay" else "native.capture"
    (pcap,) = tmp_path.glob(f"{capture}-*.pcap")
    assert pcap.stat().st_size > 24  # streamed through `docker exec`: more than a pcap header


@needs_replica
def test_a_failing_command_is_reported_not_raised(lab: kind.KindProbe) -> None:
    result = lab.node_exec("replica-worker", ["ip", "link", "show", "dev", "no-such-device"])
    assert not result.ok and "no-such-device" in result.stderr
    assert result.describe().startswith(
        "[node replica-worker] $ docker exec cdl-tools-replica-worker ip link"
    )


def test_topology_spec_is_deterministic_json() -> None:
    config = parse_config({"mode": "static"}, "static")
    ips = {
        "static-control-plane": "172.30.4.2",
        "static-worker": "172.30.4.3",
        "static-worker2": "172.30.4.4",
    }
    first = topology_spec(
        config, plan(config), ips, [{"node": "static-worker", "dest": "10.10.0.0/27", "via": "172.30.4.2"}]
    )
    assert first == topology_spec(
        config,
        plan(config),
        dict(reversed(list(ips.items()))),
        json.loads(json.dumps([{"node": "static-worker", "dest": "10.10.0.0/27", "via": "172.30.4.2"}])),
    )
    assert json.loads(first)["nodes"][1] == {
        "name": "static-worker",
        "ip": "172.30.4.3",
        "podCidr": "10.10.0.32/27",
    }


# --- every stack, bgp included, without root: where each command runs -----------------------------
# A fake `docker` answers from a recorded world (tests/fakeprobe.py) and logs every argv, so the
# real KindProbe runs every check of each stack and the log shows where each command went: a
# node's commands in its netshoot sidecar, bpftool in the node's Cilium agent, pod commands
# through kubectl, and on an FRR router vtysh in the FRR container itself, the rest in its sidecar.

WORLD_DOCKER = f"""#!{sys.executable} -IS
import base64, json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
world = json.load(open(os.environ["FAKE_WORLD"]))
assert args[0] == "exec", args
args = args[1:]
if args[0] == "-i":
    args = args[1:]
container, rest = args[0], args[1:]

def answer(call, target, argv):
    if len(argv) >= 3 and argv[0].startswith("python") and argv[1] == "-c":
        argv = [argv[0], "-c", "<script>", *argv[3:]]
    found = world["commands"].get(json.dumps([call, target, argv]))
    if found is None:
        sys.exit("fake docker: no record of " + repr((call, target, argv)))
    rc, out, err = found
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(rc)

if container == world["control_plane"]:
    assert rest[:3] == ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"], rest
    k = rest[3:]
    if k[:3] == ["-n", "kube-system", "get"]:
        print("pod/cilium-" + k[k.index("--field-selector") + 1].split("=", 1)[1])
        sys.exit(0)
    elif k[:3] == ["-n", "kube-system", "exec"]:
        assert k[4:7] == ["-c", "cilium-agent", "--"], k
        node, command = k[3].removeprefix("pod/cilium-"), k[7:]
        if command[:2] == ["sh", "-c"] and "kill -INT" in command[2]:  # stopping the monitor
            sys.exit(0)
        if command[:2] == ["sh", "-c"] and "cilium-dbg" in command:  # the monitor, under its PID file
            answer("trace", node, command[command.index("cilium-dbg"):])
        answer("node", node, command)
    elif k[:3] == ["-n", "cdl-verify", "exec"]:
        answer("pod", k[3], k[k.index("--") + 1:])
    elif k[0] == "get":
        answer("kube", "cluster", ["kubectl", "get", k[1], "-o", "json"])
    sys.exit("fake docker: unexpected kubectl " + repr(k))
if rest[:2] == ["sh", "-c"] and "tcpdump" in rest:  # a capture: tcpdump -i IF ... -w - FILTER
    tcpdump = rest[rest.index("tcpdump"):]
    node = container.removeprefix("cdl-tools-")
    key = json.dumps([node, tcpdump[tcpdump.index("-i") + 1], tcpdump[-1]])
    sys.stderr.write("listening on " + tcpdump[2] + "\\n")
    sys.stderr.flush()
    sys.stdout.buffer.write(base64.b64decode(world["captures"][key]))
    sys.exit(0)
if rest[:2] == ["sh", "-c"] and "kill -INT" in rest[2]:
    sys.exit(0)
if container.startswith("cdl-tools-"):
    answer("node", container.removeprefix("cdl-tools-"), rest)
answer("node", container, rest)  # an FRR router container: only its own CLI belongs here
"""

STACK_WORLDS = {
    "overlay": "overlay",
    "geneve": "geneve",
    "native-auto": "native-auto",
    "static": "static",
    "bgp": "bgp-2-routers",
}


def _docker_from_world(world: World, control_plane: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    body = {
        "control_plane": control_plane,
        "commands": {
            json.dumps([c, t, list(a)]): [x.returncode, x.stdout, x.stderr]
            for (c, t, a), x in world.commands.items()
        },
        "captures": {json.dumps(list(k)): base64.b64encode(v).decode() for k, v in world.captures.items()},
    }
    (tmp / "world.json").write_text(json.dumps(body))
    (tmp / "bin").mkdir()
    (tmp / "bin" / "docker").write_text(WORLD_DOCKER)
    (tmp / "bin" / "docker").chmod(0o755)
    log = tmp / "docker.log"
    monkeypatch.setenv("PATH", f"{tmp / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_WORLD", str(tmp / "world.json"))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return log


def _where(argv: list[str], control_plane: str) -> tuple[str, str, list[str]]:
    """(where, container or pod or node, the command) of one logged `docker exec`."""
    args = argv[1:]
    if args[0] == "-i":
        args = args[1:]
    container, rest = args[0], args[1:]
    if container != control_plane:
        return ("sidecar" if container.startswith("cdl-tools-") else "container", container, rest)
    k = rest[3:]
    if k[:3] == ["-n", "kube-system", "exec"]:
        return ("agent", k[3].removeprefix("pod/cilium-"), k[7:])
    if k[:3] == ["-n", "cdl-verify", "exec"]:
        return ("pod", k[3], k[k.index("--") + 1 :])
    return ("kubectl", "cluster", k)


@pytest.mark.parametrize("stack", list(STACK_WORLDS))
def test_every_command_of_the_stack_runs_where_it_belongs(
    stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = load_world(STACK_WORLDS[stack])
    topo = world.topology
    control_plane = topo.nodes[0].name
    log = _docker_from_world(world, control_plane, tmp_path, monkeypatch)
    monkeypatch.setattr("verify.kind.time.sleep", lambda _: None)  # the fake's capture is complete at once
    probe = kind.KindProbe(control_plane, topo)
    ctx = Context(artifacts=tmp_path / "artifacts", mode=topo.mode)
    # The replica's worlds hold no trace points (the kind-* worlds do: the next test).
    checks = [c for c in checks_of(stack) if c not in ("static.fails-without-routes", "datapath.trace")]
    verdicts = {c: catalogue.by_id(c).run(probe, ctx) for c in checks}
    assert {c: v.findings for c, v in verdicts.items() if not v.passed} == {}

    nodes = {n.name for n in topo.nodes}
    routers = {r for r in topo.extra.get("routers", "").split(",") if r}
    assert bool(routers) is (stack == "bgp")
    seen: dict[str, set[str]] = {"sidecar": set(), "container": set(), "agent": set(), "pod": set()}
    for line in log.read_text().splitlines():
        where, target, command = _where(json.loads(line), control_plane)
        if where == "kubectl":
            assert command[0] == "get" or command[:4] == ["-n", "kube-system", "get", "pods"], command
            continue
        seen[where].add(target)
        tool = command[0]
        if where == "container":  # a router's own container: FRR's CLI and nothing else
            assert target in routers and tool == "vtysh", (target, command)
        elif where == "sidecar":
            assert target.removeprefix("cdl-tools-") in nodes | routers, target
            assert tool not in ("vtysh", "bpftool"), (target, command)
        elif where == "agent":
            assert target in nodes and tool == "bpftool", (target, command)
        else:
            assert target in {p.name for p in topo.pods}, target
    assert seen["agent"] == nodes  # bpftool ran on every node, each in its own agent
    assert seen["pod"] >= {"pod-a"}
    if stack == "bgp":
        assert seen["container"] == routers  # every router's vtysh ran in that router's container
        assert {f"cdl-tools-{r}" for r in routers} <= seen["sidecar"]  # captures, ip, sysctl: its sidecar
    else:
        assert seen["container"] == set()


@pytest.mark.parametrize("world_name", ["kind-overlay", "kind-native-auto"])
def test_the_monitor_runs_in_the_agent_of_pod_as_node_and_is_stopped_there(
    world_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """datapath.trace through the real KindProbe, on a world recorded from a real lab: the monitor
    in pod-a's node's agent, under a PID file and a `timeout` bound, stopped by that PID file."""
    world = load_world(world_name)
    topo = world.topology
    control_plane = topo.nodes[0].name
    log = _docker_from_world(world, control_plane, tmp_path, monkeypatch)
    monkeypatch.setattr("verify.kind.time.sleep", lambda _: None)
    probe = kind.KindProbe(control_plane, topo)
    verdict = catalogue.by_id("datapath.trace").run(probe, Context(tmp_path / "artifacts", topo.mode))
    assert verdict.passed, verdict.findings
    logged = [_where(json.loads(line), control_plane) for line in log.read_text().splitlines()]
    agent = [(target, command) for where, target, command in logged if where == "agent"]
    node = topo.pod("pod-a").node
    (monitor,) = [c for t, c in agent if "cilium-dbg" in c]
    (stop,) = [c for t, c in agent if "kill -INT" in " ".join(c)]
    assert [t for t, c in agent] == [node, node]
    assert monitor[:2] == ["sh", "-c"] and monitor[4:] == [
        "timeout",
        "-s",
        "INT",
        "45",
        "cilium-dbg",
        "monitor",
        "--type",
        "trace",
    ]
    assert stop[3] == monitor[3] and monitor[3].startswith("/tmp/cdl-monitor-")  # the same PID file
    kept = tmp_path / "artifacts" / f"datapath.trace-{node}.txt"
    assert "icmp EchoRequest" in kept.read_text()


def test_router_vtysh_runs_in_the_frr_container_named_by_the_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the bgp stack's own LAB_TOPOLOGY, router names are the FRR containers' names."""
    config = parse_config({"mode": "bgp", "bgp": {"routers": 2}}, "bgp")
    lab_plan = plan(config)
    ips = {n.name: f"172.30.5.{i + 2}" for i, n in enumerate(lab_plan.nodes)}
    spec = json.loads(topology_spec(config, lab_plan, ips, []))
    assert spec["extra"]["routers"] == ",".join(lab_plan.router_names) == "bgp-frr0,bgp-frr1"
    topo = kind.topology_from_env(json.dumps(spec), '{"items": []}', None)
    log = tmp_path / "argv.log"
    (tmp_path / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\necho "{{}}"\n')
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    probe = kind.KindProbe(lab_plan.control_plane.name, topo)
    assert probe.node_exec("bgp-frr1", ["vtysh", "-c", "show bgp summary json"]).ok
    assert probe.node_exec("bgp-frr1", ["ip", "-j", "route", "show", "10.99.0.1/32"]).ok
    assert probe.node_exec("bgp-worker", ["ip", "-j", "route", "show"]).ok
    assert log.read_text().splitlines() == [
        "exec bgp-frr1 vtysh -c show bgp summary json",
        "exec cdl-tools-bgp-frr1 ip -j route show 10.99.0.1/32",
        "exec cdl-tools-bgp-worker ip -j route show",
    ]
