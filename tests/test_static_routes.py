"""Static route sets: O(N) resources, readable diffs, the write-up's order, and real `ip route` effects."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mockstack import Evaluation, changes, evaluate, stack_config, with_project_keys

from lab.config import parse_config
from lab.plan import plan
from lab.routes import bgp_routes, static_routes
from lab.scripts import INTERPRETER, script
from verify.replica import Replica

COMMAND = "command:local:Command"
ROUTE_SET = "lab:index:StaticRouteSet"
EXTRA = {"node": "lab-static-worker", "dest": "192.168.50.0/24", "via": "172.30.4.4"}


def route_commands(ev: Evaluation) -> dict[str, Any]:
    return {r.name: r for r in ev.by_type(COMMAND) if r.name.startswith("routes-")}


def test_every_node_routes_each_remote_pod_cidr_via_its_node() -> None:
    ev = evaluate("static")
    sets = route_commands(ev)
    assert sorted(sets) == [f"routes-lab-static-{n}-routes" for n in ("control-plane", "worker", "worker2")]
    worker = sets["routes-lab-static-worker-routes"].inputs["environment"]
    assert worker["LAB_NODE"] == "lab-static-worker"
    # Node IPs from the (fake) Docker network: control plane .2, worker .3, worker2 .4.
    assert worker["LAB_ROUTES"].splitlines() == [
        "10.10.0.0/27 via 172.30.4.2",
        "10.10.0.64/27 via 172.30.4.4",
    ]


def test_route_sets_scale_linearly() -> None:
    ev = evaluate("static", with_project_keys(stack_config("static"), workers=64))
    assert len(ev.by_type(ROUTE_SET)) == 65
    lines = (
        route_commands(ev)["routes-lab-static-worker-routes"].inputs["environment"]["LAB_ROUTES"].splitlines()
    )
    assert len(lines) == 64
    dests = [ipaddress.ip_network(line.split()[0]) for line in lines]
    assert dests == sorted(dests)  # sorted by address, not as text


def test_the_write_ups_order_failure_first_then_routes_then_proof() -> None:
    ev = evaluate("static")
    fails = ev.one(COMMAND, "verify-static.fails-without-routes")
    ready = ev.one(COMMAND, "cilium-ready")
    route_urns = {r.urn for r in route_commands(ev).values()}
    assert ready.urn in fails.dependencies
    assert not route_urns & set(fails.dependencies)
    for r in route_commands(ev).values():
        assert fails.urn in r.dependencies and ready.urn in r.dependencies
        assert r.deleted_with == ev.one(COMMAND, "-cluster").urn
    for check in ("static.routes", "static.ping", "native.capture"):
        assert route_urns <= set(ev.one(COMMAND, f"verify-{check}").dependencies), check


def test_declared_routes_reach_the_checks() -> None:
    ev = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[EXTRA]))
    topo = json.loads(ev.one(COMMAND, "verify-static.routes").inputs["environment"]["LAB_TOPOLOGY"])
    assert EXTRA in topo["routes"]
    assert {"node": "lab-static-worker2", "dest": "10.10.0.32/27", "via": "172.30.4.3"} in topo["routes"]
    assert len(topo["routes"]) == 7


def test_route_sets_only_exist_where_the_lab_installs_routes() -> None:
    for stack in ("overlay", "native-auto"):
        assert not evaluate(stack).by_type(ROUTE_SET)


def infra_changes(before: Evaluation, after: Evaluation) -> dict[tuple[str, str], str]:
    """Changes other than checks re-running (they re-run whenever what they check changes)."""
    diff = changes(before, after)
    reruns = {k: v for k, v in diff.items() if k[1].startswith("verify-")}
    assert set(reruns.values()) <= {"replace"}
    # ... except the proof that nothing works without routes: it is about the lab before them.
    assert (COMMAND, "verify-static.fails-without-routes") not in reruns
    return {k: v for k, v in diff.items() if k not in reruns}


def test_the_failure_proof_runs_once_per_cluster(baseline: Evaluation) -> None:
    for change in (
        {"verify": {"enabled": True, "rerun": "again"}},
        {"ciliumVersion": "1.20.1"},
        {"staticRoutes": [EXTRA]},
    ):
        after = evaluate("static", with_project_keys(stack_config("static"), **change))
        assert (COMMAND, "verify-static.fails-without-routes") not in changes(baseline, after), change
    # A new cluster (new topology) runs it again. (Mocks keep resource ids stable, so the id
    # trigger cannot show here; the changed node list alone re-runs it: no `update` command,
    # so pulumi-command runs `create` again.)
    replaced = evaluate("static", with_project_keys(stack_config("static"), workers=3))
    assert changes(baseline, replaced)[(COMMAND, "verify-static.fails-without-routes")] in (
        "replace",
        "update",
    )


@pytest.fixture(scope="module")
def baseline() -> Evaluation:
    return evaluate("static")


def test_adding_one_route_changes_exactly_one_route_set(baseline: Evaluation) -> None:
    after = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[EXTRA]))
    assert infra_changes(baseline, after) == {(COMMAND, "routes-lab-static-worker-routes"): "update"}
    lines = (
        route_commands(after)["routes-lab-static-worker-routes"]
        .inputs["environment"]["LAB_ROUTES"]
        .splitlines()
    )
    assert "192.168.50.0/24 via 172.30.4.4" in lines


def test_adding_one_route_reruns_only_the_checks_that_rest_on_routes(baseline: Evaluation) -> None:
    """`make up` after one more route: the route set, then static.routes and static.ping again;
    the checks that never read the routes (path.mtu, the captures, the hooks...) stay as they are."""
    after = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[EXTRA]))
    reruns = {name for (_, name) in changes(baseline, after) if name.startswith("verify-")}
    assert reruns == {"verify-static.routes", "verify-static.ping"}


def test_only_route_dependent_checks_see_the_routes() -> None:
    ev = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[EXTRA]))
    for r in ev.by_type(COMMAND):
        if not r.name.startswith("verify-"):
            continue
        topo = json.loads(r.inputs["environment"]["LAB_TOPOLOGY"])
        if r.name in ("verify-static.routes", "verify-static.ping"):
            assert EXTRA in topo["routes"], r.name
        else:
            assert topo["routes"] == [], r.name


def test_moving_a_next_hop_changes_only_route_sets() -> None:
    before = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[EXTRA]))
    moved = {**EXTRA, "via": "172.30.4.2"}
    after = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[moved]))
    diff = infra_changes(before, after)
    assert diff == {(COMMAND, "routes-lab-static-worker-routes"): "update"}


def test_a_new_cilium_version_updates_only_the_release(baseline: Evaluation) -> None:
    after = evaluate("static", with_project_keys(stack_config("static"), ciliumVersion="1.20.1"))
    assert infra_changes(baseline, after) == {
        ("kubernetes:helm.sh/v3:Release", "cilium-chart"): "update",
        (COMMAND, "cilium-ready"): "replace",
    }


@pytest.mark.parametrize("change", [{"mode": "native-auto", "staticRoutes": None}, {"workers": 3}])
def test_mode_or_workers_replace_the_cluster(baseline: Evaluation, change: dict[str, Any]) -> None:
    after = evaluate("static", with_project_keys(stack_config("static"), **change))
    assert changes(baseline, after)[(COMMAND, "lab-static-cluster")] == "replace"


def test_the_same_config_twice_changes_nothing(baseline: Evaluation) -> None:
    assert changes(baseline, evaluate("static")) == {}


def test_bgp_routes_are_known_before_apply() -> None:
    config = parse_config({"mode": "bgp", "bgp": {"routers": 2}}, "bgp")
    routes = bgp_routes(config, plan(config))
    assert routes.by_node["bgp-worker"] == ("10.10.0.0/16 nexthop via 172.30.5.254 nexthop via 172.30.5.253",)
    assert routes.declared() == []  # multipath lines are not single-hop declarations
    one = parse_config({"mode": "bgp"}, "bgp")
    assert bgp_routes(one, plan(one)).by_node["bgp-worker"] == ("10.10.0.0/16 via 172.30.5.254",)


def test_static_routes_function_includes_extras_sorted() -> None:
    config = parse_config({"mode": "static", "staticRoutes": [EXTRA | {"node": "static-worker"}]}, "static")
    ips = {
        "static-control-plane": "172.30.4.2",
        "static-worker": "172.30.4.3",
        "static-worker2": "172.30.4.4",
    }
    table = static_routes(config, plan(config), ips)
    assert table.by_node["static-worker"] == (
        "10.10.0.0/27 via 172.30.4.2",
        "10.10.0.64/27 via 172.30.4.4",
        "192.168.50.0/24 via 172.30.4.4",
    )
    assert table.text("static-worker").splitlines() == list(table.by_node["static-worker"])
    assert {"node": "static-worker", "dest": "192.168.50.0/24", "via": "172.30.4.4"} in table.declared()


# --- the route set's own commands, in a replica node ------------------------------------------

needs_replica = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2 to build network namespaces"
)

FAKE_DOCKER = """#!/bin/bash
# docker exec -- <node> <argv...>  ->  the same argv inside the replica's node namespace
[ "$1" = exec ] || exit 99
shift; [ "$1" = -- ] && shift
node=$1; shift
exec ip netns exec "${REPLICA_PREFIX}${node}" "$@"
"""


@pytest.fixture
def static_replica(tmp_path: Path) -> Iterator[tuple[Replica, dict[str, str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    with Replica("static", prefix="cdltrs-", bpf_hooks=False) as rep:
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "REPLICA_PREFIX": rep.prefix}
        yield rep, env


def _run(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INTERPRETER, script(name)], env=env, capture_output=True, text=True, check=False, timeout=30
    )


def _routes_of(rep: Replica, node: str) -> set[str]:
    shown = json.loads(rep.node_exec(node, ["ip", "-j", "route", "show"]).stdout)
    return {f"{r['dst']} via {r['gateway']}" for r in shown if "gateway" in r}


@needs_replica
def test_create_update_delete_commands_change_exactly_the_declared_routes(
    static_replica: tuple[Replica, dict[str, str]],
) -> None:
    rep, base_env = static_replica
    node = rep.topology.nodes[1].name
    before = _routes_of(rep, node)
    declared_lines = [
        "10.10.0.0/27 via 172.31.4.2",
        "10.10.0.64/27 via 172.31.4.4",
        "192.168.50.0/24 via 172.31.4.4",
    ]
    env = {**base_env, "LAB_NODE": node, "LAB_ROUTES": "\n".join(declared_lines)}

    created = _run("routes/apply", env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == declared_lines  # what Pulumi keeps as this resource's output
    assert _routes_of(rep, node) == before | set(declared_lines)

    # Update: one route moves, one disappears; the previous output says what was installed.
    updated_lines = ["10.10.0.0/27 via 172.31.4.2", "10.10.0.64/27 via 172.31.4.2"]
    update_env = {**env, "LAB_ROUTES": "\n".join(updated_lines), "PULUMI_COMMAND_STDOUT": created.stdout}
    updated = _run("routes/apply", update_env)
    assert updated.returncode == 0, updated.stderr
    assert _routes_of(rep, node) == before | set(updated_lines)

    # Delete: exactly what was installed goes; running it again (routes already gone) is fine.
    delete_env = {**base_env, "LAB_NODE": node, "LAB_ROUTES": "\n".join(updated_lines)}
    for _ in range(2):
        deleted = _run("routes/remove", delete_env)
        assert deleted.returncode == 0, deleted.stderr
        assert _routes_of(rep, node) == before
    assert "already gone" in deleted.stderr


@needs_replica
def test_the_route_set_makes_cross_node_pods_reachable(
    static_replica: tuple[Replica, dict[str, str]],
) -> None:
    """The lab's own route computation and commands, on every replica node: pod-a reaches pod-c."""
    rep, base_env = static_replica
    config = parse_config(
        {"mode": "static", "clusterName": "replica", "underlaySubnet": "172.31.4.0/24"}, "static"
    )
    ips = {n.name: str(n.ip) for n in rep.topology.nodes}
    table = static_routes(config, plan(config), ips)
    for node in table.by_node:
        applied = _run("routes/apply", {**base_env, "LAB_NODE": node, "LAB_ROUTES": table.text(node)})
        assert applied.returncode == 0, applied.stderr
    c = rep.topology.pod("pod-c")
    ping = rep.pod_exec("pod-a", ["ping", "-c", "2", "-i", "0.2", "-W", "2", str(c.ip)])
    assert ping.ok, ping.stdout + ping.stderr


@needs_replica
def test_hostile_route_lines_are_refused(static_replica: tuple[Replica, dict[str, str]]) -> None:
    rep, base_env = static_replica
    node = rep.topology.nodes[1].name
    env = {**base_env, "LAB_NODE": node, "LAB_ROUTES": "10.1.0.0/24 via 172.31.4.2; touch /tmp/cdl-pwned"}
    result = _run("routes/apply", env)
    assert result.returncode == 2 and "refusing route line" in result.stderr
    assert not Path("/tmp/cdl-pwned").exists()
