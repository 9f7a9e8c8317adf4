"""host/preflight.py cases a mutation run (`make mutation`) found no test for.

The other preflight tests look for a phrase in a finding; a finding is what the user reads, so
here each branch's finding is compared whole (ok, text, fix, and whether it stops `make up`), and
each command is checked for the exact argv the preflight runs.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from test_preflight import HEALTHY, NO_MODINFO, OVERLAY, RELEASE, fake_runner, host, present, raising

from host import preflight
from host.preflight import (
    ACQUISITION_OFF,
    Answer,
    Finding,
    ask,
    check_cgroups,
    check_docker_daemon,
    check_inotify,
    check_kernel_modules,
    check_node_image,
    check_plugins,
    check_tool,
    check_underlay_free,
    kernel_config,
    only_for_up,
    wanted_plugins,
)
from lab.config import parse_config
from supply.toolchain import Binary, Recipe

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]
KIND = next(t for t in preflight.TOOLS if t.name == "kind")
KUBECTL = next(t for t in preflight.TOOLS if t.name == "kubectl")
GENEVE = parse_config({"mode": "geneve"}, "geneve")
LIB = f"/lib/modules/{RELEASE}"
NODE_IMAGE_KEY = "cilium-datapath-lab:nodeImage"
REGISTRY_REF = OVERLAY.node_image.ref


class Recorder:
    """A runner that answers from a table keyed by the whole argv, and keeps every argv asked."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.asked.append(tuple(argv))
        code, out, err = self.answers.get(tuple(argv), (127, "", f"unexpected {argv}"))
        return subprocess.CompletedProcess(list(argv), code, out, err)


# --- running a command ------------------------------------------------------------------------------


def test_run_gives_text_and_the_exit_status_without_raising() -> None:
    done = preflight._run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


def test_run_stops_a_command_that_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "RUN_TIMEOUT", 0.2)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        preflight._run(["sleep", "3"])
    assert time.monotonic() - started < 2.5


def test_each_way_a_command_fails_to_answer_is_an_answer() -> None:
    timeout = raising(subprocess.TimeoutExpired(["kind", "version"], 30))
    assert ask(timeout, ["kind", "version"]) == Answer(-1, "", "", "`kind` did not answer within 30s")
    missing = raising(FileNotFoundError(2, "No such file or directory", "kind"))
    assert ask(missing, ["kind", "version"]) == Answer(
        -1, "", "", "`kind` could not run: No such file or directory"
    )
    bare = raising(OSError("exec format error"))
    assert ask(bare, ["kind"]) == Answer(-1, "", "", "`kind` could not run: exec format error")
    quiet = fake_runner({"kind version": (0, "", "")})
    assert ask(quiet, ["kind", "version"]) == Answer(0, "", "", "")


# --- tools and the engine ---------------------------------------------------------------------------


def test_a_tool_is_looked_up_by_its_own_name() -> None:
    found = check_tool(KIND, fake_runner(HEALTHY), {"kind": "/usr/local/bin/kind"}.get)
    assert found == Finding(True, "kind 0.32.0 (>= 0.32.0)")


def test_each_tool_finding_whole() -> None:
    install = KIND.install
    assert check_tool(KIND, fake_runner(HEALTHY), lambda name: None) == Finding(
        False, "kind is not on PATH", f"install it: {install}"
    )
    assert check_tool(
        KIND, fake_runner({"kind version": (1, "", "kind: bad\nsegfault\n")}), present
    ) == Finding(
        False,
        "kind: could not read its version (segfault)",
        f"check `kind version`, or reinstall it: {install}",
    )
    old = fake_runner({"kind version": (0, "kind v0.31.9 go1.24", "")})
    assert check_tool(KIND, old, present) == Finding(
        False, "kind 0.31.9 is older than 0.32.0", f"upgrade it: {install}"
    )
    assert check_tool(KUBECTL, fake_runner(HEALTHY), present) == Finding(
        True, "kubectl 1.36.1 (>= 1.34.0)", required=False
    )
    assert check_tool(KUBECTL, old, present).required is False  # the optional tool's failures warn
    assert check_tool(KUBECTL, fake_runner({"kubectl version": (0, "v1.30.0", "")}), present) == Finding(
        False, "kubectl 1.30.0 is older than 1.34.0", f"upgrade it: {KUBECTL.install}", required=False
    )


def test_the_engine_is_asked_for_its_server_version() -> None:
    run = Recorder({("docker", "info", "--format", "{{.ServerVersion}}"): (0, "28.2.2\n", "")})
    assert check_docker_daemon(run) == Finding(True, "Docker engine 28.2.2 reachable (>= 20.10)")
    assert run.asked == [("docker", "info", "--format", "{{.ServerVersion}}")]


WHY_2010 = "kind starts its nodes with --cgroupns=private, which Docker Engine has from 20.10"


@pytest.mark.parametrize(
    ("answer", "finding"),
    [
        (
            (1, "", "Cannot connect to the Docker daemon\n"),
            Finding(
                False,
                "the Docker engine is not reachable (Cannot connect to the Docker daemon)",
                "start it (Linux: sudo systemctl start docker; macOS/Windows: start Docker Desktop), "
                "and make sure your user may use it: sudo usermod -aG docker $USER; "
                "on a host without one, as root: make dockerd (this project's own engine, engine/dockerd.sh)",
            ),
        ),
        (
            (0, "  \n", ""),  # answers, but with no version
            Finding(
                False,
                "the Docker engine is not reachable (no answer)",
                "start it (Linux: sudo systemctl start docker; macOS/Windows: start Docker Desktop), "
                "and make sure your user may use it: sudo usermod -aG docker $USER; "
                "on a host without one, as root: make dockerd (this project's own engine, engine/dockerd.sh)",
            ),
        ),
        (
            (0, "dev\n", ""),
            Finding(
                False,
                f"Docker engine 'dev': could not read its version; {WHY_2010}",
                "check `docker info --format '{{.ServerVersion}}'`",
                required=False,
            ),
        ),
        (
            (0, "20.9.1\n", ""),
            Finding(
                False,
                f"Docker engine 20.9.1 is older than 20.10: {WHY_2010}",
                "upgrade Docker Engine to 20.10 or newer: https://docs.docker.com/engine/install/",
            ),
        ),
    ],
    ids=["unreachable", "empty", "unreadable", "old"],
)
def test_each_engine_finding_whole(answer: tuple[int, str, str], finding: Finding) -> None:
    assert check_docker_daemon(fake_runner({"docker info": answer})) == finding


def test_an_engine_that_prints_a_version_but_fails_is_unreachable() -> None:
    finding = check_docker_daemon(fake_runner({"docker info": (1, "28.2.2\n", "error: half\n")}))
    assert finding.what == "the Docker engine is not reachable (error: half)" and not finding.ok


# --- the kernel's tunnel module ---------------------------------------------------------------------


def test_the_kernel_config_reads_both_forms_on_any_line() -> None:
    text = b'#\n# Automatically generated\nCONFIG_VXLAN=m\nCONFIG_X="a b"\n# CONFIG_GENEVE is not set\n'
    files = host({"/proc/config.gz": gzip.compress(text)})
    assert kernel_config(files) == (
        "/proc/config.gz",
        {"CONFIG_VXLAN": "m", "CONFIG_X": '"a', "CONFIG_GENEVE": "n"},
    )


def test_an_unreadable_proc_config_falls_back_to_the_boot_copy() -> None:
    files = host({"/proc/config.gz": b"not gzip", f"/boot/config-{RELEASE}": b"CONFIG_GENEVE=y\n"})
    assert kernel_config(files) == (f"/boot/config-{RELEASE}", {"CONFIG_GENEVE": "y"})
    assert kernel_config(host({"/proc/config.gz": b"not gzip"})) is None


def test_modules_builtin_names_the_module_on_any_line() -> None:
    listing = "geneve.ko\nkernel/net/ipv4/udp_tunnel.ko\n"
    [finding] = check_kernel_modules(GENEVE, host({f"{LIB}/modules.builtin": listing}), NO_MODINFO)
    assert finding == Finding(True, f"kernel module geneve is built in ({LIB}/modules.builtin)")


@pytest.mark.parametrize(
    ("config", "finding"),
    [
        (
            b"CONFIG_VXLAN=y\n",  # no line for geneve at all: not built
            Finding(
                False,
                f"this kernel ({RELEASE}) was built without geneve (CONFIG_GENEVE is not set in /proc/config.gz); "
                "mode geneve needs it",
                "run the lab on a kernel with CONFIG_GENEVE=m or =y (distribution kernels ship it as a module), "
                "or use a mode without this tunnel",
            ),
        ),
        (
            b"CONFIG_GENEVE=y\n",
            Finding(True, "kernel module geneve is built in (CONFIG_GENEVE=y in /proc/config.gz)"),
        ),
    ],
)
def test_the_kernel_config_decides_built_in_or_absent(config: bytes, finding: Finding) -> None:
    [found] = check_kernel_modules(GENEVE, host({"/proc/config.gz": gzip.compress(config)}), NO_MODINFO)
    assert found == finding


def test_a_module_built_as_m_is_asked_of_modules_dep_then_modinfo() -> None:
    files = host({"/proc/config.gz": gzip.compress(b"CONFIG_GENEVE=m\n")})
    [found] = check_kernel_modules(GENEVE, files, fake_runner({"modinfo geneve": (0, "filename: x", "")}))
    assert found == Finding(True, "kernel module geneve is loadable (modinfo; the kernel loads it on demand)")


def test_each_loadable_finding_whole() -> None:
    fix = "sudo modprobe geneve   (or install your distribution's extra kernel modules package)"
    missing = Finding(
        False, "kernel module geneve is neither loaded nor installed; mode geneve needs it", fix
    )
    listed = host({f"{LIB}/modules.dep": "kernel/drivers/net/vxlan/vxlan.ko.zst:\n"})
    assert check_kernel_modules(GENEVE, listed, NO_MODINFO) == [missing]
    installed = host({f"{LIB}/modules.dep": "kernel/drivers/net/geneve.ko.xz: kernel/net/udp_tunnel.ko.xz\n"})
    assert check_kernel_modules(GENEVE, installed, NO_MODINFO) == [
        Finding(True, f"kernel module geneve is installed, so loadable ({LIB}/modules.dep)")
    ]
    refused = fake_runner({"modinfo geneve": (1, "", "modinfo: ERROR: Module geneve not found.")})
    assert check_kernel_modules(GENEVE, host(), refused) == [missing]
    assert check_kernel_modules(GENEVE, host(), NO_MODINFO) == [
        Finding(
            False,
            f"could not tell whether kernel module geneve is available: /sys/module/geneve, {LIB}/modules.dep "
            "and the kernel config are absent, and `modinfo` could not run: No such file or directory",
            f"{fix}; modinfo and modprobe come with kmod (sudo apt-get install kmod)",
            required=False,
        )
    ]


# --- inotify and cgroups ------------------------------------------------------------------------------


def test_each_inotify_finding_whole() -> None:
    files = host(
        {
            "/proc/sys/fs/inotify/max_user_watches": "524288\n",
            "/proc/sys/fs/inotify/max_user_instances": "511\n",
        }
    )
    assert check_inotify(files) == [
        Finding(True, "fs.inotify.max_user_watches = 524288"),
        Finding(
            False,
            "fs.inotify.max_user_instances = 511, below 512: multi-node kind runs out of watches",
            "sudo sysctl -w fs.inotify.max_user_instances=512",
        ),
    ]
    assert check_inotify(host())[0] == Finding(
        False,
        "could not read fs.inotify.max_user_watches (/proc/sys/fs/inotify/max_user_watches)",
        "check: sysctl fs.inotify.max_user_watches  (multi-node kind wants at least 524288)",
        required=False,
    )


def test_an_unknown_cgroup_version_is_a_warning_with_its_check(tmp_path: Path) -> None:
    assert check_cgroups(tmp_path) == Finding(
        False,
        f"could not tell the cgroup version from {tmp_path}",
        "check: mount | grep cgroup",
        required=False,
    )


# --- the underlay ---------------------------------------------------------------------------------------

LS = ("docker", "network", "ls", "--format", "{{.Name}}")


def _inspect(*names: str) -> tuple[str, ...]:
    return ("docker", "network", "inspect", *names)


def _network(name: str, *subnets: object, ipam: object = None) -> dict[str, object]:
    return {"Name": name, "IPAM": ipam if ipam is not None else {"Config": [{"Subnet": s} for s in subnets]}}


def test_the_underlay_check_asks_exactly_these_commands_and_says_so_whole() -> None:
    networks = [_network("bridge", "172.17.0.0/16")]
    run = Recorder({LS: (0, "bridge\ncdl-overlay\n", ""), _inspect("bridge"): (0, json.dumps(networks), "")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", run) == Finding(
        True, "underlay 172.30.1.0/24 is free on this Docker host"
    )
    assert run.asked == [LS, _inspect("bridge")]


def test_each_underlay_problem_whole() -> None:
    down = Recorder({LS: (1, "", "permission denied\n")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", down) == Finding(
        False,
        "could not list Docker networks to check the underlay 172.30.1.0/24 (permission denied)",
        "check `docker network ls`",
    )
    odd = Recorder({LS: (0, "a\nb\n", ""), _inspect("a", "b"): (0, "{}", "")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", odd) == Finding(
        False,
        "could not read the Docker networks' subnets to check the underlay 172.30.1.0/24 "
        "(docker network inspect printed no JSON list)",
        "check `docker network inspect a b`",
    )
    failed = Recorder({LS: (0, "a\nb\n", ""), _inspect("a", "b"): (1, "[]", "Error: No such network: b\n")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", failed) == Finding(
        False,
        "could not read the Docker networks' subnets to check the underlay 172.30.1.0/24 "
        "(Error: No such network: b)",
        "check `docker network inspect a b`",
    )
    taken = [_network("a", "172.30.1.128/25"), _network("b", "fd00::/64", "172.30.0.0/16")]
    clash = Recorder({LS: (0, "a\nb\n", ""), _inspect("a", "b"): (0, json.dumps(taken), "")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", clash) == Finding(
        False,
        "the underlay 172.30.1.0/24 is already used by docker network a (172.30.1.128/25), b (172.30.0.0/16)",
        "pulumi config set cilium-datapath-lab:underlaySubnet <a free /24, e.g. 172.30.9.0/24> -s overlay",
    )


@pytest.mark.parametrize(
    "entries",
    [
        ["172.30.1.0/24", None],  # entries that are not tables
        [{"Subnet": "not a subnet"}, {"Gateway": "172.30.1.1"}],  # no subnet in them
    ],
    ids=["entries-not-tables", "entries-without-a-subnet"],
)
def test_odd_entries_are_skipped_and_the_subnets_after_them_still_checked(entries: list[object]) -> None:
    odd = {"Name": "odd", "IPAM": {"Config": [*entries, {"Subnet": "172.30.1.0/25"}]}}
    run = Recorder({LS: (0, "odd\n", ""), _inspect("odd"): (0, json.dumps([odd]), "")})
    finding = check_underlay_free(OVERLAY, "cdl-overlay", run)
    assert finding.what.endswith("is already used by docker network odd (172.30.1.0/25)")


def test_a_network_whose_ipam_is_not_a_table_has_no_subnets() -> None:
    odd = [{"Name": "odd", "IPAM": "none"}, {"Name": "list", "IPAM": {"Config": "172.30.1.0/24"}}]
    run = Recorder({LS: (0, "odd\nlist\n", ""), _inspect("odd", "list"): (0, json.dumps(odd), "")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", run).ok


def test_a_subnet_written_with_host_bits_is_still_its_network() -> None:
    """Docker prints the subnet a user gave; 172.30.1.5/24 is the network 172.30.1.0/24."""
    run = Recorder({LS: (0, "x\n", ""), _inspect("x"): (0, json.dumps([_network("x", "172.30.1.5/24")]), "")})
    assert check_underlay_free(OVERLAY, "cdl-overlay", run).what.endswith("docker network x (172.30.1.0/24)")


# --- the node image ----------------------------------------------------------------------------------


def _inspect_image(ref: str) -> tuple[str, ...]:
    return ("docker", "image", "inspect", "--format", "{{.Id}}", ref)


def test_the_node_image_is_looked_up_by_its_reference_and_named_with_its_short_id() -> None:
    run = Recorder({_inspect_image(REGISTRY_REF): (0, "sha256:" + "0123456789abcdef" * 4 + "\n", "")})
    assert check_node_image(OVERLAY, run) == Finding(
        True, f"node image {REGISTRY_REF} is in the Docker engine (sha256:0123456789ab)"
    )
    assert run.asked == [_inspect_image(REGISTRY_REF)]


@pytest.mark.parametrize(
    "answer", [(0, "\n", ""), (1, "sha256:abc\n", "Error: No such image\n")], ids=["empty", "failed"]
)
def test_a_registry_node_image_not_in_the_engine_is_a_warning(answer: tuple[int, str, str]) -> None:
    assert check_node_image(OVERLAY, Recorder({_inspect_image(REGISTRY_REF): answer})) == Finding(
        False,
        f"node image {REGISTRY_REF} is not in the Docker engine yet; kind will pull it by digest, which needs "
        "its registry",
        "where no registry can be reached, build one here with `make images` and set the reference it prints: "
        f"pulumi config set {NODE_IMAGE_KEY} local:<repository>:<tag> -s overlay",
        required=False,
    )


@pytest.mark.parametrize(
    ("node_image", "ref", "source", "rebuilt"),
    [
        ("local:cdl/kind-node:v1", "cdl/kind-node:v1", "local tag", ""),
        (
            "sha256:" + "a" * 64,
            "sha256:" + "a" * 64,
            "image ID",
            " (an image ID names one import: after a re-import use the local: tag)",
        ),
    ],
)
def test_a_local_node_image_not_in_the_engine_fails(
    node_image: str, ref: str, source: str, rebuilt: str
) -> None:
    config = parse_config({"mode": "overlay", "nodeImage": node_image}, "overlay")
    run = Recorder({_inspect_image(ref): (1, "", "Error: No such image: x\n")})
    assert check_node_image(config, run) == Finding(
        False,
        f"{NODE_IMAGE_KEY}: the {source} {ref} is not in the Docker engine (Error: No such image: x), and a local "
        "image is never pulled",
        "build it with `make images`, then set the reference it prints: "
        f"pulumi config set {NODE_IMAGE_KEY} local:<repository>:<tag> -s overlay{rebuilt}",
    )


# --- plugins ---------------------------------------------------------------------------------------------


def _venv(root: Path, plugins: dict[str, object]) -> Path:
    site = root / "lib" / "python3.11" / "site-packages"
    for package, data in plugins.items():
        (site / package).mkdir(parents=True)
        (site / package / "pulumi-plugin.json").write_text(json.dumps(data))
    return root


def test_a_package_that_is_no_resource_plugin_does_not_hide_the_ones_after_it(tmp_path: Path) -> None:
    venv = _venv(
        tmp_path,
        {
            "pulumi_aaa": {"resource": False, "name": "aaa", "version": "1.0.0"},
            "pulumi_zzz": {"resource": True, "name": "zzz", "version": "v2.0.0"},
        },
    )
    assert wanted_plugins(venv) == {"zzz": "2.0.0"}


PLUGIN_LS = ("pulumi", "plugin", "ls", "--json")


def test_a_plugin_list_that_cannot_be_read_is_a_warning_naming_every_plugin(tmp_path: Path) -> None:
    venv = _venv(
        tmp_path,
        {
            "p_b": {"resource": True, "name": "b", "version": "1"},
            "p_a": {"resource": True, "name": "a", "version": "1"},
        },
    )
    run = Recorder({PLUGIN_LS: (0, "{}", "")})
    assert check_plugins({ACQUISITION_OFF: "1"}, venv, run, buildable=set) == [
        Finding(
            False,
            "could not list the installed Pulumi plugins to look for a, b "
            "(`pulumi plugin ls --json` printed no JSON list)",
            "check `pulumi plugin ls --json` (PULUMI_HOME decides where plugins live)",
            required=False,
        )
    ]
    assert run.asked == [PLUGIN_LS]


def test_the_toolchains_plugins_are_named_without_their_v(monkeypatch: pytest.MonkeyPatch) -> None:
    from supply import toolchain  # noqa: PLC0415

    recipe = Recipe(
        binaries=(
            Binary(name="pulumi", version="v3.272.0", install="x"),
            Binary(
                name="p-k8s",
                version="v4.25.0",
                install="y",
                plugin="kubernetes",
                python_package="pulumi-kubernetes",
            ),
            Binary(
                name="p-cmd", version="1.2.1", install="z", plugin="command", python_package="pulumi-command"
            ),
        ),
        files=(),
    )
    monkeypatch.setattr(toolchain, "load_recipe", lambda: recipe)
    assert preflight._toolchain_plugins() == {("kubernetes", "4.25.0"), ("command", "1.2.1")}


# --- the whole preflight ------------------------------------------------------------------------------


def _all_healthy(network_ls: str = "bridge\n", inspect: object = None) -> Recorder:
    answers = {
        tuple(t.version_argv): (0, HEALTHY[" ".join(t.version_argv[:2])][1], "") for t in preflight.TOOLS
    }
    answers[("docker", "info", "--format", "{{.ServerVersion}}")] = (0, "28.2.2\n", "")
    answers[LS] = (0, network_ls, "")
    names = tuple(n for n in network_ls.split() if n != "cdl-overlay")
    answers[_inspect(*names)] = (0, json.dumps(inspect or [_network("bridge", "172.17.0.0/16")]), "")
    answers[_inspect_image(REGISTRY_REF)] = (0, "sha256:" + "ab" * 32 + "\n", "")
    answers[("modinfo", "vxlan")] = (0, "filename: vxlan.ko\n", "")
    answers[PLUGIN_LS] = (0, json.dumps([{"name": "zzz", "kind": "resource", "version": "2.0.0"}]), "")
    return Recorder(answers)


INOTIFY_OK: dict[str, str | bytes] = {
    "/proc/sys/fs/inotify/max_user_watches": "524289\n",
    "/proc/sys/fs/inotify/max_user_instances": "513\n",
}


def test_the_whole_preflight_in_order_with_the_files_and_runner_given(tmp_path: Path) -> None:
    findings = preflight.preflight(
        _all_healthy(), present, config=OVERLAY, files=host(INOTIFY_OK), system="Linux", cgroup_root=tmp_path
    )
    assert [f.what.split(" (")[0] for f in findings] == [
        "docker 28.2.2",
        "kind 0.32.0",
        "pulumi 3.272.0",
        "kubectl 1.36.1",
        "Docker engine 28.2.2 reachable",
        "kernel module vxlan is loadable",
        "fs.inotify.max_user_watches = 524289",
        "fs.inotify.max_user_instances = 513",
        "could not tell the cgroup version from " + str(tmp_path),
        "underlay 172.30.1.0/24 is free on this Docker host",
        "node image " + REGISTRY_REF + " is in the Docker engine",
    ]


def test_the_labs_own_network_is_not_a_clash_when_the_whole_preflight_runs() -> None:
    """An earlier run of the stack left its network: that one is the lab's, not another's."""
    own = [_network("cdl-overlay", "172.30.1.0/24")]
    run = _all_healthy("cdl-overlay\n", own)
    findings = preflight.preflight(run, present, config=OVERLAY, files=host(), system="Darwin")
    assert findings[-2] == Finding(True, "underlay 172.30.1.0/24 is free on this Docker host")
    assert not [argv for argv in run.asked if argv[:3] == ("docker", "network", "inspect")]


def test_without_docker_nothing_more_is_asked_but_a_missing_kind_does_not_stop_it() -> None:
    run = _all_healthy()
    no_docker = preflight.preflight(run, {"kind": "/k", "pulumi": "/p", "kubectl": "/c"}.get, config=OVERLAY)
    assert len(no_docker) == 4 and not no_docker[0].ok
    assert ("docker", "info", "--format", "{{.ServerVersion}}") not in run.asked
    no_kind = preflight.preflight(_all_healthy(), {"docker": "/d", "pulumi": "/p", "kubectl": "/c"}.get)
    assert [f.what for f in no_kind][-1] == "Docker engine 28.2.2 reachable (>= 20.10)"


def test_the_plugin_check_uses_the_given_runner_and_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # a real `pulumi` would answer otherwise
    venv = _venv(tmp_path / "venv", {"pulumi_zzz": {"resource": True, "name": "zzz", "version": "2.0.0"}})
    findings = preflight.preflight(_all_healthy(), present, env={ACQUISITION_OFF: "true"}, venv=venv)
    assert Finding(True, "resource plugin zzz 2.0.0 is installed") in findings


def test_the_plugin_check_defaults_to_the_running_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = preflight.preflight(_all_healthy(), lambda name: None, env={ACQUISITION_OFF: "true"})
    assert any(f.what.startswith("resource plugin kubernetes ") for f in findings)  # this venv's package


def test_the_linux_host_checks_read_the_host_files_given(tmp_path: Path) -> None:
    files = host({**INOTIFY_OK, "/proc/sys/fs/inotify/max_user_watches": "524287\n"})
    findings = preflight.preflight(
        _all_healthy(), present, config=OVERLAY, files=files, system="Linux", cgroup_root=tmp_path
    )
    assert "fs.inotify.max_user_watches = 524287, below 524288: multi-node kind runs out of watches" in [
        f.what for f in findings
    ]


def test_only_for_up_turns_a_failure_into_a_warning_and_leaves_the_rest() -> None:
    passed, warned = Finding(True, "fine"), Finding(False, "soft", "fix", required=False)
    assert only_for_up(passed) is passed and only_for_up(warned) is warned
    assert only_for_up(Finding(False, "hard", "fix")) == Finding(
        False, "hard (a preview creates nothing; `make up` needs it)", "fix", required=False
    )


# --- main -----------------------------------------------------------------------------------------------


def _host_answers(monkeypatch: pytest.MonkeyPatch, run: Runner) -> None:
    """main() against a fake host: every command through `run`, every tool present, not Linux."""
    monkeypatch.setattr("host.preflight.subprocess.run", lambda argv, **kwargs: run(argv))
    monkeypatch.setattr("host.preflight.shutil.which", present)
    monkeypatch.setattr("host.preflight.platform.system", lambda: "Darwin")
    monkeypatch.delenv(ACQUISITION_OFF, raising=False)


def test_main_on_a_healthy_host_prints_every_finding_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _host_answers(monkeypatch, _all_healthy("bridge\n"))
    assert preflight.main(["--stack", "overlay"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[ok  ] docker 28.2.2 (>= 20.10.0)"
    assert lines[-2:] == [
        "[ok  ] underlay 172.30.1.0/24 is free on this Docker host",
        f"[ok  ] node image {REGISTRY_REF} is in the Docker engine (sha256:abababababab)",
    ]
    assert preflight.main([]) == 0  # no stack: no lab checks
    assert "underlay" not in capsys.readouterr().out


def test_main_for_a_preview_names_the_command_and_warns_where_up_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = [_network("other", "172.30.1.0/24")]
    _host_answers(monkeypatch, _all_healthy("other\n", taken))
    assert preflight.main(["--stack", "overlay", "--for", "preview"]) == 0
    assert (
        "[warn] the underlay 172.30.1.0/24 is already used by docker network other (172.30.1.0/24) (a preview"
        in (capsys.readouterr().out)
    )
    assert preflight.main(["--stack", "overlay", "--for", "up"]) == 1
    assert capsys.readouterr().out.endswith(
        "\npreflight: 1 problem(s) to fix before `make up STACK=overlay`\n"
    )
    with pytest.raises(SystemExit) as refused:
        preflight.main(["--for", "destroy"])
    assert refused.value.code == 2


def test_main_help_names_what_each_option_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        preflight.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "Preflight for `make up`: find what would make `pulumi up` fail half-way, before it starts." in said
    )
    assert "--stack STACK the stack about to be brought up (for the message only)" in said
    assert (
        "--for {up,preview} what comes next: a preview creates nothing, so host limits only `up` meets are warnings"
        in said
    )


def test_main_names_the_stacks_there_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("b", "a-1", "c"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: x\n")
    monkeypatch.setattr("lab.stack_file.STACKS_DIR", tmp_path)
    assert preflight.main(["--stack", "nope"]) == 2
    assert capsys.readouterr().err == (
        f"preflight: stack nope: no stack file {tmp_path}/Pulumi.nope.yaml; the stacks are a-1, b, c\n"
    )


def _manifest(tmp_path: Path, version: str = "1.20.2") -> Path:
    manifest = tmp_path / "supply.json"
    manifest.write_text(
        json.dumps(
            {
                "nodeImage": "cdl/kind-node:v1.36.1-k",
                "ciliumVersion": version,
                "ciliumChart": "/c/cilium-1.20.2.tgz",
                "ciliumAgent": "cdl/cilium:1.20.2-k",
                "ciliumOperator": "cdl/operator-generic:1.20.2-k",
                "tools": "cdl/tools:1-k",
                "frr": "cdl/frr:1-k",
            }
        )
    )
    return manifest


def test_main_checks_the_node_image_the_offline_switch_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _all_healthy()
    run.answers[_inspect_image("cdl/kind-node:v1.36.1-k")] = (0, "sha256:" + "cd" * 32 + "\n", "")
    _host_answers(monkeypatch, run)
    monkeypatch.setenv("LAB_OFFLINE_SUPPLY", str(_manifest(tmp_path)))
    assert preflight.main(["--stack", "overlay"]) == 0
    assert "[ok  ] node image cdl/kind-node:v1.36.1-k is in the Docker engine (sha256:cdcdcdcdcdcd)" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("LAB_OFFLINE_SUPPLY", str(_manifest(tmp_path, "1.19.0")))
    assert preflight.main(["--stack", "overlay"]) == 2
    assert "preflight: stack overlay: " in capsys.readouterr().err


def test_a_refused_provider_the_toolchain_builds_at_other_versions_names_them_and_the_pin() -> None:
    fix = preflight._plugin_fix(
        "docker", "5.2.0", {("docker", "4.5.0"), ("docker", "4.9.1"), ("docker", "4.10.0"), ("x", "1")}
    )
    assert fix == (
        f"on a host with internet, unset {ACQUISITION_OFF} (the engine then downloads it) or run "
        "`pulumi plugin install resource docker 5.2.0`; offline, `make toolchain` builds docker only at "
        "4.10.0, 4.5.0, 4.9.1 (the project's own build: the Go module proxy serves no version of "
        "github.com/pulumi/pulumi-docker/provider/v5), so pin pulumi-docker==4.9.1 in pyproject.toml"
    )


def test_own_builds_are_named_only_for_the_toolchains_own_pulumi_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supply import toolchain  # noqa: PLC0415

    recipe = Recipe(
        binaries=(
            Binary(name="pulumi", version="v3.272.0", install="x"),
            Binary(
                name="p-docker",
                version="v5.2.0",
                install="y",
                plugin="docker",
                python_package="pulumi-docker",
                own_build="bridged from kreuzwerker's provider",
            ),
            Binary(
                name="p-k8s",
                version="v4.25.0",
                install="z",
                plugin="kubernetes",
                python_package="pulumi-kubernetes",
            ),
        ),
        files=(),
    )
    monkeypatch.setattr(toolchain, "load_recipe", lambda: recipe)
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    home = toolchain.cache_root(env) / "0123456789abcdef" / "pulumi-home"
    assert preflight.own_builds({**env, "PULUMI_HOME": str(home)}) == {
        ("docker", "5.2.0"): "bridged from kreuzwerker's provider"
    }
    assert preflight.own_builds({**env, "PULUMI_HOME": str(tmp_path / "elsewhere")}) == {}
    assert preflight.own_builds(env) == {}
