"""Config rules a mutation audit found unguarded: typos under `verify:` and static routes that take
over another node's pod CIDR. Each is rejected naming its key, before any resource exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mockstack import Evaluation, evaluate

from lab.config import PROJECT, LabConfigError, parse_config


def issues(raw: dict[str, Any], stack: str = "lab") -> dict[str, str]:
    with pytest.raises(LabConfigError) as err:
        parse_config(raw, stack)
    return {i.key: i.message for i in err.value.issues}


# --- verify: -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "bad", "hint"),
    [
        ({"enable": False}, "verify.enable", "did you mean verify.enabled?"),
        ({"enabled": False, "Rerun": "2"}, "verify.Rerun", "did you mean verify.rerun?"),
        (
            {"enabled": True, "checks": ["bgp.ecmp"]},
            "verify.checks",
            "known keys: verify.enabled, verify.rerun",
        ),
    ],
)
def test_unknown_keys_under_verify_are_rejected(section: dict[str, Any], bad: str, hint: str) -> None:
    """`enable: false` would otherwise leave the checks on without a word."""
    found = issues({"mode": "overlay", "verify": section})
    assert list(found) == [bad]
    assert found[bad].startswith("unknown key; ") and hint in found[bad]


def test_a_verify_typo_registers_no_resource() -> None:
    evaluation = Evaluation(stack="lab")
    config = {f"{PROJECT}:mode": "overlay", f"{PROJECT}:verify": {"enable": False}}
    with pytest.raises(LabConfigError, match=re.escape(f"{PROJECT}:verify.enable:")):
        evaluate("lab", config, evaluation)
    assert evaluation.registrations == []


def test_the_known_verify_keys_are_accepted() -> None:
    config = parse_config({"mode": "overlay", "verify": {"enabled": False, "rerun": "2026-11-26"}}, "lab")
    assert (config.verify.enabled, config.verify.rerun) == (False, "2026-11-26")


# --- staticRoutes --------------------------------------------------------------------------------
# The static stack's nodes and pod CIDRs: static-control-plane 10.10.0.0/27, static-worker
# 10.10.0.32/27, static-worker2 10.10.0.64/27; node IPs 172.30.4.2-4.


def static(*routes: dict[str, str]) -> dict[str, Any]:
    return {"mode": "static", "staticRoutes": list(routes)}


@pytest.mark.parametrize(
    ("node", "dest", "owner"),
    [
        ("static-worker", "10.10.0.64/27", "10.10.0.64/27"),  # worker2's CIDR, exactly
        ("static-control-plane", "10.10.0.32/27", "10.10.0.32/27"),  # worker's
        ("static-worker", "10.10.0.64/28", "10.10.0.64/27"),  # half of worker2's: more specific wins
        ("static-worker", "10.10.0.77/32", "10.10.0.64/27"),  # one of worker2's pods
    ],
)
def test_a_route_into_another_nodes_pod_cidr_is_rejected(node: str, dest: str, owner: str) -> None:
    """The lab routes every node's pod CIDR itself; a declared route inside one would take over
    (part of) another node's pods."""
    found = issues(static({"node": node, "dest": dest, "via": "172.30.4.3"}), "static")
    assert list(found) == ["staticRoutes[0].dest"]
    assert "another node's pod CIDR" in found["staticRoutes[0].dest"]
    assert owner in found["staticRoutes[0].dest"]


def test_a_route_over_the_nodes_own_pod_cidr_is_rejected() -> None:
    found = issues(static({"node": "static-worker", "dest": "10.10.0.0/16", "via": "172.30.4.2"}), "static")
    assert (
        list(found) == ["staticRoutes[0].dest"]
        and "own pod CIDR 10.10.0.32/27" in found["staticRoutes[0].dest"]
    )


@pytest.mark.parametrize("dest", ["192.168.50.0/24", "10.10.1.0/24", "10.10.0.96/27"])
def test_routes_outside_every_nodes_pod_cidr_are_accepted(dest: str) -> None:
    """Outside every node's block (10.10.0.96/27 is the block a fourth node would get)."""
    config = parse_config(static({"node": "static-worker", "dest": dest, "via": "172.30.4.4"}), "static")
    assert [str(r.dest) for r in config.static_routes] == [dest]
