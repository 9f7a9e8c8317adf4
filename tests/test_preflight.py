"""Preflight messages: each problem is named with the command that fixes it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence

import pytest

from host.preflight import TOOLS, check_docker_daemon, check_tool, main, parse_version, preflight


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
    "docker image": (0, "sha256:" + "ab" * 32 + "\n", ""),  # the node image is in the engine
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
    # Every tool the README's prerequisites table names, and the engine itself, were asked about.
    assert [str(f).split("] ", 1)[1].split()[0] for f in findings] == [
        "docker",
        "kind",
        "pulumi",
        "kubectl",
        "Docker",
    ]


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
    assert "make dockerd" in str(finding)


def test_offline_fixes_name_make_toolchain() -> None:
    fixes = {tool.name: tool.install for tool in TOOLS}
    assert "make toolchain" in fixes["kind"] and "make toolchain" in fixes["pulumi"]


def test_pulumi_minimum_is_the_python_sdk_pin() -> None:
    pin = re.search(r'"pulumi==(\d+)\.(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert pin is not None
    minimum = {tool.name: tool.minimum for tool in TOOLS}["pulumi"]
    assert minimum == tuple(int(g) for g in pin.groups())


def test_main_fails_with_a_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("host.preflight.shutil.which", lambda name: None)
    assert main(["--stack", "bgp"]) == 1
    out = capsys.readouterr().out
    assert "docker is not on PATH" in out and "before `make up STACK=bgp`" in out


# --- host checks that depend on the stack ------------------------------------------------------

import gzip  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from host.preflight import (  # noqa: E402
    Finding,
    HostFiles,
    check_inotify,
    check_kernel_modules,
    check_underlay_free,
)
from lab.config import parse_config  # noqa: E402

RELEASE = "6.18.44-lab"


def host(files: dict[str, str | bytes] | None = None, dirs: tuple[str, ...] = ()) -> HostFiles:
    """A host that has exactly these files and directories (a directory holds its files' parents)."""
    files = files or {}
    known_dirs = set(dirs) | {str(Path(f).parent) for f in files}

    def read_bytes(path: str) -> bytes | None:
        value = files.get(path)
        return value.encode() if isinstance(value, str) else value

    def read_text(path: str) -> str | None:
        value = files.get(path)
        return value.decode() if isinstance(value, bytes) else value

    return HostFiles(
        read_text=read_text, read_bytes=read_bytes, is_dir=known_dirs.__contains__, release=RELEASE
    )


def raising(exc: BaseException) -> Callable[[Sequence[str]], subprocess.CompletedProcess[str]]:
    """A runner for a command that cannot run at all, as subprocess.run reports it."""

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise exc

    return run


NO_MODINFO = raising(FileNotFoundError(2, "No such file or directory", "modinfo"))
OVERLAY = parse_config({"mode": "overlay"}, "overlay")
GENEVE = parse_config({"mode": "geneve"}, "geneve")


def test_built_in_vxlan_without_modinfo_is_available() -> None:
    """This machine: vxlan built in, /sys/module/vxlan holds only parameters/ and version, no kmod."""
    machine = host({"/sys/module/vxlan/version": "0.1\n"}, dirs=("/sys/module/vxlan/parameters",))
    (finding,) = check_kernel_modules(OVERLAY, machine, NO_MODINFO)
    assert finding.ok and "vxlan" in str(finding)


def test_a_kernel_built_without_geneve_says_so() -> None:
    config = gzip.compress(b"CONFIG_VXLAN=y\n# CONFIG_GENEVE is not set\n")
    (finding,) = check_kernel_modules(GENEVE, host({"/proc/config.gz": config}), NO_MODINFO)
    assert not finding.ok and finding.required
    assert "CONFIG_GENEVE is not set" in str(finding) and "mode geneve" in str(finding)


def test_built_in_per_kernel_config_without_a_sys_module_entry() -> None:
    """A built-in module without parameters or a version has no /sys/module entry."""
    for path, text in (
        ("/proc/config.gz", gzip.compress(b"CONFIG_GENEVE=y\n")),
        (f"/boot/config-{RELEASE}", b"CONFIG_GENEVE=y\n"),
        (f"/lib/modules/{RELEASE}/modules.builtin", b"kernel/drivers/net/geneve.ko\n"),
    ):
        (finding,) = check_kernel_modules(GENEVE, host({path: text}), NO_MODINFO)
        assert finding.ok and "built in" in str(finding), path


def test_an_installed_module_is_loadable_and_a_missing_one_is_not() -> None:
    deps = f"/lib/modules/{RELEASE}/modules.dep"
    listed = host({deps: "kernel/drivers/net/vxlan/vxlan.ko.zst: kernel/net/ipv4/udp_tunnel.ko.zst\n"})
    (finding,) = check_kernel_modules(OVERLAY, listed, NO_MODINFO)
    assert finding.ok and "loadable" in str(finding)
    (missing,) = check_kernel_modules(GENEVE, listed, NO_MODINFO)
    assert not missing.ok and missing.required and "sudo modprobe geneve" in str(missing)


def test_modinfo_answers_when_nothing_else_does() -> None:
    (finding,) = check_kernel_modules(
        OVERLAY, host(), fake_runner({"modinfo vxlan": (0, "filename: vxlan.ko", "")})
    )
    assert finding.ok and "loadable" in str(finding)
    (missing,) = check_kernel_modules(
        GENEVE, host(), fake_runner({"modinfo geneve": (1, "", "modinfo: ERROR: Module geneve not found.")})
    )
    assert not missing.ok and missing.required and "sudo modprobe geneve" in str(missing)


@pytest.mark.parametrize(
    "failure",
    [
        FileNotFoundError(2, "No such file or directory", "modinfo"),
        PermissionError(13, "Permission denied", "modinfo"),
        subprocess.TimeoutExpired(["modinfo", "vxlan"], 30),
    ],
    ids=["not installed", "not executable", "hangs"],
)
def test_a_modinfo_that_cannot_run_is_a_warning_with_its_fix(failure: BaseException) -> None:
    (finding,) = check_kernel_modules(OVERLAY, host(), raising(failure))
    assert not finding.ok and not finding.required
    assert "could not tell" in str(finding) and "modprobe vxlan" in str(finding)


def test_a_corrupt_kernel_config_is_skipped_not_a_crash() -> None:
    broken = host({"/proc/config.gz": b"\x1f\x8b\x08 not really gzip"})
    (finding,) = check_kernel_modules(OVERLAY, broken, NO_MODINFO)
    assert not finding.ok and not finding.required


def test_no_module_for_native_modes() -> None:
    assert check_kernel_modules(parse_config({"mode": "static"}, "static"), host(), NO_MODINFO) == []


def test_real_host_files_fail_soft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real readers: missing, unreadable or a directory give None/False, never an exception."""
    files = HostFiles()
    assert files.read_text(str(tmp_path / "absent")) is None
    assert files.read_text(str(tmp_path)) is None  # a directory
    assert files.read_bytes(str(tmp_path / "absent")) is None
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    assert files.read_text(str(tmp_path / "binary")) is None
    assert files.is_dir(str(tmp_path)) and not files.is_dir(str(tmp_path / "absent"))

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    for method in ("read_text", "read_bytes", "is_dir"):
        monkeypatch.setattr(Path, method, denied)
    assert files.read_text("/proc/config.gz") is None
    assert files.read_bytes("/proc/config.gz") is None
    assert not files.is_dir("/sys/module/vxlan")


def test_low_inotify_limits_print_the_sysctl() -> None:
    low = host(
        {
            "/proc/sys/fs/inotify/max_user_watches": "8192\n",
            "/proc/sys/fs/inotify/max_user_instances": "1024\n",
        }
    )
    watches, instances = check_inotify(low)
    assert not watches.ok and "sudo sysctl -w fs.inotify.max_user_watches=524288" in str(watches)
    assert instances.ok


def test_unreadable_inotify_limits_are_warnings() -> None:
    odd = host({"/proc/sys/fs/inotify/max_user_watches": "lots\n"})
    watches, instances = check_inotify(odd)
    assert not watches.ok and not watches.required and "could not read" in str(watches)
    assert (
        not instances.ok
        and not instances.required
        and "sysctl fs.inotify.max_user_instances" in str(instances)
    )


def test_underlay_already_used_by_another_network() -> None:
    config = parse_config({"mode": "overlay"}, "overlay")
    host_docker = fake_runner(
        {
            "docker network": (0, "bridge\ncdl-overlay\nother\n", ""),
        }
    )

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[:3] == ("docker", "network", "inspect"):
            assert "cdl-overlay" not in argv  # the lab's own network is not a clash
            out = json.dumps(
                [
                    {
                        "Name": "bridge",
                        "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]},
                    },
                    {
                        "Name": "other",
                        "IPAM": {"Config": [{"Subnet": "fd00::/64"}, {"Subnet": "172.30.0.0/16"}]},
                    },
                    {"Name": "none", "IPAM": {"Config": None}},
                ]
            )
            return subprocess.CompletedProcess(list(argv), 0, out, "")
        result: subprocess.CompletedProcess[str] = host_docker(argv)
        return result

    finding = check_underlay_free(config, "cdl-overlay", run)
    assert not finding.ok
    assert "other (172.30.0.0/16)" in str(finding)
    assert "pulumi config set cilium-datapath-lab:underlaySubnet" in str(finding) and "-s overlay" in str(
        finding
    )


def _networks(ls: tuple[int, str, str], inspect: tuple[int, str, str]):  # type: ignore[no-untyped-def]
    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        code, out, err = ls if argv[:3] == ("docker", "network", "ls") else inspect
        return subprocess.CompletedProcess(list(argv), code, out, err)

    return run


def test_underlay_free() -> None:
    inspect = json.dumps([{"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}}])
    assert check_underlay_free(OVERLAY, "cdl-overlay", _networks((0, "bridge\n", ""), (0, inspect, ""))).ok


@pytest.mark.parametrize(
    ("ls", "inspect", "said"),
    [
        ((1, "", "permission denied while trying to connect"), (0, "[]", ""), "could not list"),
        ((0, "bridge\n", ""), (0, "[{not json", ""), "could not read"),
        ((0, "bridge\n", ""), (0, '{"Name": "bridge"}', ""), "could not read"),
        ((0, "bridge\n", ""), (1, "", "Error: No such network: bridge"), "could not read"),
    ],
    ids=["ls fails", "bad JSON", "not a list", "inspect fails"],
)
def test_underlay_check_that_cannot_see_the_networks_says_so(
    ls: tuple[int, str, str], inspect: tuple[int, str, str], said: str
) -> None:
    finding = check_underlay_free(OVERLAY, "cdl-overlay", _networks(ls, inspect))
    assert not finding.ok and said in str(finding) and "docker network" in str(finding)


def test_a_network_removed_between_ls_and_inspect_is_not_a_clash() -> None:
    """inspect prints the networks it found (exit 1 for the one gone): those are still checked."""
    inspect = json.dumps([{"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}}])
    run = _networks((0, "bridge\ngone\n", ""), (1, inspect, "Error: No such network: gone"))
    assert check_underlay_free(OVERLAY, "cdl-overlay", run).ok


def test_full_preflight_for_a_stack_on_linux() -> None:
    files = host(
        {
            "/proc/sys/fs/inotify/max_user_watches": "524288",
            "/proc/sys/fs/inotify/max_user_instances": "512",
        }
    )
    findings = preflight(
        fake_runner({**HEALTHY, "modinfo geneve": (1, "", "not found")}),
        present,
        config=GENEVE,
        files=files,
        system="Linux",
    )
    failed = [str(f) for f in findings if not f.ok]
    assert len(failed) == 1 and "geneve" in failed[0]
    on_mac = preflight(fake_runner(HEALTHY), present, config=GENEVE, files=host(), system="Darwin")
    assert all(f.ok for f in on_mac)


def test_before_a_preview_what_only_up_needs_is_a_warning() -> None:
    """A preview creates nothing: no geneve module and too few inotify watches do not stop it."""
    files = host(
        {"/proc/sys/fs/inotify/max_user_watches": "100", "/proc/sys/fs/inotify/max_user_instances": "512"}
    )
    runner = fake_runner({**HEALTHY, "modinfo geneve": (1, "", "not found")})
    for_up = preflight(runner, present, config=GENEVE, files=files, system="Linux")
    for_preview = preflight(runner, present, config=GENEVE, files=files, system="Linux", creates=False)
    up_failed = [f for f in for_up if not f.ok and f.required]
    assert len(up_failed) == 2 and {"geneve" in f.what or "inotify" in f.what for f in up_failed} == {True}
    assert [f for f in for_preview if not f.ok and f.required] == []
    warned = [f for f in for_preview if not f.ok]
    assert len(warned) == 2 and all("`make up` needs it" in f.what for f in warned)
    assert [f.fix for f in warned] == [f.fix for f in up_failed]


def test_a_tool_a_preview_needs_still_fails_it() -> None:
    findings = preflight(fake_runner(HEALTHY), lambda name: None, config=GENEVE, files=host(), creates=False)
    assert any(not f.ok and f.required for f in findings)


def test_the_preflight_says_which_command_it_is_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "host.preflight.preflight", lambda **kw: [Finding(False, f"creates={kw['creates']}", "x")]
    )
    assert main(["--for", "preview"]) == 1
    out = capsys.readouterr().out
    assert "creates=False" in out and "before `make preview`" in out
    assert main([]) == 1
    out = capsys.readouterr().out
    assert "creates=True" in out and "before `make up`" in out


@pytest.mark.parametrize(
    "failure",
    [PermissionError(13, "Permission denied", "kind"), subprocess.TimeoutExpired(["kind", "version"], 30)],
    ids=["not executable", "hangs"],
)
def test_a_tool_that_cannot_run_is_a_finding(failure: BaseException) -> None:
    kind = next(t for t in TOOLS if t.name == "kind")
    finding = check_tool(kind, raising(failure), present)
    assert not finding.ok and finding.required and "kind" in str(finding) and "fix:" in str(finding)


def test_a_docker_that_hangs_is_unreachable() -> None:
    finding = check_docker_daemon(raising(subprocess.TimeoutExpired(["docker", "info"], 30)))
    assert not finding.ok and "not reachable" in str(finding) and "did not answer" in str(finding)


def test_an_unknown_or_broken_stack_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("lab.stack_file.STACKS_DIR", tmp_path)
    assert main(["--stack", "nope"]) == 2
    assert "no stack file" in capsys.readouterr().err
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  cilium-datapath-lab:mode: vxlan\n")
    assert main(["--stack", "bad"]) == 2
    assert "cilium-datapath-lab:mode" in capsys.readouterr().err
    (tmp_path / "Pulumi.odd.yaml").write_text("[not, a, mapping\n")
    assert main(["--stack", "odd"]) == 2
    assert "Pulumi.odd.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("stack", ["overlay", "geneve", "native-auto", "static", "bgp"])
def test_preflight_on_this_very_machine_never_crashes(stack: str) -> None:
    """Whatever this host has or lacks (here: no Docker daemon, no kmod, vxlan built in), the
    preflight answers with findings and an exit code, never a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "host.preflight", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout.startswith("[")


# --- which Docker the lab needs -----------------------------------------------------------------

from host.preflight import DOCKER_MINIMUM  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def engine(version: str):  # type: ignore[no-untyped-def]
    return fake_runner({"docker info": (0, f"{version}\n", "")})


def test_an_engine_older_than_20_10_fails_with_kinds_reason() -> None:
    old = check_docker_daemon(engine("19.03.15"))
    assert not old.ok and old.required
    assert "19.03.15" in str(old) and "20.10" in str(old) and "--cgroupns=private" in str(old)


def test_every_stack_bgp_included_runs_on_debians_20_10_engine() -> None:
    """The FRR routers need no per-endpoint sysctls (Engine 27.0) any more."""
    for version in ("20.10.0", "20.10.24+dfsg1", "26.1.4", "28.2.2"):
        finding = check_docker_daemon(engine(version))
        assert finding.ok and version in str(finding), finding
    debian = fake_runner(
        {**HEALTHY, "docker version": (0, "20.10.24+dfsg1\n", ""), "docker info": (0, "20.10.24+dfsg1\n", "")}
    )
    bgp = parse_config({"mode": "bgp"}, "bgp")
    assert all(f.ok for f in preflight(debian, present, config=bgp, files=host(), system="Darwin"))


def test_an_engine_version_that_cannot_be_read_is_a_warning() -> None:
    finding = check_docker_daemon(engine("unknown"))
    assert not finding.ok and not finding.required and "20.10" in str(finding)


def test_readme_code_and_preflight_state_one_docker_version() -> None:
    """README's prerequisite, the FRR router's comment and the preflight say the same release."""
    wanted = ".".join(map(str, DOCKER_MINIMUM[:2]))
    readme_row = next(
        line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| Docker engine |")
    )
    docker = next(t for t in TOOLS if t.name == "docker")
    assert docker.minimum == DOCKER_MINIMUM  # the CLI runs kind's --cgroupns=private too
    assert f"{wanted}+ (engine and CLI) for every stack" in readme_row
    assert re.findall(r"\b(\d+\.\d+)\+", readme_row) == [wanted]
    frr = (ROOT / "components" / "frr_router.py").read_text()
    assert re.findall(r"works on Docker Engine (\d+\.\d+) and every later one", frr) == [wanted]
