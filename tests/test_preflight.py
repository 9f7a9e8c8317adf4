"""Preflight messages: each problem is named with the command that fixes it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from lab.preflight import TOOLS, check_docker_daemon, check_tool, main, parse_version, preflight


def fake_runner(outputs: dict[str, tuple[int, str, str]]):  # type: ignore[no-untyped-def]
    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        code, out, err = outputs.get(" ".join(argv[:2]), (0, "", ""))
        return subprocess.CompletedProcess(list(argv), code, out, err)

    return run


HEALTHY = {
    "docker version": (0, "28.2.2\n", ""),
    "docker info": (0, "28.2.2\n", ""),
    "kind version": (0, "kind v0.32.0 go1.24.4 linux/amd64\n", ""),
    "pulumi version": (0, "v3.272.0\n", ""),
    "kubectl version": (0, "Client Version: v1.36.1\nKustomize Version: v5.7.1\n", ""),
}


def present(_: str) -> str:
    return "/usr/bin/x"


def test_parse_version() -> None:
    assert parse_version("kind v0.32.0 go1.24.4 linux/amd64") == (0, 32, 0)
    assert parse_version("v3.272.0") == (3, 272, 0)
    assert parse_version("no digits") is None


def test_healthy_host_passes() -> None:
    findings = preflight(fake_runner(HEALTHY), present)
    assert all(f.ok for f in findings), [str(f) for f in findings]
    assert len(findings) == len(TOOLS) + 1


def test_missing_tool_names_the_install_command() -> None:
    kind = next(t for t in TOOLS if t.name == "kind")
    finding = check_tool(kind, fake_runner(HEALTHY), lambda name: None)
    assert not finding.ok and finding.required
    assert "kind is not on PATH" in str(finding) and "sigs.k8s.io/kind@v0.32.0" in str(finding)


def test_old_tool_is_reported_with_versions() -> None:
    kind = next(t for t in TOOLS if t.name == "kind")
    finding = check_tool(
        kind, fake_runner({"kind version": (0, "kind v0.20.0 go1.20 linux/amd64", "")}), present
    )
    assert not finding.ok
    assert "kind 0.20.0 is older than 0.32.0" in str(finding) and "fix: upgrade it" in str(finding)


def test_missing_kubectl_only_warns() -> None:
    kubectl = next(t for t in TOOLS if t.name == "kubectl")
    finding = check_tool(kubectl, fake_runner(HEALTHY), lambda name: None)
    assert not finding.ok and not finding.required and str(finding).startswith("[warn]")


def test_unreachable_docker_daemon() -> None:
    down = {
        "docker info": (
            1,
            "",
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        )
    }
    finding = check_docker_daemon(fake_runner(down))
    assert not finding.ok
    assert "Is the docker daemon running?" in str(finding) and "systemctl start docker" in str(finding)


def test_main_fails_with_a_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("lab.preflight.shutil.which", lambda name: None)
    assert main(["--stack", "bgp"]) == 1
    out = capsys.readouterr().out
    assert "docker is not on PATH" in out and "before `make up STACK=bgp`" in out
