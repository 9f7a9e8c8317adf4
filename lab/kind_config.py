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

# Lets the kubelet run on a cgroup v1 host (host/cgroups.py says why; the preflight names such a
# host). Every node gets it, since joining nodes take the KubeletConfiguration kubeadm init
# uploads. It is always set, not only on v1 hosts: on cgroup v2 the kubelet never reads it, and a
# cluster's inputs must not depend on the machine that previews it (same config, empty diff).
_ALLOW_CGROUP_V1 = yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False}, sort_keys=False)


def kind_config(config: LabConfig) -> dict[str, Any]:
    nodes = [{"role": "control-plane", "image": config.node_image.ref}] + [
        {"role": "worker", "image": config.node_image.ref} for _ in range(config.workers)
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
        "kubeadmConfigPatches": [_NO_CIDR_ALLOCATION, _ALLOW_CGROUP_V1],
    }
    return doc


def render(config: LabConfig) -> str:
    return yaml.safe_dump(kind_config(config), sort_keys=False)


def smoke_cluster(name: str, image: str, workers: int) -> dict[str, Any]:
    """A cluster like the lab's (no default CNI, no kube-proxy, the kubelet allowed on cgroup v1) but
    without its address plan or stack config: for trying a node image with kind alone."""
    return {
        "kind": "Cluster",
        "apiVersion": KIND_API_VERSION,
        "name": name,
        "networking": {"disableDefaultCNI": True, "kubeProxyMode": "none"},
        "nodes": [{"role": "control-plane", "image": image}]
        + [{"role": "worker", "image": image} for _ in range(workers)],
        "kubeadmConfigPatches": [_ALLOW_CGROUP_V1],
    }
