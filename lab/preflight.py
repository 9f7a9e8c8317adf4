"""Preflight for `make up`: find what would make `pulumi up` fail half-way, before it starts.

Each problem is printed with the command that fixes it. Run: `python -m lab.preflight --stack S`.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig, key

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


Reader = Callable[[str], str | None]  # path -> text, or None when the file does not exist

# kind's own advice for multi-node clusters (known issue "Pod errors due to too many open files").
INOTIFY_MINIMUM = {"max_user_watches": 524288, "max_user_instances": 512}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def required_modules(config: LabConfig) -> tuple[str, ...]:
    """Kernel modules the mode's datapath needs on the Docker host (kind nodes share its kernel)."""
    protocol = config.facts.tunnel_protocol
    return (protocol,) if protocol else ()


def check_kernel_modules(config: LabConfig, read: Reader = _read, run: Runner = _run) -> list[Finding]:
    """Loaded or built in (/sys/module/<name>), or at least loadable (modinfo)."""
    findings = []
    for module in required_modules(config):
        if (
            read(f"/sys/module/{module}/initstate") is not None
            or read(f"/sys/module/{module}/uevent") is not None
        ):
            findings.append(Finding(True, f"kernel module {module} is available"))
        elif run(("modinfo", module)).returncode == 0:
            findings.append(Finding(True, f"kernel module {module} is loadable (the agent loads it)"))
        else:
            findings.append(
                Finding(
                    False,
                    f"kernel module {module} is neither loaded nor loadable; mode {config.mode} needs it",
                    f"sudo modprobe {module}   (or install your distribution's extra kernel modules package)",
                )
            )
    return findings


def check_inotify(read: Reader = _read) -> list[Finding]:
    findings = []
    for name, minimum in INOTIFY_MINIMUM.items():
        text = read(f"/proc/sys/fs/inotify/{name}")
        if text is None:
            continue
        value = int(text.strip())
        ok = value >= minimum
        findings.append(
            Finding(
                ok,
                f"fs.inotify.{name} = {value}"
                + ("" if ok else f", below {minimum}: multi-node kind runs out of watches"),
                "" if ok else f"sudo sysctl -w fs.inotify.{name}={minimum}",
            )
        )
    return findings


def check_underlay_free(config: LabConfig, network_name: str, run: Runner = _run) -> Finding:
    """No other Docker network may hold (part of) the lab's underlay subnet."""
    listed = run(("docker", "network", "ls", "--format", "{{.Name}}"))
    names = [n for n in listed.stdout.split() if n and n != network_name]
    clashes = []
    if names:
        # `docker network inspect` prints JSON: [{Name, IPAM: {Config: [{Subnet}, ...]}}, ...]
        inspect = run(("docker", "network", "inspect", *names))
        for network in json.loads(inspect.stdout or "[]"):
            for ipam in (network.get("IPAM") or {}).get("Config") or []:
                try:
                    net = ipaddress.ip_network(ipam.get("Subnet", ""), strict=False)
                except ValueError:
                    continue
                if isinstance(net, ipaddress.IPv4Network) and net.overlaps(config.underlay):
                    clashes.append(f"{network.get('Name')} ({net})")
    if clashes:
        return Finding(
            False,
            f"the underlay {config.underlay} is already used by docker network {', '.join(clashes)}",
            f"pulumi config set {key('underlaySubnet')} <a free /24, e.g. 172.30.9.0/24> -s {config.stack}",
        )
    return Finding(True, f"underlay {config.underlay} is free on this Docker host")


def preflight(
    run: Runner = _run,
    which: Callable[[str], str | None] | None = None,
    config: LabConfig | None = None,
    read: Reader = _read,
    system: str | None = None,
) -> list[Finding]:
    findings = [check_tool(t, run, which or shutil.which) for t in TOOLS]
    if not findings[0].ok:
        return findings
    daemon = check_docker_daemon(run)
    findings.append(daemon)
    if config is not None:
        if (system or platform.system()) == "Linux":  # Docker Desktop keeps its kernel in a VM
            findings += check_kernel_modules(config, read, run)
            findings += check_inotify(read)
        if daemon.ok:
            from lab.plan import plan  # noqa: PLC0415 (plan imports config; keep this module light)

            findings.append(check_underlay_free(config, plan(config).network_name, run))
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="", help="the stack about to be brought up (for the message only)")
    args = parser.parse_args(argv)
    config = None
    if args.stack:
        from lab.cleanup import stack_config  # noqa: PLC0415

        config = stack_config(args.stack)
    findings = preflight(config=config)
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
