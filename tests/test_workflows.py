"""The GitHub workflows are valid (GitHub's schema) and pass zizmor's security audit, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
