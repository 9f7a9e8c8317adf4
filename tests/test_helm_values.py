"""Helm values per mode: the keys that make each stack the mode it claims to be."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from mockstack import evaluate

from lab.cilium import helm_values, required_crds
from lab.config import parse_config
from lab.modes import Mode
from lab.plan import plan

MISSING = object()


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


# What each mode must set (MISSING: must not be set at all). LAB.md §1 and §5.
EXPECTED: dict[str, dict[str, Any]] = {
    "overlay": {
        "routingMode": "tunnel",
        "tunnelProtocol": "vxlan",
        "tunnelPort": 8472,
        "autoDirectNodeRoutes": False,
        "ipam.mode": "kubernetes",
        "k8s.requireIPv4PodCIDR": True,
        "ipv4NativeRoutingCIDR": MISSING,
        "bgpControlPlane.enabled": False,
        "endpointRoutes": MISSING,
    },
    "geneve": {
        "routingMode": "tunnel",
        "tunnelProtocol": "geneve",
        "tunnelPort": 6081,
        "autoDirectNodeRoutes": False,
        "ipam.mode": "kubernetes",
        "k8s.requireIPv4PodCIDR": True,
        "ipv4NativeRoutingCIDR": MISSING,
        "bgpControlPlane.enabled": False,
    },
    "native-auto": {
        "routingMode": "native",
        "tunnelProtocol": MISSING,
        "autoDirectNodeRoutes": True,
        "ipv4NativeRoutingCIDR": "10.10.0.0/16",
        "ipam.mode": "multi-pool",
        "ipam.operator.autoCreateCiliumPodIPPools.default.ipv4": {"cidrs": ["10.10.0.0/16"], "maskSize": 27},
        "endpointRoutes.enabled": True,
        "k8s.requireIPv4PodCIDR": MISSING,
        "bgpControlPlane.enabled": False,
    },
    "static": {
        "routingMode": "native",
        "tunnelProtocol": MISSING,
        "autoDirectNodeRoutes": False,
        "ipv4NativeRoutingCIDR": "10.10.0.0/16",
        "ipam.mode": "kubernetes",
        "k8s.requireIPv4PodCIDR": True,
        "bgpControlPlane.enabled": False,
    },
    "bgp": {
        "routingMode": "native",
        "tunnelProtocol": MISSING,
        "autoDirectNodeRoutes": False,
        "ipv4NativeRoutingCIDR": "10.10.0.0/16",
        "ipam.mode": "kubernetes",
        "k8s.requireIPv4PodCIDR": True,
        "bgpControlPlane.enabled": True,
    },
}
COMMON = {
    "kubeProxyReplacement": True,
    "k8sServicePort": 6443,
    "ipv6.enabled": False,
    "enableIPv4Masquerade": True,
    "bpf.masquerade": True,
    "operator.replicas": 1,
}


def test_table_covers_every_mode() -> None:
    assert set(EXPECTED) == {m.value for m in Mode}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_release_values_per_mode(mode: str) -> None:
    """Read from the Release the real program registers for the real stack file."""
    values = evaluate(mode).one("kubernetes:helm.sh/v3:Release").inputs["values"]
    for dotted, want in {**COMMON, **EXPECTED[mode]}.items():
        got = lookup(values, dotted)
        assert got == want, f"{mode}: {dotted} is {got!r}, want {want!r}"
    assert values["k8sServiceHost"] == f"lab-{mode}-control-plane"


def test_values_follow_the_configured_pod_supernet() -> None:
    config = parse_config({"mode": "native-auto", "podCidr": "10.20.0.0/16", "podCidrMaskSize": 26}, "n")
    values = helm_values(config, plan(config))
    assert values["ipv4NativeRoutingCIDR"] == "10.20.0.0/16"
    assert values["ipam"]["operator"]["autoCreateCiliumPodIPPools"]["default"]["ipv4"] == {
        "cidrs": ["10.20.0.0/16"],
        "maskSize": 26,
    }


def test_bgp_waits_for_its_crds() -> None:
    assert "ciliumbgpclusterconfigs.cilium.io" in required_crds(Mode.BGP)
    assert "ciliumloadbalancerippools.cilium.io" in required_crds(Mode.BGP)
    assert "ciliumbgpclusterconfigs.cilium.io" not in required_crds(Mode.OVERLAY)
    assert "ciliumnodes.cilium.io" in required_crds(Mode.OVERLAY)


# --- Against the real chart, when one is given -------------------------------------------------
# The chart's schema accepts unknown keys, so a misspelt key (`routingmode`) silently yields the
# default tunnel mode. Point CILIUM_CHART at a released chart tarball (e.g. cilium-1.20.2.tgz from
# helm.cilium.io) to check every key the lab sets exists in the chart and passes its schema.


def _chart_files() -> tuple[dict[str, Any], dict[str, Any]]:
    chart = os.environ.get("CILIUM_CHART")
    if not chart or not Path(chart).is_file():
        pytest.skip("set CILIUM_CHART=/path/to/cilium-X.Y.Z.tgz to check values against the real chart")
    with tarfile.open(chart) as tar:
        defaults = yaml.safe_load(tar.extractfile("cilium/values.yaml").read())  # type: ignore[union-attr]
        schema = yaml.safe_load(tar.extractfile("cilium/values.schema.json").read())  # type: ignore[union-attr]
    return defaults, schema


def _leaf_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in values.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v and not path.startswith("ipam.operator.autoCreateCiliumPodIPPools"):
            out += _leaf_paths(v, path + ".")
        else:
            out.append(path)
    return out


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_every_key_exists_in_the_real_chart(mode: str) -> None:
    defaults, schema = _chart_files()
    config = parse_config({"mode": mode}, mode)
    values = helm_values(config, plan(config))
    unknown = [p for p in _leaf_paths(values) if lookup(defaults, p) is MISSING]
    assert unknown == [], f"keys the chart does not define (typos are silent in Helm): {unknown}"
    jsonschema.validate(values, schema)


def test_the_chart_check_catches_a_misspelt_key() -> None:
    defaults, _ = _chart_files()
    assert lookup(defaults, "routingMode") is not MISSING
    assert lookup(defaults, "routingmode") is MISSING
