"""lab/cilium.py cases a mutation run (`make mutation`) found no test for.

Today no section of cilium/values-common.yaml is also set by a mode, so the nested branch of
the values merge never ran: a section both set must keep the keys of both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import cilium
from lab.config import parse_config
from lab.plan import plan


def test_a_section_common_values_and_the_mode_both_set_keeps_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = yaml.safe_load(cilium.COMMON_VALUES.read_text())
    # The mode sets ipam.mode and ipam.operator.autoCreateCiliumPodIPPools next to these.
    common["ipam"] = {"operator": {"clusterPoolIPv4MaskSize": 24}}
    common["k8s"] = {"serviceProxyName": "lab"}
    shared = tmp_path / "values-common.yaml"
    shared.write_text(yaml.safe_dump(common))
    monkeypatch.setattr(cilium, "COMMON_VALUES", shared)

    auto = parse_config({"mode": "native-auto"}, "native-auto")
    values = cilium.helm_values(auto, plan(auto))
    assert values["ipam"] == {
        "mode": "multi-pool",
        "operator": {
            "clusterPoolIPv4MaskSize": 24,
            "autoCreateCiliumPodIPPools": {"default": {"ipv4": {"cidrs": ["10.10.0.0/16"], "maskSize": 27}}},
        },
    }
    overlay = parse_config({"mode": "overlay"}, "overlay")
    assert cilium.helm_values(overlay, plan(overlay))["k8s"] == {
        "serviceProxyName": "lab",
        "requireIPv4PodCIDR": True,
    }


def test_the_merged_values_share_nothing_with_their_inputs() -> None:
    """Editing the merged values (a later transform of the release) never edits the inputs."""
    base = {"ipam": {"mode": "kubernetes"}, "bpf": {"masquerade": True}}
    extra = {"ipam": {"operator": {"x": 1}}, "pools": [{"cidrs": ["10.10.0.0/16"]}]}
    merged = cilium._deep_merge(base, extra)
    merged["bpf"]["masquerade"] = False
    merged["ipam"]["operator"]["x"] = 2
    merged["pools"][0]["cidrs"].append("10.20.0.0/16")
    assert base == {"ipam": {"mode": "kubernetes"}, "bpf": {"masquerade": True}}
    assert extra == {"ipam": {"operator": {"x": 1}}, "pools": [{"cidrs": ["10.10.0.0/16"]}]}
