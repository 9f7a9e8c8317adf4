"""The offline kind node image (make images) in a real kind cluster on this machine's Docker engine,
with kind alone (no Pulumi): the control plane comes up at v1.36.1 and the node registers. Nodes stay
NotReady without a CNI, so readiness is not asserted. Skips when the image, kind or the engine is
missing; takes about 30 s here."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab import kind_config
from supply import buildcache, toolchain
from supply import node_image as images


def _built() -> tuple[str, Path, Path]:
    try:
        go = toolchain.go_version(toolchain.go_command())
        kind_dir = toolchain.current_dir(os.environ)
    except toolchain.ToolchainError as exc:
        pytest.skip(f"cannot look up the builds ({exc}): needs Go")
    key = images.image_key(images.RECIPE_DIR, go)
    built = buildcache.built_dir(images.images_root(os.environ), key)
    if built is None:
        pytest.skip("the kind node image is not built for the current recipe: run `make images`")
    if kind_dir is None:
        pytest.skip("kind is not built for the current toolchain recipe: run `make toolchain`")
    tag = images.node_tag(images.load_node_recipe(), key)
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        pytest.skip("no Docker engine reachable: run `make dockerd` (make test points DOCKER_HOST at it)")
    if images.engine_image_id(tag, os.environ) is None:
        pytest.skip(f"{tag} is built but not in this engine: `make images` imports it")
    return tag, kind_dir / "bin" / "kind", built / "bin" / "kubectl"


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, Path]]:
    """A one-node cluster of a name no other run uses; deleted afterwards whatever happened."""
    tag, kind, _ = _built()
    name = f"cdl-t{os.getpid()}"
    doc = kind_config.smoke_cluster(name, tag, 0)
    with tempfile.TemporaryDirectory() as tmp:
        config, kubeconfig = Path(tmp) / "kind.yaml", Path(tmp) / "kubeconfig"
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        try:
            created = subprocess.run(
                [str(kind), "create", "cluster", "--config", str(config)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            assert created.returncode == 0, created.stderr[-4000:]
            yield name, kubeconfig
        finally:
            subprocess.run(
                [str(kind), "delete", "cluster", "--name", name], env=env, capture_output=True, check=False
            )
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert left.stdout.strip() == "", f"kind delete left containers of {name}"


def _kubectl(kubeconfig: Path, *args: str) -> str:
    _, _, kubectl = _built()
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, check=True
    ).stdout


def test_the_api_server_reports_the_pinned_version(cluster: tuple[str, Path]) -> None:
    _, kubeconfig = cluster
    version = json.loads(_kubectl(kubeconfig, "version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == "v1.36.1"
    assert (version["serverVersion"]["major"], version["serverVersion"]["minor"]) == ("1", "36")


def test_the_node_registers_with_its_kubelet_and_runtime(cluster: tuple[str, Path]) -> None:
    name, kubeconfig = cluster
    (node,) = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json"))["items"]
    assert node["metadata"]["name"] == f"{name}-control-plane"
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.1"
    assert info["containerRuntimeVersion"].startswith("containerd://1.6.")


def test_the_control_plane_runs_from_the_preloaded_images(cluster: tuple[str, Path]) -> None:
    _, kubeconfig = cluster
    refs = images.control_plane_refs(images.load_node_recipe())
    wanted = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    deadline = time.monotonic() + 60  # mirror pods reach the API a little after kubeadm returns
    while True:
        pods = json.loads(_kubectl(kubeconfig, "get", "pods", "-n", "kube-system", "-o", "json"))["items"]
        running = {
            p["metadata"].get("labels", {}).get("component"): p["spec"]["containers"][0]["image"]
            for p in pods
            if p["status"].get("phase") == "Running"
        }
        if all(c in running for c in wanted) or time.monotonic() > deadline:
            break
        time.sleep(2)
    for component in wanted:
        assert running.get(component) == refs[component], (component, running)


def test_the_node_names_its_own_ip_for_dns_not_dockers_127_0_0_11(cluster: tuple[str, Path]) -> None:
    """On a user-defined Docker network (kind's own `kind` network here) the node's resolv.conf,
    which pods with dnsPolicy Default get, must not name 127.0.0.11: in a pod that is the pod itself
    (CoreDNS: "plugin/loop: Loop detected"). The node answers DNS on its own IP instead."""
    name, _ = cluster
    node = f"{name}-control-plane"

    def node_says(*argv: str) -> str:
        return subprocess.run(
            ["docker", "exec", node, *argv], capture_output=True, text=True, check=True
        ).stdout

    ip = subprocess.run(
        ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", node],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    nameservers = [
        line.split()[1]
        for line in node_says("cat", "/etc/resolv.conf").splitlines()
        if line.startswith("nameserver ")
    ]
    assert nameservers == [ip]
    nat = node_says("iptables-save", "-t", "nat").splitlines()
    assert f"-A PREROUTING -d {ip}/32 -j CDL-DOCKER-DNS" in nat
    # The node's own lookups take the same path (with the trailing dot /etc/hosts does not answer).
    assert node_says("getent", "ahostsv4", f"{node}.").split()[0] == ip
