"""Preflight for `make up`: find what would make `pulumi up` fail half-way, before it starts.

Each problem is printed with the command that fixes it. Run: `python -m lab.preflight --stack S`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Tool:
    name: str
    version_argv: tuple[str, ...]
    minimum: tuple[int, int, int]
    install: str
    required: bool = True


TOOLS = (
    Tool(
        "docker",
        ("docker", "version", "--format", "{{.Client.Version}}"),
        (24, 0, 0),
        "https://docs.docker.com/engine/install/",
    ),
    Tool(
        "kind",
        ("kind", "version"),
        (0, 32, 0),
        "go install sigs.k8s.io/kind@v0.32.0  (or: curl -Lo kind https://kind.sigs.k8s.io/dl/v0.32.0/kind-linux-amd64 && install kind /usr/local/bin/)",
    ),
    Tool("pulumi", ("pulumi", "version"), (3, 200, 0), "curl -fsSL https://get.pulumi.com | sh"),
    Tool(
        "kubectl",
        ("kubectl", "version", "--client"),
        (1, 34, 0),
        "https://kubernetes.io/docs/tasks/tools/  (optional: the lab itself runs kubectl inside the control-plane node)",
        required=False,
    ),
)

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""
    required: bool = True

    def __str__(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        return f"[{mark}] {self.what}" + (f"\n       fix: {self.fix}" if self.fix else "")


def check_tool(tool: Tool, run: Runner = _run, which: Callable[[str], str | None] = shutil.which) -> Finding:
    if which(tool.name) is None:
        return Finding(False, f"{tool.name} is not on PATH", f"install it: {tool.install}", tool.required)
    result = run(tool.version_argv)
    version = parse_version(result.stdout + result.stderr)
    wanted = ".".join(map(str, tool.minimum))
    if version is None:
        return Finding(
            False,
            f"{tool.name}: could not read its version",
            f"check `{' '.join(tool.version_argv)}`",
            tool.required,
        )
    if version < tool.minimum:
        have = ".".join(map(str, version))
        return Finding(
            False, f"{tool.name} {have} is older than {wanted}", f"upgrade it: {tool.install}", tool.required
        )
    return Finding(True, f"{tool.name} {'.'.join(map(str, version))} (>= {wanted})", required=tool.required)


def check_docker_daemon(run: Runner = _run) -> Finding:
    result = run(("docker", "info", "--format", "{{.ServerVersion}}"))
    if result.returncode != 0 or not result.stdout.strip():
        detail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return Finding(
            False,
            f"the Docker engine is not reachable ({detail})",
            "start it (Linux: sudo systemctl start docker; macOS/Windows: start Docker Desktop), "
            "and make sure your user may use it: sudo usermod -aG docker $USER",
        )
    return Finding(True, f"Docker engine {result.stdout.strip()} reachable")


def preflight(run: Runner = _run, which: Callable[[str], str | None] | None = None) -> list[Finding]:
    findings = [check_tool(t, run, which or shutil.which) for t in TOOLS]
    if findings[0].ok:
        findings.append(check_docker_daemon(run))
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="", help="the stack about to be brought up (for the message only)")
    args = parser.parse_args(argv)
    findings = preflight()
    for f in findings:
        print(f)
    failed = [f for f in findings if not f.ok and f.required]
    if failed:
        print(
            f"\npreflight: {len(failed)} problem(s) to fix before `make up{' STACK=' + args.stack if args.stack else ''}`"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
