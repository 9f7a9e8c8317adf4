"""Driving the lab's own stacks for real, as a user does: the README's make targets in a copy of
the project, on a file backend of its own, through the real engine, the plugins this machine
builds, the local Docker engine and the offline supply. Shared by tests/test_real_stacks.py (the
stacks up and down, checks off) and tests/test_real_labs.py (verified labs and broken claims).

`.ci/run` sets LAB_REAL_TIER=required: there a missing piece fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.config import key
from supply import toolchain
from verify import catalogue

REPO = Path(__file__).resolve().parent.parent
PROJECT = ("Makefile", "pyproject.toml", "Pulumi.yaml", "__main__.py")
PACKAGES = (
    "lab",
    "components",
    "verify",
    "cilium",
    "frr",
    "scripts",
    "stacks",
    "host",
    "supply",
    "engine",
    "compare",
)
SHIPPED = ("overlay", "geneve", "native-auto", "static", "bgp")
MAKE_TIMEOUT = 1800
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
# Pulumi's own diagnostics (not words inside a diffed script).
DIAGNOSTIC = re.compile(r"^\s*(warning|error): ", re.MULTILINE)


def missing(why: str) -> None:
    if os.environ.get("LAB_REAL_TIER") == "required":
        pytest.fail(f"the real tier is required here, but {why}")
    pytest.skip(why)


def run(
    argv: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        input=stdin,
    )


@dataclass
class Lab:
    """The project copied into a tmp folder, driven with make as a user would."""

    root: Path
    env: dict[str, str]
    manifest: Path
    created: list[str] = field(default_factory=list)
    logs: int = 0

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = run(["make", "--no-print-directory", *args], self.env, self.root, MAKE_TIMEOUT)
        done.stdout = done.stdout + done.stderr  # one transcript, in the order a user reads it
        self.logs += 1  # every transcript kept whole beside the project, for a person to read
        (self.root.parent / f"make-{self.logs:02d}-{'-'.join(args)}.log").write_text(done.stdout)
        return done

    def ok(self, *args: str) -> str:
        done = self.make(*args)
        assert done.returncode == 0, (
            f"make {' '.join(args)} exited {done.returncode}:\n{diagnostics(done.stdout)}"
        )
        return done.stdout

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], self.env, self.root)

    def write_stack(self, name: str, base: str, **changes: Any) -> None:
        """A stack file of the user's own, from a shipped one with some keys changed."""
        data = yaml.safe_load((self.root / "stacks" / f"Pulumi.{base}.yaml").read_text())
        for k, v in changes.items():
            data["config"][key(k)] = v
        (self.root / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def pulumi(self, *args: str) -> str:
        """A plain pulumi command in the toolchain's environment (reading state, outputs)."""
        key_dir = toolchain.current_dir(os.environ)
        assert key_dir is not None
        env = {**self.env, **toolchain.toolchain_env(key_dir, self.root, self.env["PATH"])}
        done = run([str(key_dir / "bin" / "pulumi"), *args], env, self.root, 300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def state_file(self, stack: str) -> Path:
        [found] = (self.root / ".state").rglob(f"{stack}.json")
        return found


def docker_env() -> dict[str, str]:
    env = dict(os.environ)
    host = run([str(REPO / "engine" / "dockerd.sh"), "host-if-needed"], env, REPO).stdout.strip()
    if host:
        env["DOCKER_HOST"] = host
    return env


def open_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A project copy on a file backend of its own; at the end, whatever a test left is destroyed
    and swept by label."""
    try:
        key_dir = toolchain.current_dir(os.environ)
    except (toolchain.ToolchainError, OSError, subprocess.CalledProcessError) as exc:
        missing(f"the toolchain cannot be looked up ({exc})")
        raise
    if key_dir is None:
        missing("the Pulumi toolchain is not built: run `make supply`")
    assert key_dir is not None
    plugins = {p.name for p in (key_dir / "pulumi-home" / "plugins").glob("resource-*")}
    if not {"resource-command-v1.2.1", "resource-docker-v5.2.0"} <= plugins:
        missing(
            f"the toolchain holds no command and docker plugins ({sorted(plugins)}): run `make toolchain`"
        )
    env = docker_env()
    if run(["docker", "info"], env, REPO, 30).returncode != 0:
        missing("no Docker engine answers: run `make dockerd`")
    made = run(["python3", "-m", "supply.offline", "manifest"], env, REPO)
    if made.returncode != 0:
        missing(f"the offline supply is not built: run `make supply` ({made.stderr.strip()})")
    root = tmp_path_factory.mktemp("lab") / "project"
    root.mkdir()
    for name in PROJECT:
        shutil.copy2(REPO / name, root / name)  # mtimes kept: make sees the venv as up to date
    for name in PACKAGES:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".venv").symlink_to(REPO / ".venv")
    env.update(
        PULUMI_BACKEND_URL=(root / ".state").as_uri(),
        PULUMI_CONFIG_PASSPHRASE=secrets.token_hex(16),
        LAB_SUPPLY="offline",
        PULUMI_SKIP_UPDATE_CHECK="true",
    )
    for name in ("PULUMI_HOME", "LAB_OFFLINE_SUPPLY", "CILIUM_CHART"):
        env.pop(name, None)
    (root / ".state").mkdir()
    it = Lab(root, env, Path(made.stdout.strip()))
    yield it
    for stack in reversed(it.created):  # whatever a test left: destroy, then sweep by label
        it.make("destroy", f"STACK={stack}")
        it.make("clean", f"STACK={stack}")


def diagnostics(transcript: str) -> str:
    """Pulumi's Diagnostics section (where a failed resource's error is), else the transcript's end."""
    at = transcript.find("Diagnostics:")
    if at < 0:
        return transcript[-6000:]
    end = min(
        (i for i in (transcript.find("Outputs:", at), transcript.find("Resources:", at)) if i > 0),
        default=len(transcript),
    )
    return transcript[at:end][:8000]


def pulumi_part(transcript: str) -> str:
    """What pulumi said, after the preflight's and make's own lines."""
    at = transcript.find("Previewing update")
    return transcript[at:] if at >= 0 else transcript


def kubectl(lab: Lab, cluster: str, *args: str) -> Any:
    done = lab.docker(
        "exec",
        f"{cluster}-control-plane",
        "kubectl",
        "--kubeconfig",
        "/etc/kubernetes/admin.conf",
        *args,
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def toolchain_path(lab: Lab) -> dict[str, str]:
    key_dir = toolchain.current_dir(os.environ)
    assert key_dir is not None
    return {"PATH": f"{key_dir / 'bin'}:{lab.env['PATH']}"}


# --- a verified lab: its checks' records, re-judging by hand, and tearing it down ----------------


def up_verified(lab: Lab, stack: str, base: str, subnet: str, **changes: Any) -> dict[str, Any]:
    """`make up` of a user's stack file (from the shipped `base`, checks on); its outputs."""
    lab.write_stack(
        stack,
        base,
        clusterName=stack,
        underlaySubnet=subnet,
        verify={"enabled": True, "rerun": ""},
        **changes,
    )
    lab.created.append(stack)
    lab.ok("up", f"STACK={stack}")
    outputs: dict[str, Any] = json.loads(lab.pulumi("stack", "output", "--json", "--stack", stack))
    return outputs


def records(lab: Lab, stack: str) -> dict[str, dict[str, Any]]:
    """The verdict records the checks of the last `make up` wrote (artifacts/<stack>/checks)."""
    folder = lab.root / "artifacts" / stack / "checks"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def verify_by_hand(
    lab: Lab, stack: str, *check_ids: str, settle: bool = False
) -> tuple[int, dict[str, dict[str, Any]], str]:
    """`python -m verify run` by hand against the running lab, into an artifacts folder of its
    own: exit status, the verdict records, and what it said. The lab was changed by hand and is
    judged as it is (`--no-settle`), unless `settle`."""
    artifacts = lab.root.parent / f"by-hand-{stack}-{lab.logs}"
    lab.logs += 1
    argv = [str(lab.root / ".venv" / "bin" / "python"), "-m", "verify", "run", "--stack", stack]
    argv += [] if settle else ["--no-settle"]
    argv += [arg for c in check_ids for arg in ("--check", c)] + ["--artifacts", str(artifacts)]
    done = run(argv, lab.env, lab.root, 900)
    found = {p.stem: json.loads(p.read_text()) for p in sorted((artifacts / "checks").glob("*.json"))}
    return done.returncode, found, done.stdout + done.stderr


def statuses(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {check: record["status"] for check, record in found.items()}


def node_sh(lab: Lab, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command in a kind node's (or router's) own network namespace: its tools sidecar, as the
    checks use."""
    return lab.docker("exec", f"cdl-tools-{node}", *argv)


def agent_exec(lab: Lab, cluster: str, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command in the Cilium agent container on `node` (where bpftool lives)."""
    kubectl = ["exec", f"{cluster}-control-plane", "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
    found = lab.docker(
        *kubectl, "-n", "kube-system", "get", "pods", "-l", "k8s-app=cilium",
        "--field-selector", f"spec.nodeName={node}", "-o", "name",
    )  # fmt: skip
    assert found.returncode == 0 and found.stdout.strip(), found.stderr
    pod = found.stdout.split()[0]
    return lab.docker(*kubectl, "-n", "kube-system", "exec", pod, "-c", "cilium-agent", "--", *argv)


def every_check_passed(lab: Lab, stack: str, mode: str) -> None:
    """Every check of the mode ran inside `make up`, PASSed, is in report.md, and a pcap is kept."""
    found = records(lab, stack)
    wanted = {c.id for c in catalogue.for_stack(mode)}
    assert set(found) == wanted, f"checks run: {sorted(found)}, wanted {sorted(wanted)}"
    failed = {c: r["findings"] for c, r in found.items() if r["status"] != "PASS"}
    assert failed == {}, failed
    report = (lab.root / "artifacts" / stack / "report.md").read_text()
    assert all(c in report for c in wanted), report
    assert list((lab.root / "artifacts" / stack).glob("*.pcap")), "no capture kept for Wireshark"


def destroy_leaves_nothing(lab: Lab, stack: str, outputs: dict[str, Any]) -> None:
    lab.ok("destroy", f"STACK={stack}")
    swept = lab.make("sweep", f"STACK={stack}")
    assert swept.returncode == 0 and "nothing of stack" in swept.stdout, swept.stdout
    assert lab.docker("ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}={stack}").stdout.strip() == ""
    assert lab.docker("network", "ls", "-q", "--filter", f"name={outputs['network']}").stdout.strip() == ""
    lab.created.remove(stack)
