"""What a stack asks of Cilium: Helm values per mode, and the CRDs later resources wait for."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from lab import offline
from lab.config import LabConfig
from lab.modes import Ipam, Mode
from lab.plan import AddressPlan

CHART = "cilium"
CHART_REPO = "https://helm.cilium.io"
NAMESPACE = "kube-system"
RELEASE_NAME = "cilium"
COMMON_VALUES = Path(__file__).resolve().parent.parent / "cilium" / "values-common.yaml"
OFFLINE_VALUES = Path(__file__).resolve().parent.parent / "cilium" / "values-offline.yaml"

# The operator registers these at runtime (not via Helm), so Cilium custom resources must wait
# until each one is Established.
_BASE_CRDS = ("ciliumnodes.cilium.io", "ciliumendpoints.cilium.io", "ciliumidentities.cilium.io")
_MODE_CRDS: dict[Mode, tuple[str, ...]] = {
    Mode.NATIVE_AUTO: ("ciliumpodippools.cilium.io",),
    Mode.BGP: (
        "ciliumbgpclusterconfigs.cilium.io",
        "ciliumbgppeerconfigs.cilium.io",
        "ciliumbgpadvertisements.cilium.io",
        "ciliumbgpnodeconfigs.cilium.io",
        "ciliumloadbalancerippools.cilium.io",
    ),
}


def required_crds(mode: Mode) -> tuple[str, ...]:
    return _BASE_CRDS + _MODE_CRDS.get(mode, ())


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _deep_merge(merged[k], v)
        else:
            merged[k] = copy.deepcopy(v)
    return merged


def mode_values(config: LabConfig) -> dict[str, Any]:
    """The values that make a stack the mode it claims to be (cilium/cilium values.yaml keys)."""
    facts = config.facts
    values: dict[str, Any] = {
        "routingMode": facts.routing_mode,
        "autoDirectNodeRoutes": facts.auto_direct_node_routes,
        "ipam": {"mode": facts.ipam.value},
        "bgpControlPlane": {"enabled": facts.bgp_control_plane},
    }
    if facts.is_tunnel:
        values["tunnelProtocol"] = facts.tunnel_protocol
        values["tunnelPort"] = facts.tunnel_port
    else:
        # The agent refuses native routing with masquerading unless it knows which
        # destinations are routed natively (and must not be masqueraded).
        values["ipv4NativeRoutingCIDR"] = str(config.pod_cidr)
    if facts.ipam is Ipam.PINNED:
        # Wait for the podCIDR the lab writes into each Node instead of guessing.
        values["k8s"] = {"requireIPv4PodCIDR": True}
    else:
        values["ipam"]["operator"] = {
            "autoCreateCiliumPodIPPools": {
                "default": {"ipv4": {"cidrs": [str(config.pod_cidr)], "maskSize": config.pod_mask}}
            }
        }
        # Per-endpoint routes (`<pod IP> dev lxc…`), as the write-up's native-auto table shows.
        values["endpointRoutes"] = {"enabled": True}
    return values


def helm_values(config: LabConfig, plan: AddressPlan) -> dict[str, Any]:
    common = yaml.safe_load(COMMON_VALUES.read_text())
    cluster = {"k8sServiceHost": plan.control_plane.name}
    values = _deep_merge(_deep_merge(common, mode_values(config)), cluster)
    if config.offline is not None:  # this machine's own images, loaded into the nodes, never pulled
        values = _deep_merge(values, yaml.safe_load(OFFLINE_VALUES.read_text()))
        values = _deep_merge(values, offline.helm_overrides(config.offline))
    return values


def chart_source(config: LabConfig) -> tuple[str, str | None]:
    """(chart, repository): the release from helm.cilium.io, or this machine's packed archive."""
    if config.offline is not None:
        return config.offline.cilium_chart, None
    return CHART, CHART_REPO
