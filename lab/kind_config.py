"""The kind cluster definition, as data (kind.x-k8s.io/v1alpha4)."""

from __future__ import annotations

from typing import Any

import yaml

from lab.config import LabConfig

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"

# kubeadm would otherwise hand out node pod CIDRs in node-registration order, which differs
# from run to run. The lab writes each node's spec.podCIDR from its address plan instead (or,
# in multi-pool mode, Cilium's operator allocates and node podCIDRs would only mislead).
# No apiVersion: kind matches on `kind` and converts the map to kubeadm v1beta4's list form.
_NO_CIDR_ALLOCATION = yaml.safe_dump(
    {"kind": "ClusterConfiguration", "controllerManager": {"extraArgs": {"allocate-node-cidrs": "false"}}},
    sort_keys=False,
)

# On a cgroup v1 host (lab/cgroups.py says why): every node's kubelet, since joining nodes take the
# KubeletConfiguration kubeadm init uploads.
_ALLOW_CGROUP_V1 = yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False}, sort_keys=False)


def kind_config(config: LabConfig, cgroup_v1: bool = False) -> dict[str, Any]:
    """`cgroup_v1`: the Docker host has cgroup v1 only, so the kubelet must be allowed to run on it."""
    nodes = [{"role": "control-plane", "image": config.node_image}] + [
        {"role": "worker", "image": config.node_image} for _ in range(config.workers)
    ]
    doc: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": KIND_API_VERSION,
        "name": config.cluster_name,
        "networking": {
            "disableDefaultCNI": True,  # Cilium is the CNI
            "kubeProxyMode": "none",  # Cilium's kube-proxy replacement
            "podSubnet": str(config.pod_cidr),
            "serviceSubnet": str(config.service_cidr),
        },
        "nodes": nodes,
        "kubeadmConfigPatches": [_NO_CIDR_ALLOCATION, *([_ALLOW_CGROUP_V1] if cgroup_v1 else [])],
    }
    return doc


def render(config: LabConfig, cgroup_v1: bool = False) -> str:
    return yaml.safe_dump(kind_config(config, cgroup_v1), sort_keys=False)


def smoke_cluster(name: str, image: str, workers: int, cgroup_v1: bool) -> dict[str, Any]:
    """A cluster like the lab's (no default CNI, no kube-proxy, the kubelet patch on cgroup v1) but
    without its address plan or stack config: for trying a node image with kind alone."""
    return {
        "kind": "Cluster",
        "apiVersion": KIND_API_VERSION,
        "name": name,
        "networking": {"disableDefaultCNI": True, "kubeProxyMode": "none"},
        "nodes": [{"role": "control-plane", "image": image}]
        + [{"role": "worker", "image": image} for _ in range(workers)],
        "kubeadmConfigPatches": [_ALLOW_CGROUP_V1] if cgroup_v1 else [],
    }
