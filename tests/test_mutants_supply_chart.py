"""supply/chart.py cases a mutation run (`make mutation`) found no test for: the build and the CLI
(with a stand-in for `go mod download`), the cache's place, and .helmignore's finer points."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from test_chart import _chart

from supply import chart
from supply.chart import ChartError, charts_root, ignore_rules, ignored, pack


def _buffered() -> dict[str, str]:
    """This process's environment (read when called: a mutant under test is named in it), with
    stdout buffered as on a pipe by default: a PYTHONUNBUFFERED in the shell would hide a missing flush."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


ROOT = Path(__file__).resolve().parent.parent


def test_the_charts_live_in_the_users_cache(tmp_path: Path) -> None:
    tail = Path("cilium-datapath-lab") / "charts"
    assert charts_root({"XDG_CACHE_HOME": str(tmp_path), "HOME": "/h"}) == tmp_path / tail
    assert charts_root({"XDG_CACHE_HOME": "", "HOME": "/home/u"}) == Path("/home/u/.cache") / tail
    assert charts_root({}) == Path.home() / ".cache" / tail


def test_the_key_is_the_version_and_twelve_hex_digits() -> None:
    assert re.fullmatch(r"1\.20\.2-[0-9a-f]{12}", chart.chart_key("1.20.2"))


def test_blank_lines_and_comments_indented_or_not_are_no_rules() -> None:
    text = "\n# top\n   # indented comment\n*.tmpl\n  \n  docs/  \n"
    assert ignore_rules(text) == ["*.tmpl", "docs/"]


@pytest.mark.parametrize(
    ("path", "is_dir", "rules", "out"),
    [
        ("a/b/ci", True, ["ci/"], True),  # a folder rule matches the last name, however deep
        ("a/b/values.yaml.tmpl", False, ["values.yaml.tmpl"], True),
        ("templates/old.bak", False, ["/templates/*.bak"], True),  # a leading slash is the chart's root
        ("XDocs/a.md", False, ["XDocs/*.md"], True),
        ("Docs/a.md", False, ["XDocs/*.md"], False),
    ],
)
def test_ignore_rules_finer_points(path: str, is_dir: bool, rules: list[str], out: bool) -> None:
    assert ignored(path, is_dir, rules) is out


def test_a_chart_without_helmignore_is_packed_whole(tmp_path: Path) -> None:
    d = _chart(tmp_path)
    (d / ".helmignore").unlink()
    with tarfile.open(fileobj=io.BytesIO(pack(d, "1.20.2"))) as tar:
        names = tar.getnames()
    assert "cilium/values.yaml.tmpl" in names and "cilium/.git/HEAD" in names


def test_the_tarball_is_helms_layout_to_the_byte(tmp_path: Path) -> None:
    """Folders 0755 and files 0644, owned by 0:0 with no names, and a gzip header without a time."""
    data = pack(_chart(tmp_path), "1.20.2")
    assert data[:3] == b"\x1f\x8b\x08" and data[4:8] == b"\0\0\0\0"  # MTIME 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert {(m.uname, m.gname, m.uid, m.gid) for m in members} == {("", "", 0, 0)}
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}


# --- the module download, with a stand-in go ---------------------------------------------------------


def _fake_go(tmp_path: Path, prints: str) -> tuple[str, Path]:
    """A `go` that logs its argv and working directory (and that directory's entries), then prints."""
    log = tmp_path / "go.log"
    go = tmp_path / "go"
    go.write_text(f'#!/bin/sh\n{{ echo "$*"; pwd; ls -A; }} > "{log}"\ncat <<\'EOF\'\n{prints}\nEOF\n')
    go.chmod(0o755)
    return str(go), log


def test_the_module_is_downloaded_in_an_empty_folder_and_its_dir_taken(tmp_path: Path) -> None:
    go, log = _fake_go(
        tmp_path, json.dumps({"Path": chart.MODULE, "Dir": "/mod/github.com/cilium/cilium@v1.20.2"})
    )
    assert chart.module_dir(go, "1.20.2", dict(os.environ)) == Path("/mod/github.com/cilium/cilium@v1.20.2")
    argv, cwd, *entries = log.read_text().splitlines()
    assert argv == "mod download -json github.com/cilium/cilium@v1.20.2"
    assert entries == [] and cwd != os.getcwd()  # outside any go.mod
    assert not Path(cwd).exists()  # and removed after


def test_a_download_without_a_dir_names_what_go_printed(tmp_path: Path) -> None:
    said = "x" * 300
    go, _ = _fake_go(tmp_path, said)
    with pytest.raises(ChartError) as refused:
        chart.module_dir(go, "1.20.2", dict(os.environ))
    assert str(refused.value) == (
        f"`go mod download` of github.com/cilium/cilium@v1.20.2 printed no module directory: {('x' * 200)!r}"
    )
    go, _ = _fake_go(tmp_path, json.dumps({"Path": chart.MODULE, "Error": "not found"}))
    with pytest.raises(ChartError, match="printed no module directory"):
        chart.module_dir(go, "1.20.2", dict(os.environ))


# --- build, current_path and the CLI ------------------------------------------------------------------


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Mapping[str, str]]]:
    """go_command and module_dir replaced: the Cilium module is a folder holding a chart of 1.20.2 at
    the chart path; every download asked for is logged. The cache is under tmp_path."""
    source = tmp_path / "module"
    chart_dir = _chart(tmp_path / "charts-src")
    (source / chart.CHART_PATH).parent.mkdir(parents=True)
    chart_dir.rename(source / chart.CHART_PATH)
    asked: list[tuple[str, str, Mapping[str, str]]] = []

    def module_dir(go: str, version: str, env: Mapping[str, str]) -> Path:
        asked.append((go, version, env))
        return source

    monkeypatch.setattr(chart, "go_command", lambda: "/opt/go/bin/go")
    monkeypatch.setattr(chart, "module_dir", module_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return asked


def test_a_build_packs_stamps_and_is_then_reused(
    tmp_path: Path, module: list[tuple[str, str, Mapping[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "GOFLAGS": "-mod=mod"}
    key = chart.chart_key("1.20.2")
    built = chart.build("1.20.2", env)
    assert built == tmp_path / "cache" / "cilium-datapath-lab" / "charts" / key / "cilium-1.20.2.tgz"
    data = built.read_bytes()
    assert data == pack(tmp_path / "module" / chart.CHART_PATH, "1.20.2")
    stamp = json.loads((built.parent / "stamp.json").read_text())
    assert stamp.pop("seconds") in range(0, 60)
    assert stamp == {
        "key": key,
        "module": "github.com/cilium/cilium@v1.20.2",
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert module == [("/opt/go/bin/go", "1.20.2", env)]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "[chart] taking the chart from github.com/cilium/cilium@v1.20.2 (the Go module proxy; about 100 MB the first time)"
    )
    assert re.fullmatch(rf"\[chart\] chart {key} built in \d+s: {re.escape(str(built))}", out[1])
    assert chart.build("1.20.2", env) == built and len(module) == 1  # reused, nothing downloaded
    assert capsys.readouterr().out == f"[chart] chart {key} is already built: {built}\n"
    assert chart.current_path(env) == built and chart.current_path(env, "1.20.2") == built


def test_a_build_without_an_environment_takes_the_processes(
    tmp_path: Path, module: list[tuple[str, str, Mapping[str, str]]]
) -> None:
    built = chart.build()
    assert built.parent.parent == tmp_path / "cache" / "cilium-datapath-lab" / "charts"
    assert module[0][2]["XDG_CACHE_HOME"] == str(tmp_path / "cache")
    assert chart.current_path(os.environ) == built
    assert chart.current_path({"XDG_CACHE_HOME": str(tmp_path / "elsewhere")}) is None


def test_the_cli_builds_then_prints_the_path(
    tmp_path: Path, module: list[tuple[str, str, Mapping[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert chart.main(["path"]) == 1
    assert capsys.readouterr() == ("", "the Cilium 1.20.2 chart is not built: run `make chart`\n")
    assert chart.main(["build"]) == 0
    assert module[0][1] == "1.20.2"
    capsys.readouterr()
    assert chart.main(["path"]) == 0
    assert capsys.readouterr() == (f"{chart.current_path(os.environ)}\n", "")
    assert chart.main(["--version", "1.20.1", "path"]) == 1
    assert capsys.readouterr().err == "the Cilium 1.20.1 chart is not built: run `make chart`\n"


def test_the_cli_builds_the_version_asked_for(
    tmp_path: Path, module: list[tuple[str, str, Mapping[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert chart.main(["--version", "1.19.0", "build"]) == 1  # the stand-in module holds 1.20.2
    assert capsys.readouterr().err == (
        f"[chart] error: {tmp_path}/module/{chart.CHART_PATH}/Chart.yaml is version '1.20.2', not 1.19.0\n"
    )
    assert module[0][1] == "1.19.0"


def test_the_cli_reports_a_bad_version_or_cache_as_an_error_not_a_traceback(
    tmp_path: Path,
    module: list[tuple[str, str, Mapping[str, str]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert chart.main(["--version", "1.20", "path"]) == 1
    assert capsys.readouterr() == ("", "[chart] error: Cilium version '1.20' is not an exact release X.Y.Z\n")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert chart.main(["build"]) == 1
    assert capsys.readouterr().err.startswith("[chart] error: [Errno 20] Not a directory")


def test_the_cli_wants_a_command_and_says_what_each_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        chart.main([])
    assert refused.value.code == 2
    with pytest.raises(SystemExit):
        chart.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert said.startswith("usage: python -m supply.chart [-h] [--version VERSION] {build,path} ...")
    assert (
        "The Cilium Helm chart, taken from the `github.com/cilium/cilium` Go module at the release tag."
        in said
    )
    assert "--version VERSION Cilium release X.Y.Z (default 1.20.2)" in said
    assert "build pack the chart of that release unless it is built" in said
    assert "path print the built chart's tarball (exit 1 if it is not built)" in said


def test_progress_lines_are_flushed_before_what_a_step_prints_next() -> None:
    """A build's own lines and its commands' output share make's log: each line is out before the
    next command writes (stdout to a pipe is block-buffered)."""
    code = "import os; from supply.chart import _say; _say('packing'); os.write(1, b'go: downloading\\n')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**_buffered(), "PYTHONPATH": str(Path(chart.__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == "[chart] packing\ngo: downloading\n"
