"""Config validation: every bad value is rejected before any resource, naming its key and a fix."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from mockstack import PROJECT, Evaluation, evaluate, stack_config, with_project_keys

from lab.config import (
    DEFAULT_CILIUM_VERSION,
    DEFAULT_NODE_IMAGE,
    MAX_WORKERS,
    LabConfigError,
    parse_config,
)
from lab.modes import Mode
from lab.plan import plan

GOOD_STATIC: dict[str, Any] = {"mode": "static", "workers": 2}

# (case id, raw config, the key that must be named, a fragment of the explanation)
BAD_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("mode missing", {"workers": 2}, "mode", "required"),
    ("mode unknown", {"mode": "vxlan"}, "mode", "valid modes: overlay, geneve, native-auto, static, bgp"),
    ("mode typo", {"mode": "overlya"}, "mode", "did you mean overlay"),
    (
        "tunnel + autoDirectNodeRoutes",
        {"mode": "overlay", "autoDirectNodeRoutes": True},
        "autoDirectNodeRoutes",
        "refuses to start",
    ),
    (
        "geneve + autoDirectNodeRoutes",
        {"mode": "geneve", "autoDirectNodeRoutes": "true"},
        "autoDirectNodeRoutes",
        "tunnel routing",
    ),
    (
        "native-auto without ADNR",
        {"mode": "native-auto", "autoDirectNodeRoutes": False},
        "autoDirectNodeRoutes",
        "use mode static",
    ),
    (
        "supernet too small",
        {"mode": "static", "podCidr": "10.10.0.0/26", "workers": 2},
        "podCidr",
        "holds only 2 /27 block",
    ),
    (
        "supernet too small for 64 workers",
        {"mode": "overlay", "podCidr": "10.244.0.0/20", "workers": 64},
        "podCidr",
        "but the lab has 65 nodes",
    ),
    (
        "pod overlaps underlay",
        {"mode": "static", "podCidr": "172.30.0.0/16"},
        "podCidr",
        "overlaps cilium-datapath-lab:underlaySubnet",
    ),
    (
        "pod overlaps services",
        {"mode": "static", "podCidr": "10.96.0.0/16"},
        "podCidr",
        "overlaps cilium-datapath-lab:serviceCidr",
    ),
    (
        "underlay overlaps services",
        {"mode": "static", "underlaySubnet": "10.96.5.0/24"},
        "underlaySubnet",
        "overlaps",
    ),
    (
        "service CIDR larger than /12",
        {"mode": "overlay", "serviceCidr": "10.0.0.0/8"},
        "serviceCidr",
        "between /12 and /28",
    ),
    (
        "service CIDR under 10 addresses",
        {"mode": "overlay", "serviceCidr": "10.96.0.0/29"},
        "serviceCidr",
        "between /12 and /28",
    ),
    ("malformed pod CIDR", {"mode": "static", "podCidr": "10.10.0.0/33"}, "podCidr", "not a valid IPv4 CIDR"),
    (
        "pod CIDR with host bits",
        {"mode": "static", "podCidr": "10.10.0.1/16"},
        "podCidr",
        "did you mean 10.10.0.0/16",
    ),
    ("IPv6 pod CIDR", {"mode": "static", "podCidr": "fd00::/64"}, "podCidr", "IPv4-only"),
    ("malformed underlay", {"mode": "overlay", "underlaySubnet": "172.30.1.0"}, "underlaySubnet", "/24"),
    (
        "public underlay",
        {"mode": "overlay", "underlaySubnet": "8.8.8.0/24"},
        "underlaySubnet",
        "not a private range",
    ),
    (
        "underlay too small",
        {"mode": "overlay", "underlaySubnet": "172.30.1.0/28", "workers": 8},
        "underlaySubnet",
        "leaves room for 6",
    ),
    ("mask out of range", {"mode": "static", "podCidrMaskSize": 31}, "podCidrMaskSize", "between"),
    ("workers zero", {"mode": "overlay", "workers": 0}, "workers", f"outside 1-{MAX_WORKERS}"),
    ("workers above maximum", {"mode": "overlay", "workers": MAX_WORKERS + 1}, "workers", "largest lab"),
    ("workers not a number", {"mode": "overlay", "workers": "two"}, "workers", "whole number"),
    (
        "cluster name uppercase",
        {"mode": "overlay", "clusterName": "Lab_One"},
        "clusterName",
        "DNS-1123 label",
    ),
    (
        "cluster name with shell",
        {"mode": "overlay", "clusterName": "lab;rm -rf /"},
        "clusterName",
        "DNS-1123 label",
    ),
    ("cluster name too long", {"mode": "overlay", "clusterName": "a" * 50}, "clusterName", "at most 49"),
    (
        "image by tag only",
        {"mode": "overlay", "nodeImage": "kindest/node:v1.36.1"},
        "nodeImage",
        "not pinned by digest",
    ),
    (
        "image digest short",
        {"mode": "overlay", "nodeImage": "kindest/node:v1.36.1@sha256:abc"},
        "nodeImage",
        "64 hex",
    ),
    (
        "chart version range",
        {"mode": "overlay", "ciliumVersion": "1.20"},
        "ciliumVersion",
        "exact chart version X.Y.Z",
    ),
    ("chart version with v", {"mode": "overlay", "ciliumVersion": "v1.20.2"}, "ciliumVersion", "X.Y.Z"),
    (
        "chart version too old",
        {"mode": "bgp", "ciliumVersion": "1.16.5"},
        "ciliumVersion",
        "older than 1.18.0",
    ),
    ("unknown key", {"mode": "overlay", "podCIDR": "10.244.0.0/16"}, "podCIDR", "did you mean podCidr"),
    (
        "bgp section in overlay",
        {"mode": "overlay", "bgp": {"routerAsn": 65000}},
        "bgp",
        "only applies to mode bgp",
    ),
    ("bgp same ASN", {"mode": "bgp", "bgp": {"routerAsn": 65001, "nodeAsn": 65001}}, "bgp.routerAsn", "eBGP"),
    (
        "bgp ASN out of range",
        {"mode": "bgp", "bgp": {"nodeAsn": 4294967295}},
        "bgp.nodeAsn",
        "not a usable AS number",
    ),
    ("bgp AS_TRANS", {"mode": "bgp", "bgp": {"routerAsn": 23456}}, "bgp.routerAsn", "AS_TRANS"),
    (
        "bgp node ASN list length",
        {"mode": "bgp", "bgp": {"nodeAsn": [65001, 65002]}},
        "bgp.nodeAsn",
        "one per node",
    ),
    (
        "bgp unknown subkey",
        {"mode": "bgp", "bgp": {"maxPaths": 4}},
        "bgp.maxPaths",
        "did you mean bgp.maximumPaths",
    ),
    (
        "bgp maximumPaths zero",
        {"mode": "bgp", "bgp": {"maximumPaths": 0}},
        "bgp.maximumPaths",
        "outside 1-64",
    ),
    ("bgp routers too many", {"mode": "bgp", "bgp": {"routers": 9}}, "bgp.routers", "outside 1-4"),
    (
        "bgp vipCidr not a CIDR",
        {"mode": "bgp", "bgp": {"vipCidr": "x"}},
        "bgp.vipCidr",
        "not a valid IPv4 CIDR",
    ),
    ("verify not a mapping", {"mode": "overlay", "verify": "off"}, "verify", "a mapping with enabled, rerun"),
    (
        "VIP overlaps pods",
        {"mode": "bgp", "bgp": {"vipCidr": "10.10.1.0/28"}},
        "podCidr",
        "overlaps cilium-datapath-lab:bgp.vipCidr",
    ),
    ("bgp not a mapping", {"mode": "bgp", "bgp": "[1, 2]"}, "bgp", "expected a mapping"),
    (
        "verify rerun with shell",
        {"mode": "overlay", "verify": {"rerun": "$(reboot)"}},
        "verify.rerun",
        "letters, digits",
    ),
    (
        "verify enabled not bool",
        {"mode": "overlay", "verify": {"enabled": "yes"}},
        "verify.enabled",
        "true or false",
    ),
    (
        "static routes in bgp",
        {"mode": "bgp", "staticRoutes": []},
        "staticRoutes",
        "only applies to mode static",
    ),
    (
        "static route unknown node",
        {
            "mode": "static",
            "staticRoutes": [{"node": "nope", "dest": "192.168.50.0/24", "via": "172.30.4.3"}],
        },
        "staticRoutes[0].node",
        "not a node of this lab",
    ),
    (
        "static route next hop off-link",
        {
            "mode": "static",
            "staticRoutes": [{"node": "static-worker", "dest": "192.168.50.0/24", "via": "10.1.1.1"}],
        },
        "staticRoutes[0].via",
        "not a host of the underlay",
    ),
    (
        "static route over own pod CIDR",
        {
            "mode": "static",
            "staticRoutes": [{"node": "static-worker", "dest": "10.10.0.32/28", "via": "172.30.4.2"}],
        },
        "staticRoutes[0].dest",
        "own pod CIDR",
    ),
    (
        "static route duplicate",
        {
            "mode": "static",
            "staticRoutes": [
                {"node": "static-worker", "dest": "192.168.50.0/24", "via": "172.30.4.2"},
                {"node": "static-worker", "dest": "192.168.50.0/24", "via": "172.30.4.4"},
            ],
        },
        "staticRoutes[1].dest",
        "already declared",
    ),
]


@pytest.mark.parametrize(
    ("raw", "bad_key", "fragment"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_rejected_naming_the_key(raw: dict[str, Any], bad_key: str, fragment: str) -> None:
    stack = "static" if raw.get("mode") == "static" else "lab"
    with pytest.raises(LabConfigError) as err:
        parse_config(raw, stack)
    keyed = [str(i) for i in err.value.issues if i.key == bad_key]
    assert keyed, f"no issue names {PROJECT}:{bad_key}; got: {err.value}"
    assert any(fragment in line for line in keyed), f"{fragment!r} not in {keyed}"
    assert f"{PROJECT}:{bad_key}" in str(err.value)


# README's configuration table, written out: every key a user can set, nested ones included.
README_KEYS = (
    "mode", "clusterName", "workers", "nodeImage", "ciliumVersion", "underlaySubnet", "podCidr",
    "podCidrMaskSize", "serviceCidr", "autoDirectNodeRoutes", "staticRoutes", "bgp", "verify",
    "bgp.routerAsn", "bgp.nodeAsn", "bgp.routers", "bgp.maximumPaths", "bgp.vipCidr",
    "verify.enabled", "verify.rerun",
)  # fmt: skip


def test_every_documented_key_has_a_bad_value_rejected() -> None:
    """Not a count of this table: each key README documents must have a case naming it."""
    named = {re.sub(r"\[\d+\]\..*", "", c[2]) for c in BAD_CONFIGS}
    assert [k for k in README_KEYS if k not in named] == []


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=lambda c: c[0])
def test_bad_stack_config_registers_no_resource(case: tuple[str, dict[str, Any], str, str]) -> None:
    """Under the real program: validation fails before the first resource is registered."""
    _, raw, bad_key, _ = case
    stack = "static" if raw.get("mode") == "static" else "lab"
    config = {f"{PROJECT}:{k}": v for k, v in raw.items()}
    evaluation = Evaluation(stack=stack)
    with pytest.raises(LabConfigError, match=re.escape(f"{PROJECT}:{bad_key}:")):
        evaluate(stack, config, evaluation)
    assert evaluation.registrations == []


def test_a_valid_config_does_register_resources() -> None:
    """The counterpart of the test above: the same harness sees registrations when there are some."""
    evaluation = Evaluation(stack="lab")
    evaluate("lab", {f"{PROJECT}:mode": "overlay"}, evaluation)
    assert len(evaluation.registrations) > 5


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(LabConfigError) as err:
        parse_config({"mode": "overlay", "workers": 0, "nodeImage": "x", "ciliumVersion": "latest"}, "lab")
    assert {i.key for i in err.value.issues} == {"workers", "nodeImage", "ciliumVersion"}


def test_defaults_follow_the_mode() -> None:
    overlay = parse_config({"mode": "overlay"}, "overlay")
    static = parse_config({"mode": "static"}, "static")
    assert (str(overlay.pod_cidr), overlay.pod_mask) == ("10.244.0.0/16", 24)
    assert (str(static.pod_cidr), static.pod_mask) == ("10.10.0.0/16", 27)
    assert overlay.underlay != static.underlay  # stacks coexist on one Docker host
    assert overlay.cluster_name == "overlay" and overlay.workers == 2
    assert overlay.node_image.ref == DEFAULT_NODE_IMAGE and overlay.cilium_version == DEFAULT_CILIUM_VERSION
    assert overlay.bgp is None and overlay.verify.enabled


@pytest.mark.parametrize(
    ("cidr", "ok"),
    [("10.96.0.0/11", False), ("10.96.0.0/12", True), ("10.96.0.0/28", True), ("10.96.0.0/29", False)],
)
def test_service_cidr_size_follows_kubeadm(cidr: str, ok: bool) -> None:
    """kubeadm: at most 20 host bits (MaximumBitsForServiceSubnet), at least 10 addresses."""
    raw = {"mode": "overlay", "serviceCidr": cidr}
    if ok:
        assert str(parse_config(raw, "lab").service_cidr) == cidr
        return
    with pytest.raises(LabConfigError) as err:
        parse_config(raw, "lab")
    assert [i.key for i in err.value.issues] == ["serviceCidr"]


def test_values_arrive_as_engine_text() -> None:
    """Pulumi passes numbers, booleans and objects as text; they parse the same as native values."""
    text = parse_config(
        {"mode": "bgp", "workers": "3", "bgp": '{"nodeAsn": [65001, 65002, 65003, 65004]}'}, "b"
    )
    assert text.workers == 3
    assert text.bgp is not None and text.bgp.node_asns == (65001, 65002, 65003, 65004)


def test_address_plan_is_derived_from_supernet_mask_and_node_order() -> None:
    config = parse_config({"mode": "static", "clusterName": "lab-static", "workers": 3}, "static")
    p = plan(config)
    assert [n.name for n in p.nodes] == [
        "lab-static-control-plane",
        "lab-static-worker",
        "lab-static-worker2",
        "lab-static-worker3",
    ]
    assert p.pod_cidrs == {
        "lab-static-control-plane": "10.10.0.0/27",
        "lab-static-worker": "10.10.0.32/27",
        "lab-static-worker2": "10.10.0.64/27",
        "lab-static-worker3": "10.10.0.96/27",
    }
    assert str(p.gateway) == "172.30.4.1"
    assert str(p.node_range) == "172.30.4.0/25"  # Docker hands node IPs out of the lower half
    assert p.network_name == "cdl-lab-static"


def test_bgp_routers_sit_outside_the_node_range() -> None:
    config = parse_config({"mode": "bgp", "bgp": {"routers": 2}}, "bgp")
    p = plan(config)
    assert [str(ip) for ip in p.router_ips] == ["172.30.5.254", "172.30.5.253"]
    assert all(ip not in p.node_range for ip in p.router_ips)
    assert [n.asn for n in p.nodes] == [65001, 65001, 65001]


def test_multi_pool_mode_pins_no_pod_cidrs() -> None:
    p = plan(parse_config({"mode": "native-auto"}, "native-auto"))
    assert p.pod_cidrs == {}


@pytest.mark.parametrize("workers", [1, 16, MAX_WORKERS])
def test_plan_scales_to_the_documented_maximum(workers: int) -> None:
    p = plan(parse_config({"mode": "static", "workers": workers}, "static"))
    cidrs = [ipaddress.ip_network(c) for c in p.pod_cidrs.values()]
    assert len(cidrs) == workers + 1
    assert all(not a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])


def test_valid_extra_static_routes_are_kept_typed() -> None:
    config = parse_config(
        {
            "mode": "static",
            "staticRoutes": [{"node": "static-worker", "dest": "192.168.50.0/24", "via": "172.30.4.4"}],
        },
        "static",
    )
    (route,) = config.static_routes
    assert (route.node, str(route.dest), str(route.via)) == ("static-worker", "192.168.50.0/24", "172.30.4.4")


@pytest.mark.parametrize("stack", [m.value for m in Mode])
def test_every_stack_file_is_valid_and_says_its_mode(stack: str) -> None:
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith(f"{PROJECT}:")}
    config = parse_config(raw, stack)
    assert config.mode.value == stack


def test_stack_file_typo_is_caught_through_the_engine_path() -> None:
    """A misspelt key in a stack file must fail, not be silently ignored."""
    config = with_project_keys(stack_config("overlay"), podCIDR="10.244.0.0/16")
    with pytest.raises(LabConfigError, match="podCIDR: unknown key; did you mean podCidr"):
        evaluate("overlay", config)
