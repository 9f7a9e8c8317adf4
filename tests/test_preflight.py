"""Preflight messages: each problem is named with the command that fixes it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence

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


# --- host checks that depend on the stack ------------------------------------------------------

from lab.config import parse_config  # noqa: E402
from lab.preflight import check_inotify, check_kernel_modules, check_underlay_free  # noqa: E402


def reader(files: dict[str, str]) -> Callable[[str], str | None]:
    return files.get


def test_vxlan_module_loaded_passes_and_missing_geneve_says_how_to_fix() -> None:
    overlay = parse_config({"mode": "overlay"}, "overlay")
    loaded = check_kernel_modules(overlay, reader({"/sys/module/vxlan/initstate": "live\n"}), fake_runner({}))
    assert [f.ok for f in loaded] == [True]
    geneve = parse_config({"mode": "geneve"}, "geneve")
    missing = check_kernel_modules(
        geneve,
        reader({}),
        fake_runner({"modinfo geneve": (1, "", "modinfo: ERROR: Module geneve not found.")}),
    )
    assert not missing[0].ok and "sudo modprobe geneve" in str(missing[0])
    assert check_kernel_modules(parse_config({"mode": "static"}, "static"), reader({}), fake_runner({})) == []


def test_loadable_module_is_enough() -> None:
    overlay = parse_config({"mode": "overlay"}, "overlay")
    (finding,) = check_kernel_modules(
        overlay, reader({}), fake_runner({"modinfo vxlan": (0, "filename: vxlan.ko", "")})
    )
    assert finding.ok and "loadable" in str(finding)


def test_low_inotify_limits_print_the_sysctl() -> None:
    low = reader(
        {
            "/proc/sys/fs/inotify/max_user_watches": "8192\n",
            "/proc/sys/fs/inotify/max_user_instances": "1024\n",
        }
    )
    watches, instances = check_inotify(low)
    assert not watches.ok and "sudo sysctl -w fs.inotify.max_user_watches=524288" in str(watches)
    assert instances.ok


def test_underlay_already_used_by_another_network() -> None:
    config = parse_config({"mode": "overlay"}, "overlay")
    host = fake_runner(
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
        result: subprocess.CompletedProcess[str] = host(argv)
        return result

    finding = check_underlay_free(config, "cdl-overlay", run)
    assert not finding.ok
    assert "other (172.30.0.0/16)" in str(finding)
    assert "pulumi config set cilium-datapath-lab:underlaySubnet" in str(finding) and "-s overlay" in str(
        finding
    )


def test_underlay_free() -> None:
    config = parse_config({"mode": "overlay"}, "overlay")

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[:3] == ("docker", "network", "ls"):
            return subprocess.CompletedProcess(list(argv), 0, "bridge\n", "")
        out = json.dumps([{"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}}])
        return subprocess.CompletedProcess(list(argv), 0, out, "")

    assert check_underlay_free(config, "cdl-overlay", run).ok


def test_full_preflight_for_a_stack_on_linux() -> None:
    config = parse_config({"mode": "geneve"}, "geneve")
    files = {
        "/proc/sys/fs/inotify/max_user_watches": "524288",
        "/proc/sys/fs/inotify/max_user_instances": "512",
    }
    findings = preflight(
        fake_runner({**HEALTHY, "modinfo geneve": (1, "", "not found")}),
        present,
        config=config,
        read=reader(files),
        system="Linux",
    )
    failed = [str(f) for f in findings if not f.ok]
    assert len(failed) == 1 and "geneve" in failed[0]
    on_mac = preflight(fake_runner(HEALTHY), present, config=config, read=reader({}), system="Darwin")
    assert all(f.ok for f in on_mac)
