"""lab/config.py cases a mutation run (`make mutation`) found no test for.

Most are the words of a rejection: a user reads them to fix a stack file, so each rule's message
is pinned whole here (tests/test_config.py checks that each names its key), and so are the
bounds and the string forms Pulumi hands a program (`"false"`, a list as JSON text).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from lab.config import LabConfigError, VerifyConfig, parse_config, underlay_capacity

FIX = "Fix the stack file (stacks/Pulumi.<stack>.yaml) or run `pulumi config set <key> <value>`."


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(LabConfigError) as err:
        parse_config(raw, "s")
    return [str(issue) for issue in err.value.issues]


def only_problem(raw: dict[str, Any]) -> str:
    (issue,) = problems(raw)
    return issue.removeprefix("cilium-datapath-lab:")


# --- the error as a whole ------------------------------------------------------------------------


def test_the_error_counts_its_problems_and_lists_one_per_line() -> None:
    with pytest.raises(LabConfigError) as one:
        parse_config({"mode": "overlay", "workers": 0}, "s")
    assert str(one.value) == (
        "invalid stack configuration (1 problem):\n"
        "  - cilium-datapath-lab:workers: 0 workers is outside 1-64: cross-node checks need at least one "
        "worker besides the control plane, and 64 is the largest lab this project supports\n" + FIX
    )
    with pytest.raises(LabConfigError) as two:
        parse_config({"mode": "overlay", "workers": 0, "verify": {"rerun": "a b"}}, "s")
    assert str(two.value).startswith(
        "invalid stack configuration (2 problems):\n  - cilium-datapath-lab:workers: "
    )
    assert str(two.value).splitlines()[2].startswith("  - cilium-datapath-lab:verify.rerun: 'a b' must be")


# --- value forms -----------------------------------------------------------------------------


def test_a_whole_number_is_asked_for_by_what_it_counts() -> None:
    assert only_problem({"mode": "overlay", "workers": "three"}) == (
        "workers: expected a whole number of worker nodes, 1-64, got 'three'"
    )
    assert only_problem({"mode": "overlay", "workers": True}) == (
        "workers: expected a whole number of worker nodes, 1-64, got True"
    )


@pytest.mark.parametrize(("text", "enabled"), [("false", False), ("FALSE", False), (" True ", True)])
def test_a_flag_given_as_text_is_read_as_true_or_false(text: str, enabled: bool) -> None:
    """`pulumi config set --path verify.enabled false` reaches the program as the text 'false'."""
    config = parse_config({"mode": "overlay", "verify": {"enabled": text}}, "s")
    assert config.verify.enabled is enabled


def test_a_cidr_that_is_not_one_says_so_with_a_fix_only_when_there_is_one() -> None:
    assert only_problem({"mode": "overlay", "podCidr": 10}) == (
        "podCidr: expected an IPv4 CIDR such as 10.10.0.0/16, got 10"
    )
    assert only_problem({"mode": "overlay", "podCidr": "10.10.0.1/16"}) == (
        "podCidr: '10.10.0.1/16' is not a valid IPv4 CIDR such as 10.10.0.0/16 (did you mean "
        "10.10.0.0/16?): 10.10.0.1/16 has host bits set"
    )
    assert only_problem({"mode": "overlay", "podCidr": "banana"}) == (
        "podCidr: 'banana' is not a valid IPv4 CIDR such as 10.10.0.0/16: 'banana' does not appear "
        "to be an IPv4 or IPv6 network"
    )


def test_an_ip_that_is_not_ipv4_says_why() -> None:
    route = {"node": "s-worker", "dest": "192.168.50.0/24"}
    assert only_problem({"mode": "static", "staticRoutes": [route | {"via": "x"}]}) == (
        "staticRoutes[0].via: 'x' is not an IPv4 address such as 172.30.4.3"
    )
    assert only_problem({"mode": "static", "staticRoutes": [route | {"via": "fd00::1"}]}) == (
        "staticRoutes[0].via: 'fd00::1' is IPv6; this lab is IPv4-only"
    )


# --- AS numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("asn", [1, 4294967294])
def test_the_first_and_last_usable_as_numbers_are_accepted(asn: int) -> None:
    config = parse_config({"mode": "bgp", "bgp": {"routerAsn": asn}}, "s")
    assert config.bgp is not None and config.bgp.router_asn == asn


@pytest.mark.parametrize("asn", [0, 4294967295, 23456])
def test_an_unusable_as_number_is_refused(asn: int) -> None:
    assert only_problem({"mode": "bgp", "bgp": {"routerAsn": asn}}) == (
        f"bgp.routerAsn: {asn} is not a usable AS number: use 1-4294967294 except 23456 (AS_TRANS), e.g. 65001"
    )


def test_an_as_number_that_is_not_a_number_names_the_range() -> None:
    assert only_problem({"mode": "bgp", "bgp": {"routerAsn": "x"}}) == (
        "bgp.routerAsn: expected an AS number (1-4294967294), got 'x'"
    )


def test_node_asns_arrive_as_json_text_from_pulumi() -> None:
    config = parse_config({"mode": "bgp", "bgp": {"nodeAsn": "[65001, 65002, 65003]"}}, "s")
    assert config.bgp is not None and config.bgp.node_asns == (65001, 65002, 65003)
    assert only_problem({"mode": "bgp", "bgp": {"nodeAsn": "[65001,"}}) == (
        "bgp.nodeAsn: expected an AS number or a list of one per node, got text that is not "
        "structured YAML/JSON (Expecting value)"
    )


# --- unknown keys, overlaps, capacity ----------------------------------------------------------


def test_an_unknown_key_names_the_known_ones_and_a_close_match_if_any() -> None:
    assert only_problem({"mode": "overlay", "verify": {"enable": False}}) == (
        "verify.enable: unknown key; did you mean verify.enabled? known keys: verify.enabled, verify.rerun"
    )
    assert only_problem({"mode": "overlay", "verify": {"zzz": 1}}) == (
        "verify.zzz: unknown key; known keys: verify.enabled, verify.rerun"
    )


def test_an_overlap_says_how_to_fix_the_first_range() -> None:
    assert problems({"mode": "overlay", "underlaySubnet": "10.96.0.0/24"}) == [
        "cilium-datapath-lab:underlaySubnet: 10.96.0.0/24 overlaps cilium-datapath-lab:serviceCidr "
        "(10.96.0.0/16); give the lab's Docker network its own range, e.g. 172.30.9.0/24"
    ]
    assert problems({"mode": "overlay", "podCidr": "10.96.0.0/16"}) == [
        "cilium-datapath-lab:podCidr: 10.96.0.0/16 overlaps cilium-datapath-lab:serviceCidr "
        "(10.96.0.0/16); the pod supernet must be disjoint from the node network, Services and VIPs"
    ]


@pytest.mark.parametrize(
    ("cidr", "room"),
    [
        ("172.30.0.0/16", (32766, 32767)),
        ("172.30.4.0/24", (126, 127)),
        ("10.0.0.0/30", (0, 1)),
        ("10.0.0.0/31", (0, 0)),
        ("10.0.0.1/32", (0, 0)),
    ],
)
def test_underlay_capacity_is_whole_nodes_and_routers_never_negative(
    cidr: str, room: tuple[int, int]
) -> None:
    got = underlay_capacity(ipaddress.IPv4Network(cidr))
    assert got == room and all(type(n) is int for n in got)


# --- autoDirectNodeRoutes against the mode ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "message"),
    [
        (
            "geneve",
            True,
            "true is invalid with mode geneve: the Cilium agent refuses to start with autoDirectNodeRoutes "
            "in tunnel routing; remove the key, or use mode native-auto for direct node routes",
        ),
        (
            "native-auto",
            False,
            "native-auto is defined by autoDirectNodeRoutes: true; remove the key, or use mode static",
        ),
        (
            "static",
            True,
            "true conflicts with mode static, whose routes come from the lab's static route sets; remove "
            "the key, or use mode native-auto for Cilium-installed node routes",
        ),
        (
            "bgp",
            "true",
            "true conflicts with mode bgp, whose routes come from BGP and FRR; remove the key, or use mode "
            "native-auto for Cilium-installed node routes",
        ),
    ],
)
def test_auto_direct_node_routes_against_the_mode_says_why_and_what_instead(
    mode: str, value: Any, message: str
) -> None:
    assert only_problem({"mode": mode, "autoDirectNodeRoutes": value}) == f"autoDirectNodeRoutes: {message}"


# --- the rest of the rules, each message whole -------------------------------------------------

STATIC_ROUTE = {"node": "s-worker", "dest": "192.168.50.0/24", "via": "172.30.4.3"}


@pytest.mark.parametrize(
    ("raw", "issues"),
    [
        (
            {"mode": "overlay", "clusterName": "Lab_1"},
            [
                "clusterName: 'Lab_1' is not a DNS-1123 label of at most 49 characters (lowercase letters, "
                "digits and '-', starting and ending with a letter or digit), e.g. lab-bgp"
            ],
        ),
        (
            {"mode": "overlay", "underlaySubnet": "banana"},
            [
                "underlaySubnet: 'banana' is not a valid IPv4 CIDR such as 172.30.1.0/24: 'banana' does not "
                "appear to be an IPv4 or IPv6 network"
            ],
        ),
        (
            {"mode": "overlay", "underlaySubnet": "172.30.0.0/15"},
            ["underlaySubnet: 172.30.0.0/15 must be between /16 and /28, e.g. 172.30.1.0/24"],
        ),
        (
            {"mode": "overlay", "underlaySubnet": "172.30.1.0/29"},
            ["underlaySubnet: 172.30.1.0/29 must be between /16 and /28, e.g. 172.30.1.0/24"],
        ),
        (
            {"mode": "overlay", "podCidr": "8.8.0.0/16"},
            ["podCidr: 8.8.0.0/16 is not a private range; use e.g. 10.10.0.0/16"],
        ),
        (
            {"mode": "overlay", "serviceCidr": "banana"},
            [
                "serviceCidr: 'banana' is not a valid IPv4 CIDR such as 10.96.0.0/16: 'banana' does not "
                "appear to be an IPv4 or IPv6 network"
            ],
        ),
        (
            {"mode": "bgp", "bgp": "[1]"},
            ["bgp: expected a mapping with routerAsn, nodeAsn, routers, maximumPaths, vipCidr, got [1]"],
        ),
        (
            {"mode": "bgp", "bgp": {"routers": "x", "maximumPaths": "y", "vipCidr": "z"}},
            [
                "bgp.routers: expected a router count 1-4, got 'x'",
                "bgp.maximumPaths: expected a path count 1-64, got 'y'",
                "bgp.vipCidr: 'z' is not a valid IPv4 CIDR such as 10.99.0.0/28: 'z' does not appear to be an "
                "IPv4 or IPv6 network",
            ],
        ),
        (
            # An unreadable underlay: the router room is not computed from it (no crash, one issue).
            {"mode": "bgp", "underlaySubnet": "banana", "bgp": {"routers": 2}},
            [
                "underlaySubnet: 'banana' is not a valid IPv4 CIDR such as 172.30.1.0/24: 'banana' does not "
                "appear to be an IPv4 or IPv6 network"
            ],
        ),
        ({"mode": "overlay", "verify": "[1]"}, ["verify: expected a mapping with enabled, rerun, got [1]"]),
        (
            {"mode": "static", "staticRoutes": "[1,"},
            [
                "staticRoutes: expected a list of {node, dest, via}, got text that is not structured "
                "YAML/JSON (Expecting value)"
            ],
        ),
        (
            {"mode": "static", "staticRoutes": {"a": 1}},
            ["staticRoutes: expected a list of {node, dest, via}, got {'a': 1}"],
        ),
        (
            # A bad entry does not stop the next from being read.
            {"mode": "static", "staticRoutes": [5, STATIC_ROUTE | {"via": "x"}]},
            [
                "staticRoutes[0]: expected {node, dest, via}, got 5",
                "staticRoutes[1].via: 'x' is not an IPv4 address such as 172.30.4.3",
            ],
        ),
        (
            {"mode": "static", "staticRoutes": [{"dest": "192.168.50.0/24", "via": "172.30.4.3"}]},
            [
                "staticRoutes[0].node: '' is not a node of this lab; nodes are s-control-plane, s-worker, s-worker2"
            ],
        ),
        (
            {"mode": "static", "staticRoutes": [STATIC_ROUTE | {"gw": 1}]},
            [
                "staticRoutes[0].gw: unknown key; known keys: staticRoutes[0].node, staticRoutes[0].dest, "
                "staticRoutes[0].via"
            ],
        ),
        (
            # No node names (workers is invalid): the route is still read, against no node's block.
            {"mode": "static", "workers": 0, "staticRoutes": [STATIC_ROUTE]},
            [
                "workers: 0 workers is outside 1-64: cross-node checks need at least one worker besides the "
                "control plane, and 64 is the largest lab this project supports"
            ],
        ),
        (
            # A supernet of exactly one block still has that block as the first node's own.
            {
                "mode": "static",
                "podCidr": "10.10.0.0/27",
                "podCidrMaskSize": 27,
                "staticRoutes": [{"node": "s-control-plane", "dest": "10.10.0.0/28", "via": "172.30.4.3"}],
            },
            [
                "podCidr: 10.10.0.0/27 holds only 1 /27 block(s) but the lab has 3 nodes; use a supernet of "
                "/25 or larger, or raise cilium-datapath-lab:podCidrMaskSize",
                "staticRoutes[0].dest: 10.10.0.0/28 overlaps s-control-plane's own pod CIDR 10.10.0.0/27; "
                "routing it away would cut off local pods",
            ],
        ),
        (
            {"mode": "overlay", "podCidrMaskSize": "x"},
            ["podCidrMaskSize: expected a prefix length 16-28, got 'x'"],
        ),
        (
            {"mode": "overlay", "podCidrMaskSize": 29},
            ["podCidrMaskSize: 29 must be between the supernet's /16 (or 16) and 28, e.g. 24 or 27"],
        ),
        (
            {"mode": "overlay", "podCidr": "10.8.0.0/14", "podCidrMaskSize": 15},
            ["podCidrMaskSize: 15 must be between the supernet's /14 (or 16) and 28, e.g. 24 or 27"],
        ),
        (
            # Unreadable: one issue, not also "conflicts with mode overlay".
            {"mode": "overlay", "autoDirectNodeRoutes": "maybe"},
            ["autoDirectNodeRoutes: expected true or false, got 'maybe'"],
        ),
        (
            {"mode": "bgp", "bgp": {"vipCidr": "10.96.0.0/28"}},
            [
                "serviceCidr: 10.96.0.0/16 overlaps cilium-datapath-lab:bgp.vipCidr (10.96.0.0/28); keep kind's "
                "10.96.0.0/16 or another disjoint range"
            ],
        ),
        (
            {"mode": "zzz", "underlaySubnet": "172.30.1.0/24", "podCidr": "10.10.0.0/16"},
            ["mode: unknown mode 'zzz'; valid modes: overlay, geneve, native-auto, static, bgp"],
        ),
    ],
)
def test_each_rule_says_what_is_wrong_and_what_to_use(raw: dict[str, Any], issues: list[str]) -> None:
    assert problems(raw) == [f"cilium-datapath-lab:{issue}" for issue in issues]


def test_every_bad_static_route_is_reported_not_only_the_first() -> None:
    """One entry per rule, each followed by another bad one: a rule that stopped reading the list
    would hide the rest, and the user would fix the file one error per `pulumi up`."""
    routes = [
        STATIC_ROUTE | {"node": "nope"},
        STATIC_ROUTE | {"dest": "x"},
        STATIC_ROUTE | {"via": "10.0.0.1"},
        STATIC_ROUTE | {"dest": "10.10.0.32/28"},
        STATIC_ROUTE | {"dest": "10.10.0.0/28"},
        STATIC_ROUTE,
        STATIC_ROUTE,
        STATIC_ROUTE | {"via": "y"},
    ]
    assert problems({"mode": "static", "staticRoutes": routes}) == [
        f"cilium-datapath-lab:{issue}"
        for issue in [
            "staticRoutes[0].node: 'nope' is not a node of this lab; nodes are s-control-plane, s-worker, "
            "s-worker2",
            "staticRoutes[1].dest: 'x' is not a valid IPv4 CIDR such as 192.168.50.0/24: 'x' does not appear "
            "to be an IPv4 or IPv6 network",
            "staticRoutes[2].via: next hop 10.0.0.1 is not a host of the underlay 172.30.4.0/24; a node can "
            "only route via a neighbour",
            "staticRoutes[3].dest: 10.10.0.32/28 overlaps s-worker's own pod CIDR 10.10.0.32/27; routing it "
            "away would cut off local pods",
            "staticRoutes[4].dest: 10.10.0.0/28 is inside another node's pod CIDR 10.10.0.0/27, which the lab "
            "already routes on every node",
            "staticRoutes[6].dest: a route to 192.168.50.0/24 on s-worker is already declared",
            "staticRoutes[7].via: 'y' is not an IPv4 address such as 172.30.4.3",
        ]
    ]


def test_a_node_image_without_a_digest_is_shown_the_pinned_default() -> None:
    assert only_problem({"mode": "overlay", "nodeImage": "kindest/node:v1"}) == (
        "nodeImage: 'kindest/node:v1' is not pinned by digest; use repository:tag@sha256:<64 hex digits>, "
        "e.g. kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5; "
        "for an image built on this machine, its image ID (sha256:<64 hex digits>) or local:<repository>:<tag>"
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"mode": "overlay", "ciliumVersion": "1.18.0"},  # the oldest with the cilium.io/v2 BGP APIs
        {"mode": "overlay", "underlaySubnet": "172.30.0.0/16"},
        {"mode": "overlay", "underlaySubnet": "172.30.1.0/28"},
        {"mode": "bgp", "bgp": {"routers": 4, "maximumPaths": 64}},
        {"mode": "overlay", "autoDirectNodeRoutes": False},  # what the mode is anyway
        {"mode": "native-auto", "podCidr": "10.8.0.0/14", "podCidrMaskSize": 16},
        {"mode": "overlay", "podCidrMaskSize": 28},
        {
            "mode": "overlay",
            "workers": 3,
            "podCidr": "10.10.0.0/25",
            "podCidrMaskSize": 27,
        },  # 4 blocks, 4 nodes
        {"mode": "overlay", "workers": 5, "underlaySubnet": "172.30.1.0/28"},  # room for 6 nodes, 6 nodes
        {"mode": "overlay", "clusterName": "a" * 49},
    ],
)
def test_the_bounds_themselves_are_accepted(raw: dict[str, Any]) -> None:
    assert parse_config(raw, "s").stack == "s"


def test_verify_keeps_what_was_set_and_defaults_to_on_with_no_rerun() -> None:
    assert parse_config({"mode": "overlay"}, "s").verify == VerifyConfig(enabled=True, rerun="")
    assert parse_config({"mode": "overlay", "verify": {"rerun": "r1"}}, "s").verify == VerifyConfig(
        True, "r1"
    )
    given = parse_config({"mode": "overlay", "verify": {"enabled": False, "rerun": "2026-11-26"}}, "s")
    assert given.verify == VerifyConfig(enabled=False, rerun="2026-11-26")
