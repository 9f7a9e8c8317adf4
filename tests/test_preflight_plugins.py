"""Preflight for provider plugins: with downloads off, every plugin the venv's packages ask for is installed.

A fake `pulumi` on PATH prints the `pulumi plugin ls --json` under test; a fake venv holds the
packages' pulumi-plugin.json. Each condition is broken on its own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from host.preflight import ACQUISITION_OFF, check_plugins, main, own_builds, preflight, wanted_plugins
from supply.toolchain import load_recipe

FakePulumi = Callable[..., Path]  # (stdout, exit code=0) -> the file its argv is logged to
OFF = {ACQUISITION_OFF: "true"}
NOTHING_BUILDABLE: set[tuple[str, str]] = set()


def nothing_buildable() -> set[tuple[str, str]]:
    return NOTHING_BUILDABLE


def make_venv(root: Path, plugins: dict[str, dict[str, object]]) -> Path:
    """A venv whose site-packages holds one package per entry, with that pulumi-plugin.json."""
    site = root / "venv" / "lib" / "python3.11" / "site-packages"
    for package, plugin_json in plugins.items():
        (site / package).mkdir(parents=True)
        (site / package / "pulumi-plugin.json").write_text(json.dumps(plugin_json))
    return root / "venv"


def resource(name: str, version: str) -> dict[str, object]:
    return {"resource": True, "name": name, "version": version}


def listed(*plugins: tuple[str, str, str]) -> str:
    """`pulumi plugin ls --json` output for (name, kind, version) entries."""
    return json.dumps([{"name": n, "kind": k, "version": v, "size": 1} for n, k, v in plugins])


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    """Install a fake `pulumi` first on PATH; call it with (stdout, exit code); its argv is logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = bin_dir / "argv.log"

    def install(stdout: str, code: int = 0) -> Path:
        (bin_dir / "stdout").write_text(stdout)
        script = bin_dir / "pulumi"
        script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\ncat "{bin_dir / "stdout"}"\nexit {code}\n')
        script.chmod(0o755)
        return log

    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return install


def test_a_missing_plugin_is_a_failure_with_both_fixes(tmp_path: Path, fake_pulumi: FakePulumi) -> None:
    log = fake_pulumi(listed(("kubernetes", "resource", "4.25.0")))
    venv = make_venv(
        tmp_path, {"pulumi_kubernetes": resource("kubernetes", "4.25.0"), "pulumi_x": resource("x", "1.2.3")}
    )
    findings = check_plugins(OFF, venv, buildable=nothing_buildable)
    assert log.read_text().split("\n")[0] == "plugin ls --json"
    by_ok = {f.ok: f for f in findings}
    assert len(findings) == 2 and set(by_ok) == {True, False}
    assert str(by_ok[True]) == "[ok  ] resource plugin kubernetes 4.25.0 is installed"
    missing = by_ok[False]
    assert missing.required and str(missing).startswith("[FAIL] resource plugin x 1.2.3 ")
    assert "no resource plugin 'pulumi-resource-x' found" in missing.what
    assert f"unset {ACQUISITION_OFF}" in missing.fix
    assert "`pulumi plugin install resource x 1.2.3`" in missing.fix
    assert "`make toolchain` does not build x 1.2.3" in missing.fix


@pytest.mark.parametrize("value", [None, "", "false", "0", "no", "yes"])
def test_with_acquisition_on_there_is_no_finding_and_pulumi_is_not_asked(
    tmp_path: Path, fake_pulumi: FakePulumi, value: str | None
) -> None:
    log = fake_pulumi("[]")
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    env = {} if value is None else {ACQUISITION_OFF: value}
    assert check_plugins(env, venv, buildable=nothing_buildable) == []
    assert not log.exists()


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1"])
def test_acquisition_is_off_as_pulumi_reads_the_variable(
    tmp_path: Path, fake_pulumi: FakePulumi, value: str
) -> None:
    fake_pulumi("[]")
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    [finding] = check_plugins({ACQUISITION_OFF: value}, venv, buildable=nothing_buildable)
    assert not finding.ok and "docker 5.2.0" in finding.what


@pytest.mark.parametrize(
    ("installed", "why"),
    [
        (("docker", "resource", "5.1.0"), "another version"),
        (("docker", "language", "5.2.0"), "another kind"),
        (("dockerx", "resource", "5.2.0"), "another name"),
    ],
)
def test_only_the_same_name_kind_and_version_counts(
    tmp_path: Path, fake_pulumi: FakePulumi, installed: tuple[str, str, str], why: str
) -> None:
    fake_pulumi(listed(installed))
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    [finding] = check_plugins(OFF, venv, buildable=nothing_buildable)
    assert not finding.ok, why


def test_a_v_prefix_on_either_side_is_the_same_version(tmp_path: Path, fake_pulumi: FakePulumi) -> None:
    fake_pulumi(listed(("docker", "resource", "v5.2.0"), ("command", "resource", "1.2.1")))
    venv = make_venv(
        tmp_path,
        {"pulumi_docker": resource("docker", "5.2.0"), "pulumi_command": resource("command", "v1.2.1")},
    )
    findings = check_plugins(OFF, venv, buildable=nothing_buildable)
    assert [f.ok for f in findings] == [True, True], [str(f) for f in findings]


def test_only_resource_plugins_with_name_and_version_are_asked_for(tmp_path: Path) -> None:
    venv = make_venv(
        tmp_path,
        {
            "pulumi_kubernetes": resource("kubernetes", "4.25.0"),
            "pulumi_lang": {"resource": False, "name": "lang", "version": "1.0.0"},
            "pulumi_unset": {"name": "unset", "version": "1.0.0"},
            "pulumi_noversion": {"resource": True, "name": "noversion"},
            "pulumi_list": [1, 2],  # type: ignore[dict-item]
        },
    )
    (venv / "lib" / "python3.11" / "site-packages" / "pulumi_broken").mkdir()
    (venv / "lib" / "python3.11" / "site-packages" / "pulumi_broken" / "pulumi-plugin.json").write_text("{")
    assert wanted_plugins(venv) == {"kubernetes": "4.25.0"}


def test_a_plugin_the_proxy_refuses_says_so_plainly(tmp_path: Path, fake_pulumi: FakePulumi) -> None:
    fake_pulumi("[]")
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    [finding] = check_plugins(OFF, venv, buildable=nothing_buildable)
    assert (
        "the Go module proxy serves no version of github.com/pulumi/pulumi-docker/provider/v5" in finding.fix
    )
    assert "so `make toolchain` cannot build it" in finding.fix
    assert "`pulumi plugin install resource docker 5.2.0`" in finding.fix


def test_a_plugin_the_toolchain_builds_points_to_make_toolchain(
    tmp_path: Path, fake_pulumi: FakePulumi
) -> None:
    """The default `buildable` is the real recipe: its kubernetes provider, at its version."""
    kubernetes = next(b for b in load_recipe().binaries if b.plugin == "kubernetes")
    version = kubernetes.version.removeprefix("v")
    fake_pulumi("[]")
    venv = make_venv(tmp_path, {"pulumi_kubernetes": resource("kubernetes", version)})
    [finding] = check_plugins(OFF, venv)
    assert "offline, `make toolchain` builds it" in finding.fix
    assert "serves no version" not in finding.fix

    other = make_venv(tmp_path / "other", {"pulumi_kubernetes": resource("kubernetes", "0.0.1")})
    [finding] = check_plugins(OFF, other)
    assert "`make toolchain` does not build kubernetes 0.0.1" in finding.fix


@pytest.mark.parametrize(
    ("stdout", "code", "why"),
    [
        ("not json", 0, "printed no JSON list"),
        ('{"name": "docker"}', 0, "printed no JSON list"),
        ("[]", 1, "boom"),
    ],
)
def test_odd_answers_are_a_warning_not_a_traceback(
    tmp_path: Path, fake_pulumi: FakePulumi, stdout: str, code: int, why: str
) -> None:
    fake_pulumi(stdout, code)
    if code:  # a failing pulumi says why on stderr
        script = tmp_path / "bin" / "pulumi"
        script.write_text(script.read_text().replace("exit", "echo boom >&2\nexit"))
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    [finding] = check_plugins(OFF, venv, buildable=nothing_buildable)
    assert not finding.ok and not finding.required
    assert "could not list the installed Pulumi plugins to look for docker" in finding.what
    assert why in finding.what and "pulumi plugin ls --json" in finding.fix


def test_null_and_entries_that_are_not_plugins_list_nothing(tmp_path: Path, fake_pulumi: FakePulumi) -> None:
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    for stdout in ("null", '[1, "docker", {"name": "docker", "kind": "resource", "version": 5}]'):
        fake_pulumi(stdout)
        [finding] = check_plugins(OFF, venv, buildable=nothing_buildable)
        assert not finding.ok and finding.required, stdout


def test_pulumi_missing_is_a_warning_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    [finding] = check_plugins(OFF, venv, buildable=nothing_buildable)
    assert not finding.ok and not finding.required
    assert "`pulumi` could not run" in finding.what


def test_preflight_checks_plugins_only_when_given_the_environment(
    tmp_path: Path, fake_pulumi: FakePulumi
) -> None:
    fake_pulumi("[]")
    venv = make_venv(tmp_path, {"pulumi_docker": resource("docker", "5.2.0")})
    absent = preflight(which=lambda name: None, venv=venv)
    assert not any("resource plugin" in f.what for f in absent)
    present = preflight(which=lambda name: None, env=OFF, venv=venv)
    assert [f.what for f in present if "resource plugin docker 5.2.0" in f.what]


def test_main_checks_the_running_venv_under_the_real_environment(
    fake_pulumi: FakePulumi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make preflight` runs with the venv's python: the plugins of this project's own packages."""
    fake_pulumi("[]")
    monkeypatch.setattr("host.preflight.shutil.which", lambda name: None)
    wanted = wanted_plugins(Path(sys.prefix))
    assert "kubernetes" in wanted, "the tests run in the project's venv"
    monkeypatch.setenv(ACQUISITION_OFF, "true")
    assert main([]) == 1
    out = capsys.readouterr().out
    for name, version in wanted.items():
        assert f"[FAIL] resource plugin {name} {version} " in out
    monkeypatch.delenv(ACQUISITION_OFF)
    assert main([]) == 1
    assert "resource plugin" not in capsys.readouterr().out


def test_the_projects_own_plugins_are_named_as_such_only_in_a_toolchain_home(
    tmp_path: Path, fake_pulumi: FakePulumi
) -> None:
    """With the toolchain's PULUMI_HOME, `command` and `docker` say they are the project's builds;
    with any other home (a user's own ~/.pulumi) the same plugins are Pulumi's and nothing is said."""
    fake_pulumi(
        listed(
            ("command", "resource", "1.2.1"),
            ("docker", "resource", "5.2.0"),
            ("kubernetes", "resource", "4.25.0"),
        )
    )
    venv = make_venv(
        tmp_path,
        {
            "pulumi_command": resource("command", "1.2.1"),
            "pulumi_docker": resource("docker", "5.2.0"),
            "pulumi_kubernetes": resource("kubernetes", "4.25.0"),
        },
    )
    cache = tmp_path / "cache"
    toolchain_home = {
        **OFF,
        "XDG_CACHE_HOME": str(cache),
        "PULUMI_HOME": str(cache / "cilium-datapath-lab" / "toolchain" / "k" / "pulumi-home"),
    }
    said = {
        f.what.split()[2]: f.what for f in check_plugins(toolchain_home, venv, buildable=nothing_buildable)
    }
    assert (
        "the project's own command plugin" in said["command"]
        and "not Pulumi's official binary" in said["command"]
    )
    assert "kreuzwerker's Terraform Docker provider" in said["docker"]
    assert said["kubernetes"] == "resource plugin kubernetes 4.25.0 is installed"
    users_home = {**OFF, "XDG_CACHE_HOME": str(cache), "PULUMI_HOME": str(tmp_path / ".pulumi")}
    assert own_builds(users_home) == {} and own_builds({**OFF, "XDG_CACHE_HOME": str(cache)}) == {}
    plain = {f.what for f in check_plugins(users_home, venv, buildable=nothing_buildable)}
    assert plain == {
        f"resource plugin {n} {v} is installed"
        for n, v in (("command", "1.2.1"), ("docker", "5.2.0"), ("kubernetes", "4.25.0"))
    }
