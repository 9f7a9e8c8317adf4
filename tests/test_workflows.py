"""The GitHub workflows are valid (GitHub's schema) and pass zizmor's security audit, offline."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.preflight import required_modules
from lab.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (it is a test dependency in pyproject.toml)")
    return str(path)


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "e2e.yml"}


def test_workflows_match_githubs_schema() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_above_low() -> None:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--min-severity",
            "medium",
            "--format",
            "plain",
            str(ROOT / ".github" / "workflows"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_would_catch_an_injection(tmp_path: Path) -> None:
    """The audit is not blind: a template injected into a shell step is reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "medium", "--format", "plain", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0 and "template-injection" in result.stdout


def test_e2e_covers_every_stack_and_always_cleans_up() -> None:
    e2e = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
    job = e2e["jobs"]["lab"]
    assert job["strategy"]["matrix"]["stack"] == ["overlay", "geneve", "native-auto", "static", "bgp"]
    steps = {s.get("name", ""): s for s in job["steps"]}
    up = next(s for name, s in steps.items() if name.startswith("Bring the lab up"))
    assert up["run"].strip() == 'make up STACK="$STACK"'  # the README's command
    for name in ("Destroy the lab and remove its stack", "Sweep — fail if anything of the lab is left"):
        assert steps[name]["if"] == "always()"
    upload = next(s for name, s in steps.items() if name.startswith("Upload the evidence"))
    assert (
        upload["if"] == "always()" and "!artifacts/${{ matrix.stack }}/kubeconfig" in upload["with"]["path"]
    )


def test_ci_runs_the_readme_test_command() -> None:
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert any(r.strip().endswith("make test") for r in runs)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_ci_installs_what_make_lint_runs() -> None:
    """`make test` runs `make lint`, which runs shellcheck: the CI job must install it."""
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    installs = " ".join(
        s.get("run", "") for s in ci["jobs"]["test"]["steps"] if "apt-get install" in s.get("run", "")
    )
    assert "shellcheck" in (ROOT / "Makefile").read_text()
    assert re.search(r"\bshellcheck\b", installs)


# --- e2e: what each matrix job loads and installs -----------------------------------------------

E2E = ROOT / ".github" / "workflows" / "e2e.yml"


def _e2e_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(E2E.read_text())["jobs"]["lab"]
    return job


def _step(job: dict[str, Any], starts: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name", "").startswith(starts))


def _matrix_value(job: dict[str, Any], stack: str, name: str) -> str:
    """What `${{ matrix.<name> }}` is in the job for `stack` (GitHub's include semantics)."""
    values = [i[name] for i in job["strategy"]["matrix"].get("include", []) if i.get("stack") == stack]
    return values[-1] if values else ""


@pytest.mark.parametrize("stack", ["overlay", "geneve", "native-auto", "static", "bgp"])
def test_each_job_loads_only_the_kernel_module_its_stack_needs(stack: str) -> None:
    """geneve only for geneve, vxlan only for overlay, none natively: a runner kernel without
    geneve must not fail the other four jobs."""
    job = _e2e_job()
    modprobes = [s for s in job["steps"] if "modprobe" in s.get("run", "")]
    assert modprobes, "the tunnel stacks still load their module"
    for step in modprobes:
        assert not re.search(r"modprobe\s+(vxlan|geneve)\b", step["run"]), "a fixed module runs in every job"
        assert step.get("if") == "matrix.kernel-module != ''"
        assert step["env"]["KERNEL_MODULE"] == "${{ matrix.kernel-module }}"
    wanted = required_modules(parse_config({"mode": stack}, stack))
    loaded = _matrix_value(job, stack, "kernel-module")
    assert (loaded,) == wanted if wanted else loaded == ""


FAKE_CURL = """#!/bin/bash
# curl -fsSLo FILE URL: serve URL's last path segment from $FAKE_RELEASES, or fail like curl -f.
while [ $# -gt 0 ]; do
  case "$1" in -fsSLo) out=$2; shift 2 ;; *) url=$1; shift ;; esac
done
echo "$url" >> "$FAKE_RELEASES/fetched"
cp -- "$FAKE_RELEASES/${url##*/}" "$out" 2>/dev/null || { echo "curl: (22) 404 $url" >&2; exit 22; }
"""


def _release_files(tmp_path: Path, env: dict[str, str]) -> Path:
    """What the three projects publish for the pinned versions, with real sha256 sums."""
    releases = tmp_path / "releases"
    releases.mkdir()
    (releases / "kind-linux-amd64").write_text("#!/bin/sh\necho kind\n")
    (releases / "kubectl").write_text("#!/bin/sh\necho kubectl\n")
    tarball = releases / f"pulumi-v{env['PULUMI_VERSION']}-linux-x64.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        data = b"#!/bin/sh\necho pulumi\n"
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    (releases / "kind-linux-amd64.sha256sum").write_text(
        f"{sha(releases / 'kind-linux-amd64')}  kind-linux-amd64\n"
    )
    (releases / "kubectl.sha256").write_text(sha(releases / "kubectl"))
    other = f"pulumi-v{env['PULUMI_VERSION']}-darwin-arm64.tar.gz"
    (releases / f"pulumi-{env['PULUMI_VERSION']}-checksums.txt").write_text(
        f"{'0' * 64}  {other}\n{sha(tarball)}  {tarball.name}\n"
    )
    return releases


def _install(tmp_path: Path, releases: Path) -> subprocess.CompletedProcess[str]:
    job = _e2e_job()
    step = _step(job, "Install kind, kubectl and the Pulumi CLI")
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {
        **{k: str(v) for k, v in job["env"].items() if "${{" not in str(v)},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "GITHUB_PATH": str(tmp_path / "github_path"),
        "FAKE_RELEASES": str(releases),
    }
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        check=False,
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_install_step_verifies_every_download(tmp_path: Path) -> None:
    env = {k: str(v) for k, v in _e2e_job()["env"].items()}
    result = _install(tmp_path, _release_files(tmp_path, env))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "home" / "pulumi" / "pulumi").exists()
    fetched = (tmp_path / "releases" / "fetched").read_text()
    version = env["PULUMI_VERSION"]
    assert (
        f"https://github.com/pulumi/pulumi/releases/download/v{version}/pulumi-{version}-checksums.txt"
        in fetched
    )


def test_a_tampered_pulumi_tarball_is_never_unpacked(tmp_path: Path) -> None:
    env = {k: str(v) for k, v in _e2e_job()["env"].items()}
    releases = _release_files(tmp_path, env)
    tarball = releases / f"pulumi-v{env['PULUMI_VERSION']}-linux-x64.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:  # same name, other bytes
        data = b"#!/bin/sh\necho evil\n"
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    result = _install(tmp_path, releases)
    assert result.returncode != 0
    assert not (tmp_path / "home" / "pulumi").exists()


def test_a_checksums_file_without_the_tarball_fails(tmp_path: Path) -> None:
    env = {k: str(v) for k, v in _e2e_job()["env"].items()}
    releases = _release_files(tmp_path, env)
    checksums = releases / f"pulumi-{env['PULUMI_VERSION']}-checksums.txt"
    checksums.write_text(
        "".join(line + "\n" for line in checksums.read_text().splitlines() if "linux-x64" not in line)
    )
    result = _install(tmp_path, releases)
    assert result.returncode != 0
    assert not (tmp_path / "home" / "pulumi").exists()
