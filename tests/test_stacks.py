"""The real program, evaluated from each real stack file under recording mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from mockstack import (
    FAKE_TOKEN,
    ROOT,
    SECRET_SIG,
    Evaluation,
    changes,
    evaluate,
    stack_config,
    with_project_keys,
)

from lab.modes import Mode

STACKS = [m.value for m in Mode]
COMMAND = "command:local:Command"
RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NETWORK = "docker:index/network:Network"


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[str, Evaluation]:
    return request.param, evaluate(request.param)


def test_every_stack_evaluates_to_the_lab(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    cluster = f"lab-{name}"
    assert ev.one("lab:index:KindCluster").name == cluster
    assert ev.one("lab:index:CiliumRelease").name == "cilium"
    assert ev.one(NETWORK).inputs["name"] == f"cdl-{cluster}"
    assert ev.one(RELEASE).inputs["version"] == "1.20.2"
    commands = {r.name for r in ev.by_type(COMMAND)}
    assert {f"{cluster}-cluster", f"{cluster}-nodes", f"{cluster}-kubeconfig", "cilium-ready"} <= commands
    pins = name != "native-auto"
    assert (f"{cluster}-pod-cidrs" in commands) is pins


def test_stack_outputs(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    out = ev.outputs
    assert out["mode"] == name
    assert out["nodes"] == [f"lab-{name}-control-plane", f"lab-{name}-worker", f"lab-{name}-worker2"]
    assert set(out["nodeIps"]) == set(out["nodes"])
    if name == "native-auto":
        assert out["podCidrs"] == {}
    else:
        assert sorted(out["podCidrs"].values())[0] in ("10.10.0.0/27", "10.244.0.0/24")


def test_network_is_ipv4_labelled_and_sized_for_nodes(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    network = ev.one(NETWORK)
    (ipam,) = network.inputs["ipamConfigs"]
    assert (
        ipam["subnet"].endswith(".0/24")
        and ipam["gateway"].endswith(".1")
        and ipam["ipRange"].endswith(".0/25")
    )
    labels = {lbl["label"]: lbl["value"] for lbl in network.inputs["labels"]}
    assert labels == {"cilium-datapath-lab.stack": name, "cilium-datapath-lab.cluster": f"lab-{name}"}
    assert network.inputs["options"]["com.docker.network.driver.mtu"] == "1500"
    assert network.delete_before_replace  # its replacement reuses the name


def test_kind_cluster_command(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    cluster = ev.one(COMMAND, "-cluster")
    kind_config = yaml.safe_load(cluster.inputs["stdin"])
    assert kind_config["networking"]["disableDefaultCNI"] is True
    assert kind_config["networking"]["kubeProxyMode"] == "none"
    assert [n["role"] for n in kind_config["nodes"]] == ["control-plane", "worker", "worker"]
    assert all("@sha256:" in n["image"] for n in kind_config["nodes"])
    env = cluster.inputs["environment"]
    assert env == {
        "LAB_CLUSTER": f"lab-{name}",
        "LAB_NETWORK": f"cdl-lab-{name}",
        "LAB_KUBECONFIG": f"artifacts/{name}/kubeconfig",
    }
    assert (
        "kind create cluster" in cluster.inputs["create"]
        and "kind delete cluster" in cluster.inputs["delete"]
    )
    assert cluster.inputs["triggers"][0] == name
    assert {"stdin", "environment", "triggers"} <= set(cluster.replace_on_changes)
    assert "*" not in cluster.replace_on_changes  # editing a script must not rebuild the cluster
    assert cluster.inputs["update"].strip().endswith(":")  # ... it updates in place, doing nothing
    assert cluster.delete_before_replace
    network = ev.one(NETWORK)
    assert network.urn in cluster.dependencies


def test_dependencies_and_deleted_with(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    cluster = ev.one(COMMAND, "-cluster")
    release = ev.one(RELEASE)
    ready = ev.one(COMMAND, "cilium-ready")
    provider = ev.one(K8S_PROVIDER)
    gate = ev.one(COMMAND, "-pod-cidrs") if name != "native-auto" else ev.one(COMMAND, "-nodes")
    # Order: cluster -> node pod CIDRs -> Cilium -> readiness gate.
    assert cluster.urn in gate.dependencies
    assert gate.urn in release.dependencies
    assert release.urn in ready.dependencies
    # The release goes through the lab's provider, built from the cluster's kubeconfig.
    assert release.provider.startswith(provider.urn + "::")
    assert ev.one(COMMAND, "-kubeconfig").urn in provider.dependencies
    # Everything living in or on the cluster is deleted with it (destroy works without a cluster).
    # (Docker objects on the host -- network, tools image, sidecars -- are deleted for real.)
    on_cluster = [r for r in ev if r.custom and r.urn != cluster.urn and not r.type.startswith("docker:")]
    assert on_cluster
    for r in on_cluster:
        assert r.deleted_with == cluster.urn, f"{r.type} {r.name} is not deleted_with the cluster"


def test_kubernetes_provider_is_explicit_and_tolerates_a_missing_cluster(
    stack: tuple[str, Evaluation],
) -> None:
    _, ev = stack
    provider = ev.one(K8S_PROVIDER)
    assert provider.inputs["deleteUnreachable"] == "true"
    assert stack_config(stack[0])["pulumi:disable-default-providers"] == ["kubernetes"]
    # No resource falls back to a default provider.
    for r in ev.by_type(RELEASE):
        assert "::default" not in r.provider


def _plain_occurrences(value: Any, needle: str, path: str = "") -> list[str]:
    """Paths where `needle` appears in wire-form data outside a secret."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return []
        return [p for k, v in value.items() for p in _plain_occurrences(v, needle, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _plain_occurrences(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and needle in value else []


def test_kubeconfig_never_reaches_a_plain_output_or_input(stack: tuple[str, Evaluation]) -> None:
    _, ev = stack
    assert ev.outputs["kubeconfig"]["4dabf18193072939515e22adb298388d"] == SECRET_SIG
    leaks = _plain_occurrences(ev.outputs, FAKE_TOKEN)
    for r in ev:
        leaks += [f"{r.name}{p}" for p in _plain_occurrences(r.raw, FAKE_TOKEN)]
    assert leaks == []
    # The provider did receive it, as a secret; the command that reads it neither logs nor stores it in clear.
    assert _plain_occurrences(ev.one(K8S_PROVIDER).raw, "kind: Config") == []
    kubeconfig_cmd = ev.one(COMMAND, "-kubeconfig")
    assert kubeconfig_cmd.inputs["logging"] == "stderr"
    assert kubeconfig_cmd.additional_secret_outputs == ["stdout"]


def test_secret_scan_finds_a_plain_kubeconfig() -> None:
    """The scanner above is not blind: it reports the token when it is not wrapped as a secret."""
    assert _plain_occurrences({"a": [{"b": f"x {FAKE_TOKEN}lab"}]}, FAKE_TOKEN) == [".a[0].b"]
    wrapped = {"4dabf18193072939515e22adb298388d": SECRET_SIG, "value": FAKE_TOKEN}
    assert _plain_occurrences({"a": wrapped}, FAKE_TOKEN) == []


def test_inputs_are_deterministic_and_machine_independent(stack: tuple[str, Evaluation]) -> None:
    name, first = stack
    second = evaluate(name)

    def keyed(ev: Evaluation) -> dict[tuple[str, str], Any]:
        return {(r.type, r.name): r.inputs for r in ev}

    assert keyed(first) == keyed(second)
    assert changes(first, second) == {}
    text = json.dumps([r.inputs for r in first])
    assert str(ROOT) not in text
    for marker in ("/home/", "/root/", "/tmp/", "/Users/"):
        assert marker not in text


def test_changing_mode_replaces_the_cluster() -> None:
    before = evaluate("static")
    after = evaluate("static", with_project_keys(stack_config("static"), mode="bgp", staticRoutes=None))
    diff = changes(before, after)
    assert diff[(COMMAND, "lab-static-cluster")] == "replace"


@pytest.mark.parametrize(
    ("change", "replaced"),
    [
        ({"workers": 3}, True),
        ({"nodeImage": "kindest/node:v1.35.0@sha256:" + "a" * 64}, True),
        ({"podCidr": "10.20.0.0/16"}, True),
        ({"podCidrMaskSize": 26}, True),
        ({"underlaySubnet": "172.30.40.0/24"}, True),
        ({"serviceCidr": "10.97.0.0/16"}, True),
        ({"ciliumVersion": "1.20.1"}, False),
        ({"verify": {"enabled": False, "rerun": "again"}}, False),
    ],
)
def test_only_topology_changes_replace_the_cluster(change: dict[str, Any], replaced: bool) -> None:
    before = evaluate("static")
    after = evaluate("static", with_project_keys(stack_config("static"), **change))
    diff = changes(before, after)
    cluster_change = diff.get((COMMAND, "lab-static-cluster"))
    assert (cluster_change == "replace") is replaced, diff
    if not replaced:
        assert cluster_change is None


def test_new_cilium_version_touches_only_the_release() -> None:
    """An upgrade updates the release in place, re-runs the readiness gate and the checks; the cluster stays."""
    before = evaluate("overlay")
    after = evaluate("overlay", with_project_keys(stack_config("overlay"), ciliumVersion="1.20.1"))
    diff = changes(before, after)
    assert diff.pop((RELEASE, "cilium-chart")) == "update"
    assert diff.pop((COMMAND, "cilium-ready")) == "replace"
    # ... and every check runs again against the upgraded datapath; nothing else changes.
    assert diff
    assert all(
        name.startswith("verify-") and kind == COMMAND and op == "replace"
        for (kind, name), op in diff.items()
    )


def test_verify_rerun_reruns_every_check_and_nothing_else() -> None:
    before = evaluate("overlay")
    after = evaluate(
        "overlay", with_project_keys(stack_config("overlay"), verify={"enabled": True, "rerun": "2"})
    )
    diff = changes(before, after)
    checks = {r.name for r in before.by_type(COMMAND) if r.name.startswith("verify-")}
    assert set(diff) == {(COMMAND, name) for name in checks}
    assert set(diff.values()) == {"replace"}


def test_editing_a_kind_script_does_not_replace_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    from components import kind_cluster  # noqa: PLC0415

    before = evaluate("overlay")
    from lab.scripts import script  # noqa: PLC0415

    monkeypatch.setattr(kind_cluster, "script", lambda name: script(name) + "# a comment\n")
    after = evaluate("overlay")
    diff = changes(before, after)
    assert diff[(COMMAND, "lab-overlay-cluster")] == "update"


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parent.parent / "stacks").glob("Pulumi.*.yaml"))
)
def test_a_shipped_stack_file_is_bound_to_no_passphrase(path: Path) -> None:
    """`pulumi stack select --create` writes the passphrase's salt into the stack file; shipped with
    it, every other passphrase (a user's, each test lab's) is refused ("incorrect passphrase")."""
    text = path.read_text()
    assert "encryptionsalt" not in text and "secure:" not in text, path.name
