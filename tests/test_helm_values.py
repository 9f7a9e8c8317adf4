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


# Every stack's values (cilium/values-common.yaml): Helm accepts any key, so nothing but these.
COMMON: dict[str, Any] = {
    "kubeProxyReplacement": True,
    "k8sServicePort": 6443,
    "ipv4": {"enabled": True},
    "ipv6": {"enabled": False},
    "enableIPv4Masquerade": True,
    "bpf": {"masquerade": True},
    "operator": {"replicas": 1},
    "rollOutCiliumPods": True,
    "image": {"pullPolicy": "IfNotPresent"},
}
_TUNNEL: dict[str, Any] = {
    "routingMode": "tunnel",
    "autoDirectNodeRoutes": False,
    "ipam": {"mode": "kubernetes"},
    "k8s": {"requireIPv4PodCIDR": True},
    "bgpControlPlane": {"enabled": False},
}
_PINNED_NATIVE: dict[str, Any] = {
    "routingMode": "native",
    "autoDirectNodeRoutes": False,
    "ipv4NativeRoutingCIDR": "10.10.0.0/16",
    "ipam": {"mode": "kubernetes"},
    "k8s": {"requireIPv4PodCIDR": True},
}
# The whole mode part, key for key (LAB.md §1): no key a mode did not ask for. Only multi-pool
# (native-auto) asks for endpointRoutes; kubernetes IPAM gets k8s.requireIPv4PodCIDR instead.
EXPECTED: dict[str, dict[str, Any]] = {
    "overlay": {**_TUNNEL, "tunnelProtocol": "vxlan", "tunnelPort": 8472},
    "geneve": {**_TUNNEL, "tunnelProtocol": "geneve", "tunnelPort": 6081},
    "native-auto": {
        "routingMode": "native",
        "autoDirectNodeRoutes": True,
        "ipv4NativeRoutingCIDR": "10.10.0.0/16",
        "ipam": {
            "mode": "multi-pool",
            "operator": {
                "autoCreateCiliumPodIPPools": {
                    "default": {"ipv4": {"cidrs": ["10.10.0.0/16"], "maskSize": 27}}
                }
            },
        },
        "endpointRoutes": {"enabled": True},
        "bgpControlPlane": {"enabled": False},
    },
    "static": {**_PINNED_NATIVE, "bgpControlPlane": {"enabled": False}},
    "bgp": {**_PINNED_NATIVE, "bgpControlPlane": {"enabled": True}},
}


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_release_values_per_mode(mode: str) -> None:
    """Read from the Release the real program registers for the real stack file: exactly these."""
    values = evaluate(mode).one("kubernetes:helm.sh/v3:Release").inputs["values"]
    assert values == {**COMMON, **EXPECTED[mode], "k8sServiceHost": f"lab-{mode}-control-plane"}


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_no_key_beyond_the_mode_part(mode: str) -> None:
    """The same on lab.cilium's own answer, by leaf path, so a failure names the unasked key."""
    config = parse_config({"mode": mode}, mode)
    got = set(_leaf_paths(helm_values(config, plan(config))))
    want = set(_leaf_paths({**COMMON, **EXPECTED[mode], "k8sServiceHost": ""}))
    assert (sorted(got - want), sorted(want - got)) == ([], [])


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
# default tunnel mode. CILIUM_CHART names a released chart tarball (cilium-1.20.2.tgz from
# helm.cilium.io, or the one `make chart` packs from the Go module, which `make test` passes) to
# check every key the lab sets exists in the chart and passes its schema.


def _chart_files() -> tuple[dict[str, Any], dict[str, Any]]:
    chart = os.environ.get("CILIUM_CHART")
    if chart and not Path(chart).is_file():
        pytest.fail(f"CILIUM_CHART={chart} is not a file: run `make chart` or point it at a chart tarball")
    if not chart:
        pytest.skip(
            "run `make chart` (or set CILIUM_CHART=/path/to/cilium-X.Y.Z.tgz) to check values against the real chart"
        )
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
