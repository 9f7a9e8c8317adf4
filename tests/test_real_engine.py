"""The real tier that runs offline: the Pulumi CLI, language host and kubernetes provider `make toolchain` built.

Every command is the real `pulumi` on a local file backend under tmp_path, with the toolchain's
PULUMI_HOME, no plugin downloads and the venv's python, in an environment built here (no network,
no kubeconfig, no Pulumi Cloud). Skipped where the current recipe's toolchain is not built; CI
(.ci/run) builds it first. Here a bad config stops before any provider, a good one reaches them,
and a throwaway program shows the engine path the lab uses; the stacks' own previews and labs,
through the command and docker plugins built here, are tests/test_real_stacks.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.preflight import check_plugins, parse_version
from lab.config import key
from supply import toolchain

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# What Pulumi needs of the project to run its program (as `make preview` sees it).
PROJECT_PARTS = (
    "Pulumi.yaml",
    "__main__.py",
    "lab",
    "components",
    "verify",
    "cilium",
    "frr",
    "scripts",
    "stacks",
)
PROBE = REPO / "tests" / "data" / "real_engine"
TIMEOUT = 300  # seconds for one pulumi command; each takes under 10 s here


@pytest.fixture(scope="module")
def key_dir() -> Path:
    try:
        found = toolchain.current_dir(os.environ)
    except (toolchain.ToolchainError, OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot look up the Pulumi toolchain ({exc}): run `make toolchain` (needs Go)")
    if found is None:
        pytest.skip("no Pulumi toolchain is built for the current recipe: run `make toolchain`")
    if not VENV_PYTHON.exists():
        pytest.skip(f"no {VENV_PYTHON} for the language host: run `make venv`")
    return found


@dataclass(frozen=True)
class Pulumi:
    """The built `pulumi` in one directory, on one file backend, with nothing from the caller's env."""

    key_dir: Path
    cwd: Path
    env: Mapping[str, str]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.key_dir / "bin" / "pulumi"), *args],
            cwd=self.cwd,
            env=dict(self.env),
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, (
            f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def state(self, stack: str) -> dict[str, Any]:
        exported: dict[str, Any] = json.loads(self.ok("stack", "export", "--stack", stack))
        return exported


def engine(key_dir: Path, cwd: Path, root: Path, pulumi_home: Path | None = None) -> Pulumi:
    """`pulumi` run in `cwd`, with its file backend in root/state and its HOME in root/home."""
    state, home = root / "state", root / "home"
    state.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    env = {
        **toolchain.toolchain_env(key_dir, REPO, "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PULUMI_BACKEND_URL": state.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "",
    }
    if pulumi_home is not None:
        env["PULUMI_HOME"] = str(pulumi_home)
    return Pulumi(key_dir, cwd, env)


@pytest.fixture
def stacks() -> Iterator[list[tuple[Pulumi, str]]]:
    """Stacks a test created: removed afterwards (`pulumi stack rm`), whatever the test's outcome."""
    created: list[tuple[Pulumi, str]] = []
    yield created
    for pulumi, stack in created:
        pulumi("stack", "rm", stack, "--yes", "--force", "--non-interactive")


def new_stack(pulumi: Pulumi, stack: str, stacks: list[tuple[Pulumi, str]]) -> None:
    pulumi.ok("stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive")
    stacks.append((pulumi, stack))


def copy_project(dest: Path) -> Path:
    dest.mkdir()
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / part)
    # Pulumi.yaml's `virtualenv: .venv`, for a language host that reads it (the built one is told
    # by PULUMI_PYTHON_CMD).
    (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def set_config(project: Path, stack: str, name: str, value: object) -> None:
    """Give the stack file's `cilium-datapath-lab:<name>` a value, as a user would edit it."""
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"][key(name)] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def resource_types(state: Mapping[str, Any]) -> list[str]:
    return [r["type"] for r in state["deployment"].get("resources") or []]


# --- the toolchain agrees with the Python packages ----------------------------------------------


def test_the_cli_and_the_kubernetes_plugin_match_the_python_packages(key_dir: Path, tmp_path: Path) -> None:
    pulumi = engine(key_dir, tmp_path, tmp_path)
    cli = parse_version(pulumi.ok("version"))
    sdk = parse_version(toolchain.pyproject_pins(REPO / "pyproject.toml")["pulumi"])
    assert cli is not None and sdk is not None and cli >= sdk, (cli, sdk)

    wanted = toolchain.installed_plugin_version(REPO / ".venv", "pulumi-kubernetes")
    assert wanted is not None, "pulumi-kubernetes is not installed in the venv"
    listed = json.loads(pulumi.ok("plugin", "ls", "--json"))
    versions = [p["version"] for p in listed if p["name"] == "kubernetes" and p["kind"] == "resource"]
    assert versions == [wanted], listed


def test_the_preflight_reads_the_real_plugin_list(
    key_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real CLI's JSON: kubernetes is installed; a provider is reported missing only if unlisted."""
    pulumi = engine(key_dir, tmp_path, tmp_path)
    for name in ("PATH", "PULUMI_HOME"):  # check_plugins runs `pulumi` in this process's environment
        monkeypatch.setenv(name, pulumi.env[name])
    listed = json.loads(pulumi.ok("plugin", "ls", "--json"))
    installed = {(p["name"], p["version"]) for p in listed if p["kind"] == "resource"}
    found = check_plugins(pulumi.env, REPO / ".venv")
    assert all(f.what.startswith("resource plugin ") for f in found), [str(f) for f in found]
    findings = {f.what.split()[2]: f for f in found}
    assert findings["kubernetes"].ok
    assert {"command", "docker", "kubernetes"} <= set(findings)
    for name, finding in findings.items():
        version = toolchain.installed_plugin_version(REPO / ".venv", f"pulumi-{name}")
        assert finding.ok == ((name, version) in installed), str(finding)


# --- the lab's own program on the real CLI ------------------------------------------------------

BAD_CONFIGS = [
    pytest.param("workers", 999, key("workers"), id="workers-999"),
    pytest.param("verify", {"enable": False}, key("verify") + ".enable", id="verify-unknown-key"),
    pytest.param("serviceCidr", "10.0.0.0/8", key("serviceCidr"), id="serviceCidr-slash-8"),
]


@pytest.mark.parametrize(("name", "value", "named"), BAD_CONFIGS)
def test_a_bad_config_stops_the_real_cli_before_any_resource(
    key_dir: Path, tmp_path: Path, stacks: list[tuple[Pulumi, str]], name: str, value: object, named: str
) -> None:
    project = copy_project(tmp_path / "project")
    set_config(project, "overlay", name, value)
    pulumi = engine(key_dir, project, tmp_path)
    new_stack(pulumi, "overlay", stacks)
    for command in (["preview", "--diff"], ["up", "--yes", "--skip-preview"]):
        run = pulumi(*command, "--stack", "overlay", "--non-interactive", "--color", "never")
        assert run.returncode != 0, f"pulumi {command[0]} accepted {named}: {value!r}\n{run.stdout}"
        assert named in run.stdout + run.stderr, run.stdout + run.stderr
        assert "invalid stack configuration" in run.stdout + run.stderr
    assert set(resource_types(pulumi.state("overlay"))) <= {"pulumi:pulumi:Stack"}


def test_a_good_config_reaches_the_providers_so_the_state_check_sees_resources(
    key_dir: Path, tmp_path: Path, stacks: list[tuple[Pulumi, str]]
) -> None:
    """The control for the test above: the same run with the stock config leaves the lab's
    components in the state, then stops at a provider an empty PULUMI_HOME cannot have."""
    project = copy_project(tmp_path / "project")
    (tmp_path / "empty-home").mkdir()
    pulumi = engine(key_dir, project, tmp_path, pulumi_home=tmp_path / "empty-home")
    new_stack(pulumi, "overlay", stacks)
    run = pulumi(
        "up", "--yes", "--skip-preview", "--stack", "overlay", "--non-interactive", "--color", "never"
    )
    assert run.returncode != 0
    assert "no resource plugin 'pulumi-resource-" in run.stdout + run.stderr, run.stdout + run.stderr
    assert "lab:index:KindCluster" in resource_types(pulumi.state("overlay"))


# --- a throwaway program: engine, language host and kubernetes provider, up and down ------------


def test_preview_and_up_of_a_program_with_the_real_kubernetes_provider(
    key_dir: Path, tmp_path: Path, stacks: list[tuple[Pulumi, str]]
) -> None:
    project = tmp_path / "probe"
    shutil.copytree(PROBE, project)
    render = tmp_path / "rendered"
    plaintext = secrets.token_hex(16)
    base = engine(key_dir, project, tmp_path)
    pulumi = Pulumi(
        key_dir, project, {**base.env, "PROBE_SECRET": plaintext, "PROBE_RENDER_DIR": str(render)}
    )
    new_stack(pulumi, "probe", stacks)
    flags = ("--stack", "probe", "--non-interactive", "--color", "never")

    preview = pulumi("preview", "--diff", *flags)
    said = preview.stdout + preview.stderr
    assert preview.returncode == 0, said
    assert "+ pulumi:providers:kubernetes: (create)" in said and "renderYamlToDirectory" in said
    assert "+ kubernetes:core/v1:ConfigMap: (create)" in said
    assert re.search(r"token\s*: \[secret\]", said) and plaintext not in said
    assert not re.search(r"\b(warning|error)\b", said, re.IGNORECASE), said
    assert not render.exists(), "a preview rendered a manifest"

    said = pulumi.ok("up", "--yes", "--skip-preview", *flags)
    [manifest] = render.rglob("*configmap*probe*.yaml")
    rendered = yaml.safe_load(manifest.read_text())
    assert rendered["kind"] == "ConfigMap" and rendered["data"] == {
        "rendered-by": "pulumi-resource-kubernetes"
    }
    assert plaintext not in said

    outputs = next(
        r["outputs"]
        for r in pulumi.state("probe")["deployment"]["resources"]
        if r["type"] == "pulumi:pulumi:Stack"
    )
    assert outputs["configMap"] == "probe"
    assert set(outputs["token"]) == {"4dabf18193072939515e22adb298388d", "ciphertext"}
    assert outputs["token"]["ciphertext"]
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert any(p.name == "probe.json" for p in files)
    assert not [p for p in files if plaintext.encode() in p.read_bytes()]
    assert pulumi.ok("stack", "output", "token", "--show-secrets", "--stack", "probe").strip() == plaintext

    pulumi.ok("destroy", "--yes", "--skip-preview", *flags)
    assert not manifest.exists()
    assert resource_types(pulumi.state("probe")) == []
