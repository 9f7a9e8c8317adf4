"""Verified labs for real: overlay, native-auto and static come up with their checks on, every
check PASSes on Cilium's real eBPF datapath, and a claim really broken in the running lab FAILs
its check, with the report naming the broken fact.

Each lab is a user's stack file (its own name and underlay subnet, checks on) driven with the
README's make targets in a copy of the project (tests/real_lab.py). The checks run twice: once
inside `make up` (the Verify resources), and again by hand with `python -m verify run` after the
test has broken something in the lab: deleted a route, detached one of Cilium's programs. Each
lab's last test destroys it and finds nothing left, so only one lab runs at a time.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from real_lab import (
    KIND_CLUSTER_LABEL,
    Lab,
    agent_exec,
    destroy_leaves_nothing,
    every_check_passed,
    kubectl,
    node_sh,
    open_lab,
    pulumi_part,
    records,
    run,
    statuses,
    toolchain_path,
    up_verified,
    verify_by_hand,
)

from lab.config import key
from lab.stack_file import stack_config as lab_stack_config

# Underlay subnets of their own (tests/test_real_stacks.py has 172.30.213-214.0/24).
LABS = {
    "overlay": ("cdltest-v-overlay", "172.30.215.0/24"),
    "native-auto": ("cdltest-v-native", "172.30.216.0/24"),
    "static": ("cdltest-v-static", "172.30.217.0/24"),
}
OVERLAY = LABS["overlay"][0]
EXTRA_ROUTE_DEST = "192.168.50.0/24"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from open_lab(tmp_path_factory)


def _up(lab: Lab, mode: str) -> dict[str, Any]:
    stack, subnet = LABS[mode]
    return up_verified(lab, stack, mode, subnet)


def _tcx_link(lab: Lab, cluster: str, node: str) -> tuple[str, int]:
    """An lxc* device on `node` with Cilium's cil_from_container on its tcx ingress, and that link's id."""
    shown = agent_exec(lab, cluster, node, "bpftool", "-j", "net", "show")
    assert shown.returncode == 0, shown.stderr
    for section in json.loads(shown.stdout):
        for entry in section.get("tc", []):
            if (
                str(entry.get("devname", "")).startswith("lxc")
                and entry.get("kind") == "tcx/ingress"
                and entry.get("name") == "cil_from_container"
                and entry.get("link_id")
            ):
                return str(entry["devname"]), int(entry["link_id"])
    raise AssertionError(f"no tcx link of cil_from_container on an lxc* device of {node}:\n{shown.stdout}")


def _detach_one_lxc_program_and_see_bpf_hooks_fail(lab: Lab, mode: str) -> None:
    stack = LABS[mode][0]
    node = f"{stack}-worker"
    device, link = _tcx_link(lab, stack, node)
    detached = agent_exec(lab, stack, node, "bpftool", "link", "detach", "id", str(link))
    assert detached.returncode == 0, detached.stderr
    code, records, said = verify_by_hand(lab, stack, "datapath.bpf-hooks")
    assert code == 1 and statuses(records) == {"datapath.bpf-hooks": "FAIL"}, said
    assert any(device in finding for finding in records["datapath.bpf-hooks"]["findings"]), records


# --- overlay ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overlay(lab: Lab) -> dict[str, Any]:
    return _up(lab, "overlay")


def test_overlay_up_passes_every_check(lab: Lab, overlay: dict[str, Any]) -> None:
    every_check_passed(lab, OVERLAY, "overlay")


def test_up_brings_cilium_ready_on_the_lab_network(lab: Lab, overlay: dict[str, Any]) -> None:
    agents = kubectl(lab, OVERLAY, "-n", "kube-system", "get", "daemonset", "cilium")
    assert agents["status"]["numberReady"] == agents["status"]["desiredNumberScheduled"] == 3
    operator = kubectl(lab, OVERLAY, "-n", "kube-system", "get", "deployment", "cilium-operator")
    assert operator["status"].get("readyReplicas") == 1
    nodes = kubectl(lab, OVERLAY, "get", "nodes")["items"]
    ready = {
        n["metadata"]["name"]: any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )
        for n in nodes
    }
    assert ready == dict.fromkeys(overlay["nodes"], True)


def test_every_node_has_exactly_its_planned_pod_cidr(lab: Lab, overlay: dict[str, Any]) -> None:
    nodes = kubectl(lab, OVERLAY, "get", "nodes")["items"]
    assert {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes} == overlay["podCidrs"]
    planned = lab_stack_config(OVERLAY, lab.root / "stacks")
    for cidr in overlay["podCidrs"].values():
        assert ipaddress.IPv4Network(cidr).subnet_of(planned.pod_cidr)


def test_node_ips_in_the_outputs_are_what_docker_says(lab: Lab, overlay: dict[str, Any]) -> None:
    done = lab.docker("network", "inspect", "--format", "{{json .Containers}}", overlay["network"])
    containers = json.loads(done.stdout)
    seen = {
        c["Name"]: c["IPv4Address"].split("/")[0]
        for c in containers.values()
        if c["Name"] in overlay["nodes"]
    }
    assert seen == overlay["nodeIps"]
    assert all(
        ipaddress.ip_address(ip) in ipaddress.ip_network(overlay["underlaySubnet"]) for ip in seen.values()
    )


def test_the_kubeconfig_is_encrypted_in_the_state(lab: Lab, overlay: dict[str, Any]) -> None:
    text = lab.state_file(OVERLAY).read_text()
    state = json.loads(text)
    stack = next(r for r in state["checkpoint"]["latest"]["resources"] if r["type"] == "pulumi:pulumi:Stack")
    kubeconfig = stack["outputs"]["kubeconfig"]
    assert set(kubeconfig) == {"4dabf18193072939515e22adb298388d", "ciphertext"}, kubeconfig
    plain = lab.pulumi("stack", "output", "kubeconfig", "--show-secrets", "--stack", OVERLAY)
    secret_lines = [line.split(":", 1)[1].strip() for line in plain.splitlines() if "-data:" in line]
    assert secret_lines and not [s for s in secret_lines if s in text]


def test_a_second_preview_shows_no_change_at_all(lab: Lab, overlay: dict[str, Any]) -> None:
    pulumi = pulumi_part(lab.ok("preview", f"STACK={LABS['overlay'][0]}"))
    assert re.search(r"\b\d+ unchanged\b", pulumi), pulumi
    assert not re.search(r"to (create|update|delete|replace)\b", pulumi), pulumi


def _move_pod(lab: Lab, cluster: str, pod: str, node: str) -> None:
    """Recreate a probe pod on another node: the same spec, another nodeName."""
    kubectl = [
        "exec",
        "-i",
        f"{cluster}-control-plane",
        "kubectl",
        "--kubeconfig",
        "/etc/kubernetes/admin.conf",
    ]
    got = lab.docker(*kubectl, "-n", "cdl-verify", "get", "pod", pod, "-o", "json")
    assert got.returncode == 0, got.stderr
    live = json.loads(got.stdout)
    token = "kube-api-access-"  # the service account volume the API server adds again
    spec = {k: v for k, v in live["spec"].items() if k not in ("volumes", "nodeName")}
    spec["containers"] = [
        {**c, "volumeMounts": [m for m in c.get("volumeMounts", []) if not m["name"].startswith(token)]}
        for c in spec["containers"]
    ]
    spec["volumes"] = [v for v in live["spec"].get("volumes", []) if not v["name"].startswith(token)]
    spec["nodeName"] = node
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            k: live["metadata"][k] for k in ("name", "namespace", "labels") if k in live["metadata"]
        },
        "spec": spec,
    }
    deleted = lab.docker(*kubectl, "-n", "cdl-verify", "delete", "pod", pod, "--wait=true")
    assert deleted.returncode == 0, deleted.stderr
    created = run(
        ["docker", *kubectl, "create", "-f", "-"], lab.env, lab.root, 120, stdin=json.dumps(manifest)
    )
    assert created.returncode == 0, created.stderr
    ready = lab.docker(
        *kubectl, "-n", "cdl-verify", "wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=180s"
    )
    assert ready.returncode == 0, ready.stderr


def _failed(record: dict[str, Any]) -> list[str]:
    return [f for f in record["findings"] if f.startswith("FAIL")]


def test_overlay_with_both_pods_on_one_node_the_capture_and_trace_fail(
    lab: Lab, overlay: dict[str, Any]
) -> None:
    """pod-c moved next to pod-a: they still reach each other, but nothing crosses the underlay in
    VXLAN: overlay.capture, which claims it does, FAILs; and Cilium's own trace points show the
    echo requests handed to pod-c's endpoint, not to-overlay, so datapath.trace FAILs on that."""
    stack = OVERLAY
    _move_pod(lab, stack, "pod-c", f"{stack}-worker")
    code, found, said = verify_by_hand(lab, stack, "overlay.capture", "datapath.trace")
    assert code == 1 and statuses(found) == {"overlay.capture": "FAIL", "datapath.trace": "FAIL"}, said
    failed = _failed(found["datapath.trace"])
    assert any(re.match(r"FAIL an echo request to pod-c traced at to-overlay on ", f) for f in failed), failed
    assert any(
        "traced pod-a's echo requests to pod-c (at: to-endpoint)" in f
        for f in found["datapath.trace"]["findings"]
    )


def test_destroy_after_kind_delete_by_hand_leaves_nothing(lab: Lab, overlay: dict[str, Any]) -> None:
    deleted = run(
        ["kind", "delete", "cluster", "--name", OVERLAY],
        {**lab.env, **toolchain_path(lab)},
        lab.root,
        300,
    )
    assert deleted.returncode == 0, deleted.stderr
    lab.ok("destroy", f"STACK={LABS['overlay'][0]}")
    swept = lab.make("sweep", f"STACK={LABS['overlay'][0]}")
    assert swept.returncode == 0 and "nothing of stack" in swept.stdout, swept.stdout
    assert (
        lab.docker("ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}={LABS['overlay'][0]}").stdout.strip()
        == ""
    )
    lab.created.remove(OVERLAY)


# --- native-auto ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def native(lab: Lab) -> dict[str, Any]:
    return _up(lab, "native-auto")


def test_native_auto_up_passes_every_check(lab: Lab, native: dict[str, Any]) -> None:
    every_check_passed(lab, LABS["native-auto"][0], "native-auto")


def test_native_auto_a_detached_lxc_program_fails_bpf_hooks(lab: Lab, native: dict[str, Any]) -> None:
    _detach_one_lxc_program_and_see_bpf_hooks_fail(lab, "native-auto")


def test_native_auto_with_both_pods_on_one_node_the_trace_fails(lab: Lab, native: dict[str, Any]) -> None:
    """pod-c moved next to pod-a: the agent hands the echo requests to pod-c's endpoint, neither
    to the stack nor to the device, and datapath.trace, which claims the native hand-off, FAILs."""
    stack = LABS["native-auto"][0]
    pod_a = kubectl(lab, stack, "-n", "cdl-verify", "get", "pod", "pod-a")
    pod_a_node = pod_a["spec"]["nodeName"]
    _move_pod(lab, stack, "pod-c", pod_a_node)
    code, found, said = verify_by_hand(lab, stack, "datapath.trace")
    assert code == 1 and statuses(found) == {"datapath.trace": "FAIL"}, said
    failed = _failed(found["datapath.trace"])
    assert any("traced at to-stack or to-network" in f for f in failed), failed
    assert not any("traced at to-overlay" in f for f in failed), failed


def test_native_auto_destroy_leaves_nothing(lab: Lab, native: dict[str, Any]) -> None:
    destroy_leaves_nothing(lab, LABS["native-auto"][0], native)


# --- static -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def static(lab: Lab) -> dict[str, Any]:
    return _up(lab, "static")


def test_static_up_passes_every_check(lab: Lab, static: dict[str, Any]) -> None:
    """static.fails-without-routes among them: inside `make up` it runs before the route sets."""
    every_check_passed(lab, LABS["static"][0], "static")


def test_static_with_its_routes_in_place_the_no_routes_claim_fails(lab: Lab, static: dict[str, Any]) -> None:
    """The other side of static.fails-without-routes: once the routes exist, pods do reach each
    other, and the claim that they cannot is false."""
    code, records, said = verify_by_hand(lab, LABS["static"][0], "static.fails-without-routes")
    assert code == 1 and statuses(records) == {"static.fails-without-routes": "FAIL"}, said


def test_static_a_route_deleted_by_hand_fails_routes_and_ping(lab: Lab, static: dict[str, Any]) -> None:
    stack = LABS["static"][0]
    worker, other = f"{stack}-worker", f"{stack}-worker2"  # pod-a's node, pod-c's node
    dest, via = static["podCidrs"][other], static["nodeIps"][other]
    deleted = node_sh(lab, worker, "ip", "route", "del", dest, "via", via)
    assert deleted.returncode == 0, deleted.stderr
    try:
        code, records, said = verify_by_hand(lab, stack, "static.routes", "static.ping")
        assert code == 1 and statuses(records) == {"static.routes": "FAIL", "static.ping": "FAIL"}, said
        assert any(dest in f and worker in f for f in records["static.routes"]["findings"]), records
    finally:
        restored = node_sh(lab, worker, "ip", "route", "replace", dest, "via", via)
        assert restored.returncode == 0, restored.stderr
    code, records, said = verify_by_hand(lab, stack, "static.routes", "static.ping", settle=True)
    assert code == 0 and set(statuses(records).values()) == {"PASS"}, said


def test_static_one_more_route_previews_then_applies_to_its_node_only(
    lab: Lab, static: dict[str, Any]
) -> None:
    """A routing change for real: the preview names one route set to update and the two checks
    whose claim rests on routes; `make up` installs the route on that node alone and runs those
    two checks again, nothing else."""
    stack = LABS["static"][0]
    worker, via = f"{stack}-worker", static["nodeIps"][f"{stack}-worker2"]
    path = lab.root / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"][key("staticRoutes")] = [{"node": worker, "dest": EXTRA_ROUTE_DEST, "via": via}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    preview = pulumi_part(lab.ok("preview", f"STACK={stack}"))
    (lab.root.parent / "route-diff-verified.txt").write_text(preview)
    assert _steps(preview) == {
        ("update", f"routes-{worker}-routes"),
        ("replace", "verify-static.routes"),
        ("replace", "verify-static.ping"),
    }, preview
    assert re.search(rf"\+\s*{re.escape(EXTRA_ROUTE_DEST)} via {re.escape(via)}", preview), preview
    up = lab.ok("up", f"STACK={stack}")
    applied = up[up.index("Updating (") :]
    assert _steps(applied) == _steps(preview), applied
    [last] = json.loads(lab.pulumi("stack", "history", "--json", "--stack", stack))[:1]
    changed = {k: v for k, v in last["resourceChanges"].items() if k != "same"}
    assert changed == {"update": 1, "replace": 2}, last
    for node in static["nodes"]:
        routes = node_sh(lab, node, "ip", "-j", "route", "show", EXTRA_ROUTE_DEST)
        assert routes.returncode == 0, routes.stderr
        found = [(r["dst"], r.get("gateway")) for r in json.loads(routes.stdout or "[]")]
        assert found == ([(EXTRA_ROUTE_DEST, via)] if node == worker else []), (node, found)
    assert records(lab, stack)["static.routes"]["status"] == "PASS"


_CHANGE = re.compile(
    r"^\s*(?:\+-|[~+-])\s*\S+:\s+\((\w+)\)\s*\n(?:\s*\[id=\S+\]\n)?\s*\[urn=(\S+)\]", re.MULTILINE
)


def _steps(transcript: str) -> set[tuple[str, str]]:
    """(what happens, resource name) for each resource pulumi changes, read from its own diff lines
    (`~ command:local:Command: (update)`, `+-command:local:Command: (replace)`, then `[urn=...::name]`)."""
    return {
        (m[1], m[2].rsplit("::", 1)[1])
        for m in _CHANGE.finditer(transcript)
        if m[1] in ("update", "replace", "create", "delete")
    }


def test_static_destroy_of_a_live_lab_leaves_nothing(lab: Lab, static: dict[str, Any]) -> None:
    destroy_leaves_nothing(lab, LABS["static"][0], static)


def test_the_labs_artifacts_are_a_report_and_captures_a_person_can_open(lab: Lab) -> None:
    """What stays after the labs are gone: each stack's report.md and its pcaps."""
    for stack, _ in LABS.values():
        folder: Path = lab.root / "artifacts" / stack
        assert (folder / "report.md").is_file(), stack
        for pcap in folder.glob("*.pcap"):
            assert pcap.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a"), (
                pcap
            )
