"""The Cilium chart packed from the Go module (supply/chart.py): helm's layout, the same bytes every
time, refusals that name what is wrong, and the real chart of the pinned release when built."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from lab.config import DEFAULT_CILIUM_VERSION
from supply import chart
from supply.chart import ChartError, chart_key, chart_version, ignore_rules, ignored, pack


def _chart(root: Path, version: str = "1.20.2") -> Path:
    d = root / "cilium"
    (d / "templates").mkdir(parents=True)
    (d / "Chart.yaml").write_text(f"apiVersion: v2\nname: cilium\nversion: {version}\nappVersion: 9.9.9\n")
    (d / "values.yaml").write_text("routingMode: tunnel\n")
    (d / "values.schema.json").write_text("{}\n")
    (d / "templates" / "agent.yaml").write_text("kind: DaemonSet\n")
    (d / "values.yaml.tmpl").write_text("routingMode: {{ .Mode }}\n")
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref\n")
    (d / ".helmignore").write_text("# comment\n.git/\n*.tmpl\ntemplates/*.bak\n")
    (d / "templates" / "old.bak").write_text("x\n")
    return d


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_the_pinned_chart_is_the_labs_default_version() -> None:
    assert chart.CILIUM_VERSION == DEFAULT_CILIUM_VERSION


def test_pack_lays_the_chart_out_as_helm_does_and_honours_helmignore(tmp_path: Path) -> None:
    names = _names(pack(_chart(tmp_path), "1.20.2"))
    assert names == [
        "cilium/.helmignore",
        "cilium/Chart.yaml",
        "cilium/templates",
        "cilium/templates/agent.yaml",
        "cilium/values.schema.json",
        "cilium/values.yaml",
    ]


def test_pack_gives_the_same_bytes_every_time(tmp_path: Path) -> None:
    d = _chart(tmp_path)
    first = pack(d, "1.20.2")
    os.utime(d / "values.yaml", (1, 1))
    assert pack(d, "1.20.2") == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert {(m.mtime, m.uid, m.gid, m.uname) for m in tar.getmembers()} == {(0, 0, 0, "")}
        assert {m.mode for m in tar.getmembers() if m.isfile()} == {0o644}


def test_pack_refuses_a_chart_of_another_version(tmp_path: Path) -> None:
    with pytest.raises(ChartError, match=r"version '1\.19\.0', not 1\.20\.2"):
        pack(_chart(tmp_path, "1.19.0"), "1.20.2")


@pytest.mark.parametrize("missing", ["Chart.yaml", "values.yaml", "values.schema.json"])
def test_pack_refuses_an_incomplete_chart(tmp_path: Path, missing: str) -> None:
    d = _chart(tmp_path)
    (d / missing).unlink()
    with pytest.raises(ChartError, match=missing.replace(".", r"\.")):
        pack(d, "1.20.2")


def test_pack_refuses_symlinks_and_negated_ignore_rules(tmp_path: Path) -> None:
    d = _chart(tmp_path)
    (d / "templates" / "link.yaml").symlink_to(d / "values.yaml")
    with pytest.raises(ChartError, match="symlink"):
        pack(d, "1.20.2")
    with pytest.raises(ChartError, match="negates"):
        ignore_rules("*.tmpl\n!keep.tmpl\n")


def test_chart_version_is_the_top_level_version_only() -> None:
    assert chart_version("appVersion: 9.9.9\nversion: 1.20.2\n") == "1.20.2"
    assert chart_version("version: '1.20.2'\n") == "1.20.2"
    assert chart_version("appVersion: 1.20.2\ndependencies:\n  - version: 1.0.0\n") is None


@pytest.mark.parametrize(
    ("path", "is_dir", "rules", "out"),
    [
        ("x.tmpl", False, ["*.tmpl"], True),
        ("templates/x.tmpl", False, ["*.tmpl"], True),
        ("x.yaml", False, ["*.tmpl"], False),
        (".git", True, [".git/"], True),
        (".git", False, [".git/"], False),
        ("templates/a.bak", False, ["templates/*.bak"], True),
        ("files/a.bak", False, ["templates/*.bak"], False),
    ],
)
def test_ignore_rules(path: str, is_dir: bool, rules: list[str], out: bool) -> None:
    assert ignored(path, is_dir, rules) is out


def test_the_key_follows_the_version_and_refuses_a_range() -> None:
    assert chart_key("1.20.2").startswith("1.20.2-") and chart_key("1.20.2") == chart_key("1.20.2")
    assert chart_key("1.20.1") != chart_key("1.20.2")
    with pytest.raises(ChartError, match="exact release"):
        chart_key("1.20")


def test_the_built_chart_is_cilium_at_the_pinned_release() -> None:
    """Skips until `make chart` ran (it downloads github.com/cilium/cilium from the Go proxy)."""
    path = chart.current_path(os.environ)
    if path is None:
        pytest.skip("the Cilium chart is not built: run `make chart`")
    stamp = json.loads((path.parent / "stamp.json").read_text())
    data = path.read_bytes()
    assert stamp["sha256"] == hashlib.sha256(data).hexdigest()
    assert stamp["module"] == f"github.com/cilium/cilium@v{DEFAULT_CILIUM_VERSION}"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        chart_yaml = tar.extractfile("cilium/Chart.yaml")
        assert chart_yaml is not None
        assert chart_version(chart_yaml.read().decode()) == DEFAULT_CILIUM_VERSION
        assert "cilium/templates/cilium-agent/daemonset.yaml" in tar.getnames()


def test_a_go_that_prints_no_module_directory_is_a_chart_error(tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\necho 'not json'\n")
    go.chmod(0o755)
    with pytest.raises(ChartError, match="printed no module directory"):
        chart.module_dir(str(go), "1.20.2", dict(os.environ))
