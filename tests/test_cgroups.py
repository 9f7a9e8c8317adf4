"""Telling a cgroup v1 host from a v2 one (host/cgroups.py), the preflight's line about it, and the
kubelet patch the kind config carries on v1 — all on fake /sys/fs/cgroup roots."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from host import cgroups
from host.preflight import check_cgroups
from lab import kind_config
from lab.config import parse_config


def _v1_root(tmp_path: Path, hybrid: bool = True) -> Path:
    """Like this project's VMs: a tmpfs of v1 hierarchies, plus the controller-less cgroup2 `unified`."""
    for name in ("cpu", "memory", "pids", "systemd"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cgroup.procs").write_text("1\n")
    if hybrid:
        (tmp_path / "unified").mkdir()
        (tmp_path / "unified" / "cgroup.procs").write_text("1\n")
        (tmp_path / "unified" / "cgroup.controllers").write_text("")
    return tmp_path


def _v2_root(tmp_path: Path) -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.procs").write_text("1\n")
    (tmp_path / "init.scope").mkdir()
    (tmp_path / "init.scope" / "cgroup.procs").write_text("1\n")
    return tmp_path


@pytest.mark.parametrize("hybrid", [True, False])
def test_a_host_with_v1_hierarchies_is_v1(tmp_path: Path, hybrid: bool) -> None:
    assert cgroups.cgroup_version(_v1_root(tmp_path, hybrid)) == 1


def test_the_unified_hierarchy_is_v2(tmp_path: Path) -> None:
    assert cgroups.cgroup_version(_v2_root(tmp_path)) == 2


def test_a_hybrid_unified_mount_alone_is_not_v1(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.procs").write_text("1\n")
    assert cgroups.cgroup_version(tmp_path) is None


def test_an_unreadable_root_is_unknown(tmp_path: Path) -> None:
    assert cgroups.cgroup_version(tmp_path / "absent") is None
    assert cgroups.cgroup_version(tmp_path) is None  # empty: nothing mounted


def test_the_preflight_says_why_it_patches_the_kubelet_on_v1(tmp_path: Path) -> None:
    finding = check_cgroups(_v1_root(tmp_path))
    assert finding.ok
    assert "cgroup v1 host" in finding.what and "failCgroupV1: false" in finding.what
    assert "KEP-5573" in finding.what


def test_the_preflight_on_v2_and_on_an_unknown_host(tmp_path: Path) -> None:
    (tmp_path / "v2").mkdir()
    v2 = check_cgroups(_v2_root(tmp_path / "v2"))
    assert v2.ok and "cgroup v2 host" in v2.what and "failCgroupV1" not in v2.what
    unknown = check_cgroups(tmp_path / "absent")
    assert not unknown.ok and not unknown.required
    assert str(unknown).startswith("[warn] could not tell the cgroup version")


def test_the_kind_config_lets_the_kubelet_run_on_cgroup_v1_whatever_host_previews_it() -> None:
    config = parse_config({"mode": "overlay"}, "overlay")
    patches = [yaml.safe_load(p) for p in yaml.safe_load(kind_config.render(config))["kubeadmConfigPatches"]]
    assert {"kind": "KubeletConfiguration", "failCgroupV1": False} in patches
    assert any(p["kind"] == "ClusterConfiguration" for p in patches)


def test_a_smoke_cluster_is_the_labs_shape_with_the_v1_patch() -> None:
    doc = kind_config.smoke_cluster("cdl-smoke", "cdl/kind-node:v1.36.1-k", 2)
    assert doc["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "none"}
    assert [(n["role"], n["image"]) for n in doc["nodes"]] == [
        ("control-plane", "cdl/kind-node:v1.36.1-k"),
        ("worker", "cdl/kind-node:v1.36.1-k"),
        ("worker", "cdl/kind-node:v1.36.1-k"),
    ]
    patches = [yaml.safe_load(p) for p in doc["kubeadmConfigPatches"]]
    assert patches == [{"kind": "KubeletConfiguration", "failCgroupV1": False}]
