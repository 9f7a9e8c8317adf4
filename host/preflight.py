"""Preflight for `make up`: find what would make `pulumi up` fail half-way, before it starts.

Each problem is printed with the command that fixes it. Run: `python -m host.preflight --stack S`.
Nothing here may end in a traceback: a tool that is missing, hangs or answers nonsense, and a
host file that is absent or unreadable, each become a finding that says what to do.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from host import cgroups
from lab import offline
from lab.config import LabConfig, LabConfigError, key, with_offline_supply
from lab.image_ref import ImageSource

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Tool:
    name: str
    version_argv: tuple[str, ...]
    minimum: tuple[int, int, int]
    install: str
    required: bool = True


# The oldest Docker the lab runs on, engine and CLI, the same for every stack: kind starts its
# nodes with --cgroupns=private (kubernetes-sigs/kind#3241), which Docker has from 20.10.0.
# Nothing else the lab asks for is newer: the bgp stack's FRR routers turn ICMP redirects off
# from inside their container (scripts/frr/redirects-off.sh), not with Engine 27.0's
# per-endpoint sysctls.
DOCKER_MINIMUM = (20, 10, 0)

TOOLS = (
    # The CLI runs kind's `docker run --cgroupns=private` and the lab's network/exec/info
    # commands; check_docker_daemon checks the engine against the same release.
    Tool(
        "docker",
        ("docker", "version", "--format", "{{.Client.Version}}"),
        DOCKER_MINIMUM,
        "https://docs.docker.com/engine/install/",
    ),
    Tool(
        "kind",
        ("kind", "version"),
        (0, 32, 0),
        "go install sigs.k8s.io/kind@v0.32.0  (or: curl -Lo kind https://kind.sigs.k8s.io/dl/v0.32.0/kind-linux-amd64 && install kind /usr/local/bin/; "
        "offline, with only the Go module proxy: make toolchain)",
    ),
    # At least the Python SDK pin (pyproject.toml): an older engine may not speak its protocol.
    Tool(
        "pulumi",
        ("pulumi", "version"),
        (3, 272, 0),
        "curl -fsSL https://get.pulumi.com | sh  (offline, with only the Go module proxy: make toolchain)",
    ),
    Tool(
        "kubectl",
        ("kubectl", "version", "--client"),
        (1, 34, 0),
        "https://kubernetes.io/docs/tasks/tools/  (optional: the lab itself runs kubectl inside the control-plane node)",
        required=False,
    ),
)

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


RUN_TIMEOUT = 30


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT)


@dataclass(frozen=True)
class Answer:
    """What a command said, or why it said nothing (not installed, not executable, hung)."""

    code: int
    out: str
    err: str
    could_not_run: str = ""

    @property
    def ok(self) -> bool:
        return not self.could_not_run and self.code == 0

    @property
    def detail(self) -> str:
        """One line for a message: why it could not run, else its last line of stderr."""
        return self.could_not_run or (self.err.strip().splitlines() or ["no answer"])[-1]


def ask(run: Runner, argv: Sequence[str]) -> Answer:
    """Run a command through `run`; failing to start it is an answer too, never an exception."""
    try:
        result = run(argv)
    except subprocess.TimeoutExpired as exc:
        return Answer(-1, "", "", f"`{argv[0]}` did not answer within {exc.timeout:g}s")
    except OSError as exc:  # FileNotFoundError, PermissionError, ...
        return Answer(-1, "", "", f"`{argv[0]}` could not run: {exc.strerror or exc}")
    return Answer(result.returncode, result.stdout or "", result.stderr or "")


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
    answer = ask(run, tool.version_argv)
    version = None if answer.could_not_run else parse_version(answer.out + answer.err)
    wanted = ".".join(map(str, tool.minimum))
    if version is None:
        return Finding(
            False,
            f"{tool.name}: could not read its version ({answer.detail})",
            f"check `{' '.join(tool.version_argv)}`, or reinstall it: {tool.install}",
            tool.required,
        )
    if version < tool.minimum:
        have = ".".join(map(str, version))
        return Finding(
            False, f"{tool.name} {have} is older than {wanted}", f"upgrade it: {tool.install}", tool.required
        )
    return Finding(True, f"{tool.name} {'.'.join(map(str, version))} (>= {wanted})", required=tool.required)


def check_docker_daemon(run: Runner = _run) -> Finding:
    """The engine answers and is at least DOCKER_MINIMUM (kind's --cgroupns=private)."""
    answer = ask(run, ("docker", "info", "--format", "{{.ServerVersion}}"))
    if not answer.ok or not answer.out.strip():
        return Finding(
            False,
            f"the Docker engine is not reachable ({answer.detail})",
            "start it (Linux: sudo systemctl start docker; macOS/Windows: start Docker Desktop), "
            "and make sure your user may use it: sudo usermod -aG docker $USER; "
            "on a host without one, as root: make dockerd (this project's own engine, engine/dockerd.sh)",
        )
    reported = answer.out.strip()
    wanted = ".".join(map(str, DOCKER_MINIMUM[:2]))
    why = f"kind starts its nodes with --cgroupns=private, which Docker Engine has from {wanted}"
    version = parse_version(reported)
    if version is None:
        return Finding(
            False,
            f"Docker engine {reported!r}: could not read its version; {why}",
            "check `docker info --format '{{.ServerVersion}}'`",
            required=False,
        )
    if version < DOCKER_MINIMUM:
        return Finding(
            False,
            f"Docker engine {reported} is older than {wanted}: {why}",
            f"upgrade Docker Engine to {wanted} or newer: https://docs.docker.com/engine/install/",
        )
    return Finding(True, f"Docker engine {reported} reachable (>= {wanted})")


# kind's own advice for multi-node clusters (known issue "Pod errors due to too many open files").
INOTIFY_MINIMUM = {"max_user_watches": 524288, "max_user_instances": 512}


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _read_bytes(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _is_dir(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:  # is_dir() lets PermissionError through
        return False


@dataclass(frozen=True)
class HostFiles:
    """The host's files as the preflight reads them; every read fails soft (None, False)."""

    read_text: Callable[[str], str | None] = _read_text
    read_bytes: Callable[[str], bytes | None] = _read_bytes
    is_dir: Callable[[str], bool] = _is_dir
    release: str = field(default_factory=platform.release)  # the running kernel (uname -r)


def required_modules(config: LabConfig) -> tuple[str, ...]:
    """Kernel modules the mode's datapath needs on the Docker host (kind nodes share its kernel)."""
    protocol = config.facts.tunnel_protocol
    return (protocol,) if protocol else ()


def kernel_config(files: HostFiles) -> tuple[str, dict[str, str]] | None:
    """(where, {CONFIG_X: "y" | "m" | "n"}) of the running kernel, if a readable copy exists."""
    for path in ("/proc/config.gz", f"/boot/config-{files.release}"):
        data = files.read_bytes(path)
        if data is None:
            continue
        try:
            text = (gzip.decompress(data) if path.endswith(".gz") else data).decode()
        except (OSError, EOFError, zlib.error, UnicodeDecodeError):
            continue  # unreadable: another source may still answer
        options = dict(re.findall(r"^(CONFIG_\w+)=(\S+)", text, re.M))
        options.update(dict.fromkeys(re.findall(r"^# (CONFIG_\w+) is not set", text, re.M), "n"))
        return path, options
    return None


def _lists_module(listing: str | None, module: str) -> bool | None:
    """Whether modules.builtin / modules.dep name <module>.ko[.xz|.zst|...]; None if unreadable."""
    if listing is None:
        return None
    return re.search(rf"(^|/){re.escape(module)}\.ko(\.\w+)?(:|$)", listing, re.M) is not None


def _built_in(module: str, config: LabConfig, files: HostFiles) -> Finding | None:
    """Loaded or built in, or certainly absent from this kernel; None when these sources cannot tell.

    /sys/module/<name> exists for a loaded module and for a built-in one with parameters or a
    version (vxlan built in holds only `parameters` and `version`); a built-in module with neither
    has no entry, so modules.builtin and the kernel config are asked too.
    """
    lib = f"/lib/modules/{files.release}"
    if files.is_dir(f"/sys/module/{module}"):
        return Finding(True, f"kernel module {module} is loaded or built in (/sys/module/{module})")
    if _lists_module(files.read_text(f"{lib}/modules.builtin"), module):
        return Finding(True, f"kernel module {module} is built in ({lib}/modules.builtin)")
    symbol = f"CONFIG_{module.upper()}"
    kconfig = kernel_config(files)
    state = kconfig[1].get(symbol, "n") if kconfig else "?"
    if kconfig and state == "y":
        return Finding(True, f"kernel module {module} is built in ({symbol}=y in {kconfig[0]})")
    if kconfig and state == "n":
        return Finding(
            False,
            f"this kernel ({files.release}) was built without {module} ({symbol} is not set in {kconfig[0]}); "
            f"mode {config.mode} needs it",
            f"run the lab on a kernel with {symbol}=m or =y (distribution kernels ship it as a module), "
            "or use a mode without this tunnel",
        )
    return None


def _loadable(module: str, config: LabConfig, files: HostFiles, run: Runner) -> Finding:
    """Installed for this kernel (modules.dep), else as modinfo (kmod) says; no kmod is a warning."""
    lib = f"/lib/modules/{files.release}"
    fix = f"sudo modprobe {module}   (or install your distribution's extra kernel modules package)"
    missing = f"kernel module {module} is neither loaded nor installed; mode {config.mode} needs it"
    installed = _lists_module(files.read_text(f"{lib}/modules.dep"), module)
    if installed is not None:
        if installed:
            return Finding(True, f"kernel module {module} is installed, so loadable ({lib}/modules.dep)")
        return Finding(False, missing, fix)
    answer = ask(run, ("modinfo", module))
    if answer.could_not_run:
        return Finding(
            False,
            f"could not tell whether kernel module {module} is available: /sys/module/{module}, "
            f"{lib}/modules.dep and the kernel config are absent, and {answer.could_not_run}",
            f"{fix}; modinfo and modprobe come with kmod (sudo apt-get install kmod)",
            required=False,
        )
    if answer.ok:
        return Finding(True, f"kernel module {module} is loadable (modinfo; the kernel loads it on demand)")
    return Finding(False, missing, fix)


def check_kernel_module(module: str, config: LabConfig, files: HostFiles, run: Runner) -> Finding:
    """Each source asked in turn, none of them a tool that must be installed."""
    return _built_in(module, config, files) or _loadable(module, config, files, run)


def check_kernel_modules(config: LabConfig, files: HostFiles, run: Runner = _run) -> list[Finding]:
    return [check_kernel_module(m, config, files, run) for m in required_modules(config)]


def check_inotify(files: HostFiles) -> list[Finding]:
    findings = []
    for name, minimum in INOTIFY_MINIMUM.items():
        text = files.read_text(f"/proc/sys/fs/inotify/{name}")
        try:
            value = int((text or "").strip())
        except ValueError:
            findings.append(
                Finding(
                    False,
                    f"could not read fs.inotify.{name} (/proc/sys/fs/inotify/{name})",
                    f"check: sysctl fs.inotify.{name}  (multi-node kind wants at least {minimum})",
                    required=False,
                )
            )
            continue
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


def check_cgroups(root: Path = cgroups.CGROUP_ROOT) -> Finding:
    """Which cgroup version the host runs; on v1 the kind config lets the kubelet run (host/cgroups.py)."""
    version = cgroups.cgroup_version(root)
    if version == 1:
        return Finding(True, f"cgroup v1 host ({root} has v1 hierarchies only): {cgroups.V1_REASON}")
    if version == 2:
        return Finding(True, f"cgroup v2 host ({root} is the unified hierarchy)")
    return Finding(
        False, f"could not tell the cgroup version from {root}", "check: mount | grep cgroup", required=False
    )


def _inspected_networks(text: str) -> list[dict[str, Any]] | None:
    """`docker network inspect` JSON: [{Name, IPAM: {Config: [{Subnet}, ...]}}, ...]; None if not that."""
    try:
        networks = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(networks, list):
        return None
    return [n for n in networks if isinstance(n, dict)]


def _subnets(network: dict[str, Any]) -> list[ipaddress.IPv4Network]:
    ipam = network.get("IPAM")
    configs = ipam.get("Config") if isinstance(ipam, dict) else None
    nets = []
    for entry in configs if isinstance(configs, list) else []:
        try:
            net = ipaddress.ip_network(
                str(entry.get("Subnet", "")) if isinstance(entry, dict) else "", strict=False
            )
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            nets.append(net)
    return nets


def check_underlay_free(config: LabConfig, network_name: str, run: Runner = _run) -> Finding:
    """No other Docker network may hold (part of) the lab's underlay subnet."""
    listed = ask(run, ("docker", "network", "ls", "--format", "{{.Name}}"))
    if not listed.ok:
        return Finding(
            False,
            f"could not list Docker networks to check the underlay {config.underlay} ({listed.detail})",
            "check `docker network ls`",
        )
    names = [n for n in listed.out.split() if n and n != network_name]
    clashes = []
    if names:
        # A network removed after `ls` makes inspect exit 1, but it still prints the others.
        inspect = ask(run, ("docker", "network", "inspect", *names))
        networks = _inspected_networks(inspect.out) if not inspect.could_not_run else None
        if networks is None or (not networks and not inspect.ok):
            return Finding(
                False,
                f"could not read the Docker networks' subnets to check the underlay {config.underlay} "
                f"({inspect.detail if not inspect.ok else 'docker network inspect printed no JSON list'})",
                f"check `docker network inspect {' '.join(names)}`",
            )
        for network in networks:
            clashes += [
                f"{network.get('Name')} ({n})" for n in _subnets(network) if n.overlaps(config.underlay)
            ]
    if clashes:
        return Finding(
            False,
            f"the underlay {config.underlay} is already used by docker network {', '.join(clashes)}",
            f"pulumi config set {key('underlaySubnet')} <a free /24, e.g. 172.30.9.0/24> -s {config.stack}",
        )
    return Finding(True, f"underlay {config.underlay} is free on this Docker host")


# --- Provider plugins: with downloads off, `pulumi up` stops at the first one that is not installed.

ACQUISITION_OFF = "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"

# Provider modules the Go module proxy of this project's machines serves at no version
# (`go list -m -versions`; supply/toolchain/recipe.toml): `make toolchain` has such a plugin only as the
# project's own build at the recipe's version (docker: bridged from kreuzwerker's provider), or not at all.
PROXY_REFUSES = {
    # command: github.com/pulumi/pulumi-command/provider is refused too, but `make toolchain` builds the
    # project's own command plugin (supply/toolchain/command), so it is buildable, not listed here.
    "docker": "github.com/pulumi/pulumi-docker/provider/v5",
}


def check_node_image(config: LabConfig, run: Runner = _run) -> Finding:
    """An image ID or `local:` tag must already be in the engine: kind would otherwise try a registry
    (lab/image_ref.py); a pinned registry image is pulled by kind when missing, so that is only said."""
    image = config.node_image
    answer = ask(run, ("docker", "image", "inspect", "--format", "{{.Id}}", image.ref))
    if answer.ok and answer.out.strip():
        return Finding(True, f"node image {image.ref} is in the Docker engine ({answer.out.strip()[:19]})")
    if not image.must_be_local:
        return Finding(
            False,
            f"node image {image.ref} is not in the Docker engine yet; kind will pull it by digest, "
            "which needs its registry",
            f"where no registry can be reached, build one here with `make images` and set the reference "
            f"it prints: pulumi config set {key('nodeImage')} local:<repository>:<tag> -s {config.stack}",
            required=False,
        )
    rebuilt = (
        " (an image ID names one import: after a re-import use the local: tag)"
        if (image.source is ImageSource.IMAGE_ID)
        else ""
    )
    return Finding(
        False,
        f"{key('nodeImage')}: the {image.source.value} {image.ref} is not in the Docker engine "
        f"({answer.detail}), and a local image is never pulled",
        f"build it with `make images`, then set the reference it prints: "
        f"pulumi config set {key('nodeImage')} local:<repository>:<tag> -s {config.stack}{rebuilt}",
    )


def _truthy(value: str | None) -> bool:
    """As the Pulumi CLI reads a boolean variable: "1" or "true" in any case."""
    return value is not None and (value == "1" or value.lower() == "true")


def wanted_plugins(venv: Path) -> dict[str, str]:
    """{name: version} of the resource plugins the venv's Pulumi packages ask for (pulumi-plugin.json)."""
    wanted: dict[str, str] = {}
    for path in sorted(venv.glob("lib/python3*/site-packages/*/pulumi-plugin.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict) or data.get("resource") is not True:
            continue
        name, version = data.get("name"), data.get("version")
        if isinstance(name, str) and isinstance(version, str):
            wanted[name] = version.removeprefix("v")
    return wanted


def _listed_plugins(text: str) -> set[tuple[str, str]] | None:
    """(name, version) of each resource plugin in `pulumi plugin ls --json`; None if not that JSON."""
    try:
        listed = json.loads(text)
    except json.JSONDecodeError:
        return None
    if listed is None:  # an empty Go slice
        return set()
    if not isinstance(listed, list):
        return None
    return {
        (p["name"], p["version"].removeprefix("v"))
        for p in listed
        if isinstance(p, dict)
        and p.get("kind") == "resource"
        and isinstance(p.get("name"), str)
        and isinstance(p.get("version"), str)
    }


def _toolchain_plugins() -> set[tuple[str, str]]:
    """(name, version) of the providers `make toolchain` builds; none if its recipe is unreadable."""
    from supply import toolchain  # noqa: PLC0415 (standard library only, but only this check needs it)

    try:
        recipe = toolchain.load_recipe()
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        toolchain.ToolchainError,
    ):  # TOMLDecodeError is a ValueError
        return set()
    return {(b.plugin, b.version.removeprefix("v")) for b in recipe.binaries if b.plugin}


def own_builds(env: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """{(name, version): what it is} of the plugins that are the project's own builds, when the
    engine's PULUMI_HOME is a toolchain `make toolchain` built (elsewhere they are Pulumi's own)."""
    from supply import toolchain  # noqa: PLC0415

    home = env.get("PULUMI_HOME", "")
    if not home or not Path(home).is_relative_to(toolchain.cache_root(env)):
        return {}
    try:
        recipe = toolchain.load_recipe()
    except (OSError, ValueError, KeyError, TypeError, toolchain.ToolchainError):
        return {}
    return {(b.plugin, b.version.removeprefix("v")): b.own_build for b in recipe.binaries if b.own_build}


def _plugin_fix(name: str, version: str, buildable: set[tuple[str, str]]) -> str:
    online = (
        f"on a host with internet, unset {ACQUISITION_OFF} (the engine then downloads it) "
        f"or run `pulumi plugin install resource {name} {version}`"
    )
    if (name, version) in buildable:
        return f"{online}; offline, `make toolchain` builds it into the toolchain's PULUMI_HOME"
    own = sorted(v for n, v in buildable if n == name)
    if name in PROXY_REFUSES and own:
        return (
            f"{online}; offline, `make toolchain` builds {name} only at {', '.join(own)} (the project's own "
            f"build: the Go module proxy serves no version of {PROXY_REFUSES[name]}), so pin "
            f"pulumi-{name}=={own[-1]} in pyproject.toml"
        )
    if name in PROXY_REFUSES:
        return (
            f"{online}; on this offline machine it cannot be had: the Go module proxy serves no version "
            f"of {PROXY_REFUSES[name]}, so `make toolchain` cannot build it"
        )
    return f"{online}; `make toolchain` does not build {name} {version}"


def check_plugins(
    env: Mapping[str, str],
    venv: Path,
    run: Runner = _run,
    buildable: Callable[[], set[tuple[str, str]]] = _toolchain_plugins,
) -> list[Finding]:
    """With automatic acquisition off, each resource plugin the venv's packages ask for is installed.

    The engine then never downloads one, and `pulumi up` stops at the first provider it cannot
    find (after creating whatever came before it). With acquisition on there is nothing to check.
    """
    if not _truthy(env.get(ACQUISITION_OFF)):
        return []
    wanted = wanted_plugins(venv)
    if not wanted:
        return []
    answer = ask(run, ("pulumi", "plugin", "ls", "--json"))
    installed = _listed_plugins(answer.out) if answer.ok else None
    if installed is None:
        why = answer.detail if not answer.ok else "`pulumi plugin ls --json` printed no JSON list"
        return [
            Finding(
                False,
                f"could not list the installed Pulumi plugins to look for {', '.join(sorted(wanted))} ({why})",
                "check `pulumi plugin ls --json` (PULUMI_HOME decides where plugins live)",
                required=False,
            )
        ]
    findings = []
    own = own_builds(env)
    for name, version in sorted(wanted.items()):
        if (name, version) in installed:
            said = f": {own[name, version]}" if (name, version) in own else ""
            findings.append(Finding(True, f"resource plugin {name} {version} is installed{said}"))
            continue
        findings.append(
            Finding(
                False,
                f"resource plugin {name} {version} (asked for by the program's pulumi packages) is not "
                f"installed, and {ACQUISITION_OFF}=true forbids downloading it: `pulumi up` would stop at "
                f"\"no resource plugin 'pulumi-resource-{name}' found\"",
                _plugin_fix(name, version, buildable()),
            )
        )
    return findings


def preflight(
    run: Runner = _run,
    which: Callable[[str], str | None] | None = None,
    config: LabConfig | None = None,
    files: HostFiles | None = None,
    system: str | None = None,
    env: Mapping[str, str] | None = None,
    venv: Path | None = None,
    cgroup_root: Path = cgroups.CGROUP_ROOT,
    creates: bool = True,
) -> list[Finding]:
    """`env`: the environment pulumi will run in (None skips the plugin check); `venv`: the program's.

    `creates`: False for a preview, which creates nothing: what only a created lab needs (the
    kernel's tunnel module, inotify watches, a free underlay, the node image) is then a warning.
    """
    findings = [check_tool(t, run, which or shutil.which) for t in TOOLS]
    if env is not None:
        findings += check_plugins(env, venv or Path(sys.prefix), run)
    if not findings[0].ok:
        return findings
    daemon = check_docker_daemon(run)
    findings.append(daemon)
    if config is not None:
        lab: list[Finding] = []
        if (system or platform.system()) == "Linux":  # Docker Desktop keeps its kernel in a VM
            lab += check_kernel_modules(config, files or HostFiles(), run)
            lab += check_inotify(files or HostFiles())
            lab.append(check_cgroups(cgroup_root))
        if daemon.ok:
            from lab.plan import plan  # noqa: PLC0415 (plan imports config; keep this module light)

            lab.append(check_underlay_free(config, plan(config).network_name, run))
            lab.append(check_node_image(config, run))
        findings += lab if creates else [only_for_up(f) for f in lab]
    return findings


def only_for_up(finding: Finding) -> Finding:
    """A problem only a created lab would meet, said as a warning before a preview."""
    if finding.ok or not finding.required:
        return finding
    return replace(
        finding, what=f"{finding.what} (a preview creates nothing; `make up` needs it)", required=False
    )


def _stack_config(stack: str) -> LabConfig | None:
    """The stack's validated config, or None after saying on stderr what is wrong with it."""
    import yaml  # noqa: PLC0415

    from lab import stack_file  # noqa: PLC0415

    path = stack_file.STACKS_DIR / f"Pulumi.{stack}.yaml"
    try:
        return with_offline_supply(
            stack_file.stack_config(stack, stack_file.STACKS_DIR), offline.load(os.environ)
        )
    except FileNotFoundError:
        problem = f"no stack file {path}; the stacks are {', '.join(_stacks(stack_file.STACKS_DIR))}"
    except (LabConfigError, offline.OfflineSupplyError) as exc:
        problem = str(exc)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        problem = f"cannot read {path}: {exc.__class__.__name__}: {exc}"
    print(f"preflight: stack {stack}: {problem}", file=sys.stderr)
    return None


def _stacks(stacks_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="", help="the stack about to be brought up (for the message only)")
    parser.add_argument(
        "--for",
        dest="command",
        choices=("up", "preview"),
        default="up",
        help="what comes next: a preview creates nothing, so host limits only `up` meets are warnings",
    )
    args = parser.parse_args(argv)
    config = None
    if args.stack:
        config = _stack_config(args.stack)
        if config is None:
            return 2
    # make runs this with the venv's python, the one PULUMI_PYTHON_CMD runs the program with.
    findings = preflight(config=config, env=os.environ, venv=Path(sys.prefix), creates=args.command == "up")
    for f in findings:
        print(f)
    failed = [f for f in findings if not f.ok and f.required]
    if failed:
        print(
            f"\npreflight: {len(failed)} problem(s) to fix before `make {args.command}{' STACK=' + args.stack if args.stack else ''}`"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
