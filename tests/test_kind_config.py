"""The kind cluster definition each stack asks kind for."""

from __future__ import annotations

import pytest
import yaml

from lab import kind_config
from lab.config import parse_config


@pytest.mark.parametrize("mode", ["overlay", "geneve", "native-auto", "static", "bgp"])
def test_kind_config_shape(mode: str) -> None:
    config = parse_config({"mode": mode, "clusterName": "lab-x", "workers": 3}, mode)
    doc = yaml.safe_load(kind_config.render(config))
    assert doc["apiVersion"] == "kind.x-k8s.io/v1alpha4" and doc["kind"] == "Cluster"
    assert doc["name"] == "lab-x"
    net = doc["networking"]
    assert net["disableDefaultCNI"] is True
    assert net["kubeProxyMode"] == "none"
    assert net["podSubnet"] == str(config.pod_cidr)
    assert net["serviceSubnet"] == "10.96.0.0/16"
    assert [n["role"] for n in doc["nodes"]] == ["control-plane", "worker", "worker", "worker"]
    assert {n["image"] for n in doc["nodes"]} == {config.node_image.ref}


@pytest.mark.parametrize("mode", ["overlay", "static", "native-auto"])
def test_controller_manager_does_not_allocate_pod_cidrs(mode: str) -> None:
    """The lab (pinned modes) or Cilium's operator (multi-pool) owns pod CIDRs, never kubeadm's allocator."""
    config = parse_config({"mode": mode}, mode)
    doc = yaml.safe_load(kind_config.render(config))
    patches = [yaml.safe_load(p) for p in doc["kubeadmConfigPatches"]]
    assert [p["kind"] for p in patches] == ["ClusterConfiguration", "KubeletConfiguration"]
    patch_doc = patches[0]
    # No apiVersion: kind then applies it to kubeadm v1beta3 and v1beta4 alike (k8s 1.36 uses v1beta4).
    assert "apiVersion" not in patch_doc
    assert patch_doc["controllerManager"]["extraArgs"] == {"allocate-node-cidrs": "false"}
