"""The local Docker engine (engine/dockerd.sh) and its runc capability wrapper (engine/runc_capfilter.py).

The wrapper's filter is tested as code (no engine needed); the engine is tested for real: privileged
containers, a user bridge network with a static IP, a shared network namespace, a published port
through the userland proxy, and a stop that leaves no process, socket, mount or bridge behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import runc_capfilter as capfilter

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "engine" / "dockerd.sh"
WRAPPER = ROOT / "engine" / "runc_capfilter.py"
BUSYBOX = Path("/bin/busybox")
FULL_MASK = (1 << (max(capfilter.CAP_NUMBERS.values()) + 1)) - 1
NO_SYS_RESOURCE = FULL_MASK & ~(1 << capfilter.CAP_NUMBERS["CAP_SYS_RESOURCE"])
ALL_CAPS = sorted(capfilter.CAP_NUMBERS, key=capfilter.CAP_NUMBERS.__getitem__)


def host_mask() -> int:
    return capfilter.bounding_mask(Path("/proc/self/status").read_text())


def oci_config(caps: list[str]) -> dict[str, object]:
    """A bundle config.json as dockerd writes it for --privileged (trimmed to what matters here)."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "args": ["/bin/sh"],
            "cwd": "/",
            "capabilities": {s: list(caps) for s in capfilter.CAP_SETS if s != "ambient"},
        },
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]},
    }


def exec_process(caps: list[str]) -> dict[str, object]:
    """A `runc exec --process` file as containerd writes it for `docker exec --privileged`."""
    return {"args": ["sh"], "cwd": "/", "capabilities": {s: list(caps) for s in capfilter.CAP_SETS}}


def write_json(path: Path, document: object) -> bytes:
    # Indented, key order of the source: a rewrite by the wrapper would show in the bytes.
    path.write_text(json.dumps(document, indent="\t"))
    return path.read_bytes()


SHIM_GLOBALS = ["--root", "/run/x/runtime-runc/moby", "--log", "/b/log.json", "--log-format", "json"]


# --- the capability filter, as code -----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("capsh") is None, reason="capsh (Debian libcap2-bin) names capability bits")
def test_capability_numbers_match_libcap() -> None:
    for name, number in capfilter.CAP_NUMBERS.items():
        decoded = subprocess.run(
            ["capsh", f"--decode={1 << number:x}"], capture_output=True, text=True, check=True
        ).stdout
        assert decoded.strip().endswith("=" + name.lower()), (name, number, decoded)


def test_bounding_mask_is_read_from_the_status_text() -> None:
    status = "Name:\tx\nCapPrm:\t0000000000000000\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n"
    assert capfilter.bounding_mask(status) == 0x1FFFEFFFFFF == NO_SYS_RESOURCE
    with pytest.raises(ValueError, match="CapBnd"):
        capfilter.bounding_mask("Name:\tx\n")


@pytest.mark.parametrize(
    ("command", "bundle_argv"),
    [
        ("create", ["--bundle", "{b}"]),
        ("create", ["--bundle={b}"]),
        ("run", ["-b", "{b}"]),
        ("create", []),  # no --bundle: runc reads the bundle in its working directory
    ],
)
def test_create_and_run_drop_caps_the_bounding_set_lacks(
    tmp_path: Path, command: str, bundle_argv: list[str]
) -> None:
    config = oci_config([*ALL_CAPS, "CAP_NOT_YET_INVENTED"])
    write_json(tmp_path / "config.json", config)
    argv = ["runc-capfilter", *SHIM_GLOBALS, command, *(a.format(b=tmp_path) for a in bundle_argv)]
    argv += ["--pid-file", "/b/init.pid", "ctr1"]

    found = capfilter.target(argv, cwd=str(tmp_path))
    assert found == (str(tmp_path / "config.json"), ("process", "capabilities"))
    assert capfilter.filter_file(*found, NO_SYS_RESOURCE) == ["CAP_SYS_RESOURCE"]

    after = json.loads((tmp_path / "config.json").read_text())
    for set_name, names in after["process"]["capabilities"].items():
        assert "CAP_SYS_RESOURCE" not in names, set_name
        assert names == [n for n in config["process"]["capabilities"][set_name] if n != "CAP_SYS_RESOURCE"]  # type: ignore[index]
    after["process"].pop("capabilities")
    config["process"].pop("capabilities")  # type: ignore[attr-defined]
    assert after == config  # nothing but capabilities is touched


@pytest.mark.parametrize("process_flag", [["--process", "{f}"], ["-p", "{f}"], ["--process={f}"]])
def test_exec_drops_caps_from_the_process_file(tmp_path: Path, process_flag: list[str]) -> None:
    process = tmp_path / "runc-process123"
    write_json(process, exec_process(ALL_CAPS))
    argv = ["runc-capfilter", *SHIM_GLOBALS, "exec", *(a.format(f=process) for a in process_flag)]
    argv += ["--detach", "--pid-file", "/b/x.pid", "ctr1"]

    found = capfilter.target(argv, cwd="/")
    assert found == (str(process), ("capabilities",))
    # A host without CAP_SYS_RESOURCE and CAP_BPF in its bounding set loses both, in every set.
    mask = NO_SYS_RESOURCE & ~(1 << capfilter.CAP_NUMBERS["CAP_BPF"])
    assert capfilter.filter_file(*found, mask) == ["CAP_SYS_RESOURCE", "CAP_BPF"]
    caps = json.loads(process.read_text())["capabilities"]
    assert set(caps) == set(capfilter.CAP_SETS)
    for names in caps.values():
        assert names == [n for n in ALL_CAPS if n not in {"CAP_SYS_RESOURCE", "CAP_BPF"}]


def test_full_bounding_set_leaves_the_files_byte_identical(tmp_path: Path) -> None:
    config, process = tmp_path / "config.json", tmp_path / "process.json"
    config_bytes = write_json(config, oci_config([*ALL_CAPS, "CAP_NOT_YET_INVENTED"]))
    process_bytes = write_json(process, exec_process(ALL_CAPS))
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (config, process)}

    assert capfilter.filter_file(str(config), ("process", "capabilities"), FULL_MASK) == []
    assert capfilter.filter_file(str(process), ("capabilities",), FULL_MASK) == []

    assert config.read_bytes() == config_bytes
    assert process.read_bytes() == process_bytes
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (config, process)} == before


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        [*SHIM_GLOBALS, "start", "ctr1"],
        [*SHIM_GLOBALS, "delete", "--force", "ctr1"],
        [*SHIM_GLOBALS, "kill", "ctr1", "9"],
        [*SHIM_GLOBALS, "state", "ctr1"],
        [*SHIM_GLOBALS, "exec", "--tty", "ctr1", "sh"],  # no --process: the caps come as flags, untouched
        ["--log", "create", "start", "ctr1"],  # a global option's value is not the command
    ],
)
def test_other_runc_commands_are_not_filtered(args: list[str]) -> None:
    assert capfilter.target(["runc-capfilter", *args], cwd="/nonexistent") is None


FAKE_RUNC = """#!/bin/sh
# Stands in for runc: records its argv, one per line, and the config it would read.
printf '%s\\n' "$@" > "$RECORD/argv"
[ -f config.json ] && cp config.json "$RECORD/config.json"
exit 0
"""


def run_wrapper(tmp_path: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake-runc"
    fake.write_text(FAKE_RUNC)
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "RUNC_CAPFILTER_RUNC": str(fake), "RECORD": str(tmp_path)}
    return subprocess.run(
        [str(WRAPPER), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=30
    )


def test_the_wrapper_execs_runc_with_the_argv_it_was_given(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    write_json(bundle / "config.json", oci_config([*ALL_CAPS, "CAP_NOT_YET_INVENTED"]))
    args = [*SHIM_GLOBALS, "create", "--bundle", str(bundle), "--pid-file", "/b/init.pid", "ctr1"]

    result = run_wrapper(tmp_path, args, cwd=bundle)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "argv").read_text().splitlines() == args

    # What runc reads is this host's own bounding set, applied (the full list where nothing is missing).
    mask = host_mask()
    expected = [n for n in ALL_CAPS if mask >> capfilter.CAP_NUMBERS[n] & 1] + ["CAP_NOT_YET_INVENTED"]
    seen = json.loads((tmp_path / "config.json").read_text())["process"]["capabilities"]
    assert seen["permitted"] == seen["effective"] == seen["bounding"] == expected


def test_the_wrapper_passes_through_when_it_cannot_read_the_bundle(tmp_path: Path) -> None:
    args = ["create", "--bundle", str(tmp_path / "missing"), "ctr1"]
    result = run_wrapper(tmp_path, args, cwd=tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "argv").read_text().splitlines() == args
    assert "not filtering" in result.stderr


# --- the script without an engine ------------------------------------------------------------------


def script(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_env_names_the_socket_under_the_engine_dir(tmp_path: Path) -> None:
    result = script("env", env={"LAB_ENGINE_DIR": str(tmp_path / "eng")})
    assert result.stdout == f"export DOCKER_HOST=unix://{tmp_path}/eng/docker.sock\n"
    with tempfile.TemporaryDirectory(dir="/tmp") as cache:  # short: socket paths stay under 108 bytes
        cached = script("host", env={"LAB_ENGINE_DIR": "", "XDG_CACHE_HOME": cache})
        assert cached.stdout == f"unix://{cache}/cilium-datapath-lab/engine/docker.sock\n", cached.stderr


@pytest.mark.parametrize(
    ("engine_dir", "message"),
    [
        ("relative/dir", "absolute path"),
        ("/tmp/has space", "absolute path"),
        ('/tmp/quo"te', "absolute path"),
        (str(ROOT / "cache"), "outside the repository"),
        ("/tmp/" + "d" * 80, "too long for unix socket paths"),
    ],
)
def test_unsafe_engine_dirs_are_refused(engine_dir: str, message: str) -> None:
    result = script("start", env={"LAB_ENGINE_DIR": engine_dir})
    assert result.returncode == 1
    assert message in result.stderr
    assert not Path(engine_dir).exists() or engine_dir.startswith(str(ROOT))


FAKE_DOCKER = '#!/bin/sh\n[ "$1" = info ] && exit {rc}\nexit 0\n'


@pytest.mark.parametrize(("ambient_rc", "printed"), [(0, False), (1, True)])
def test_host_if_needed_only_when_the_ambient_engine_does_not_answer(
    tmp_path: Path, ambient_rc: int, printed: bool
) -> None:
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "docker"
    fake.write_text(FAKE_DOCKER.format(rc=ambient_rc))
    fake.chmod(0o755)
    env = {"LAB_ENGINE_DIR": str(tmp_path / "eng"), "PATH": f"{tmp_path}/bin:/usr/bin:/bin"}
    result = script("host-if-needed", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"unix://{tmp_path}/eng/docker.sock\n" if printed else "")


def test_stop_ends_nothing_but_its_own_dockerd(tmp_path: Path) -> None:
    """A pidfile naming some other process (a reused PID) must not get that process killed."""
    engine_dir = tmp_path / "eng"
    engine_dir.mkdir()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (engine_dir / "dockerd.pid").write_text(str(bystander.pid))
        result = script("stop", env={"LAB_ENGINE_DIR": str(engine_dir)})
        assert result.returncode == 0, result.stderr
        assert "not running (stale pidfile" in result.stdout
        assert bystander.poll() is None
        assert (engine_dir / "dockerd.pid").exists()
        assert script("status", env={"LAB_ENGINE_DIR": str(engine_dir)}).returncode == 3
    finally:
        bystander.kill()
        bystander.wait()


# --- the real engine -------------------------------------------------------------------------------

needs_engine = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
    reason="the local Docker engine needs root and Debian's docker.io, containerd and runc (see .ci/run)",
)


def statically_linked(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP program header (no dynamic loader)."""
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    size, count = int.from_bytes(data[0x36:0x38], "little"), int.from_bytes(data[0x38:0x3A], "little")
    types = {int.from_bytes(data[phoff + i * size : phoff + i * size + 4], "little") for i in range(count)}
    return 3 not in types


needs_busybox = pytest.mark.skipif(
    not BUSYBOX.is_file() or not statically_linked(BUSYBOX),
    reason="the test image is a static busybox (Debian busybox-static); no registry is reachable",
)


def engine_dir_for_test() -> Path:
    # Short and outside the repository: unix socket paths must stay under 108 bytes.
    return Path(tempfile.mkdtemp(prefix="cdl-engine-", dir="/tmp"))


def docker(
    host: str, *args: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The docker CLI first on PATH, as kind and the lab call it, pointed at the engine under test."""
    env = {**os.environ, "DOCKER_HOST": host}
    env.pop("DOCKER_CONTEXT", None)
    result = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result


def import_busybox(host: str, tag: str) -> None:
    """A one-binary image made offline: busybox and the applet links the tests call."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(BUSYBOX, arcname="bin/busybox")
            for applet in ("sh", "sleep", "true", "ip", "ping", "httpd", "grep", "cat"):
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        docker(host, "import", str(archive), tag)


def start_engine(engine_dir: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    started = script("start", env={"LAB_ENGINE_DIR": str(engine_dir)})
    assert started.returncode == 0, started.stdout + started.stderr
    host = f"unix://{engine_dir}/docker.sock"
    assert f"export DOCKER_HOST={host}" in started.stdout
    return host, started


def stop_engine(engine_dir: Path) -> subprocess.CompletedProcess[str]:
    stopped = script("stop", env={"LAB_ENGINE_DIR": str(engine_dir)})
    print(stopped.stdout, stopped.stderr)
    return stopped


def mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if f" {path}/" in line]


def remove_engine_dir(engine_dir: Path) -> None:
    if not mounts_under(engine_dir):  # never recurse into a mount an unclean stop left
        shutil.rmtree(engine_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    engine_dir = engine_dir_for_test()
    host, started = start_engine(engine_dir)
    print(started.stdout)
    try:
        import_busybox(host, "cdl-engine-test/busybox:1")
        yield host
    finally:
        stop_engine(engine_dir)
        remove_engine_dir(engine_dir)


def free_subnet() -> tuple[str, str, str]:
    """A /29 no route of this host uses yet (engines share the host's routing table): subnet, gw, ip."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    for third in range(200, 250):
        prefix = f"10.254.{third}"
        if f"{prefix}." not in routes:
            return f"{prefix}.0/29", f"{prefix}.1", f"{prefix}.5"
    pytest.fail("no free 10.254.200-249.0/29 on this host")


@needs_engine
@needs_busybox
def test_privileged_containers_run_through_the_wrapper(engine: str) -> None:
    image = "cdl-engine-test/busybox:1"
    run = docker(engine, "run", "--rm", "--privileged", image, "grep", "CapEff", "/proc/self/status")
    effective = int(run.stdout.split()[1], 16)
    for name in ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_MODULE", "CAP_AUDIT_READ"):
        assert effective >> capfilter.CAP_NUMBERS[name] & 1, name
    assert effective & ~host_mask() == 0  # all it holds is in the host's bounding set

    # The same container on the plain runc runtime: on a host whose bounding set lacks a capability
    # dockerd 20.10 grants --privileged containers (CAP_CHOWN..CAP_AUDIT_READ, bits 0-37), this is the
    # failure the wrapper exists for.
    bare = docker(engine, "run", "--rm", "--privileged", "--runtime", "runc", image, "true", check=False)
    docker_privileged = (1 << (capfilter.CAP_NUMBERS["CAP_AUDIT_READ"] + 1)) - 1
    if host_mask() & docker_privileged == docker_privileged:
        assert bare.returncode == 0, bare.stderr
    else:
        assert bare.returncode != 0
        assert "unable to apply caps" in bare.stderr

    name = "cdl-engine-test-exec"
    docker(engine, "run", "-d", "--init", "--name", name, image, "sleep", "60")
    try:
        execd = docker(engine, "exec", "--privileged", name, "grep", "CapEff", "/proc/self/status")
        assert int(execd.stdout.split()[1], 16) == effective
    finally:
        docker(engine, "rm", "-f", name)


@needs_engine
@needs_busybox
def test_user_bridge_static_ip_shared_netns_and_published_port(engine: str) -> None:
    image = "cdl-engine-test/busybox:1"
    subnet, gateway, address = free_subnet()
    network, server = "cdl-engine-test-net", "cdl-engine-test-server"
    docker(engine, "network", "create", "--subnet", subnet, "--gateway", gateway, "--ip-range", subnet,
           "-o", "com.docker.network.driver.mtu=1400", network)  # fmt: skip
    try:
        docker(engine, "run", "-d", "--init", "--name", server, "--network", network, "--ip", address,
               "-p", "127.0.0.1:0:8080", image, "httpd", "-f", "-p", "8080", "-h", "/bin")  # fmt: skip
        inspect = json.loads(docker(engine, "network", "inspect", network).stdout)[0]
        assert inspect["IPAM"]["Config"][0]["Subnet"] == subnet
        assert [c["IPv4Address"] for c in inspect["Containers"].values()] == [f"{address}/29"]

        # --network container:<x>: the same eth0, address and MTU as the server.
        shared = docker(
            engine, "run", "--rm", "--network", f"container:{server}", image, "ip", "-4", "-o", "addr"
        )
        eth0 = [line for line in shared.stdout.splitlines() if " eth0 " in f" {line} "]
        assert len(eth0) == 1 and f"inet {address}/29" in eth0[0], shared.stdout
        mtu = docker(
            engine, "run", "--rm", "--network", f"container:{server}", image, "cat", "/sys/class/net/eth0/mtu"
        )
        assert mtu.stdout.strip() == "1400"

        # Another container on the network reaches the server's static address and the gateway.
        ping = docker(engine, "run", "--rm", "--network", network, image, "sh", "-c",
                      f"ping -c1 -W2 {address} && ping -c1 -W2 {gateway}")  # fmt: skip
        assert ping.stdout.count("1 packets received") == 2, ping.stdout

        # The published port (how kind maps its API server) answers on the host via the userland proxy.
        port = docker(engine, "port", server, "8080").stdout.split()[0]
        assert re.fullmatch(r"127\.0\.0\.1:\d+", port), port
        body = b""
        for _ in range(50):  # httpd binds a moment after the container starts
            try:
                with urllib.request.urlopen(f"http://{port}/busybox", timeout=2) as response:
                    body = response.read(4)
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"\x7fELF"
    finally:
        docker(engine, "rm", "-f", server, check=False)
        docker(engine, "network", "rm", network, check=False)


def listening_unix_sockets_under(path: Path) -> list[str]:
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return [line.split()[-1] for line in lines if line.split()[-1].startswith(f"{path}/")]


def listening_tcp() -> set[str]:
    """host:port of every listening IPv4 TCP socket, from /proc/net/tcp (state 0A)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            address, port = local.split(":")
            octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
            found.add(f"{'.'.join(octets)}:{int(port, 16)}")
    return found


def alive(pid: int) -> bool:
    """Exists and is not a zombie: this machine's PID 1 may reap an orphaned dockerd late."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def processes_naming(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"{path}/".encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@needs_engine
@needs_busybox
def test_start_is_idempotent_and_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    engine_dir = engine_dir_for_test()
    system_key = Path("/etc/docker/key.json")  # dockerd 20.10's default identity key: a system Docker's
    system_key_before = system_key.stat().st_mtime_ns if system_key.exists() else None
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        # A pidfile left by a dockerd that was killed, its PID since reused: dockerd itself would refuse it.
        (engine_dir / "dockerd.pid").write_text(str(bystander.pid))
        host, started = start_engine(engine_dir)
        assert "removing the stale pidfile" in started.stdout
        assert bystander.poll() is None
        pid = int((engine_dir / "dockerd.pid").read_text())
        again = script("start", env={"LAB_ENGINE_DIR": str(engine_dir)})
        assert again.returncode == 0 and f"already running (pid {pid})" in again.stdout
        assert (engine_dir / "key.json").exists()
        assert (system_key.stat().st_mtime_ns if system_key.exists() else None) == system_key_before

        # Its own containerd, with socket and state under the engine's exec root.
        containerd_pid = int((engine_dir / "run/containerd/containerd.pid").read_text())
        assert alive(containerd_pid)
        assert f"{engine_dir}/run/containerd/containerd.sock" in listening_unix_sockets_under(engine_dir)

        # Leave a container running (with a published port) and a network with its host bridge.
        import_busybox(host, "cdl-engine-test/busybox:1")
        subnet, _, address = free_subnet()
        net_id = docker(host, "network", "create", "--subnet", subnet, "cdl-engine-test-stop").stdout.strip()
        bridge = f"br-{net_id[:12]}"
        docker(host, "run", "-d", "--init", "--name", "cdl-engine-test-left", "--network", "cdl-engine-test-stop",
               "--ip", address, "-p", "127.0.0.1:0:8080", "cdl-engine-test/busybox:1", "sleep", "300")  # fmt: skip
        assert Path(f"/sys/class/net/{bridge}").exists()
        port = docker(host, "port", "cdl-engine-test-left", "8080").stdout.split()[0]
        assert port in listening_tcp()

        stopped = stop_engine(engine_dir)
        assert stopped.returncode == 0, stopped.stderr
        assert not alive(pid)
        assert not alive(containerd_pid)
        assert processes_naming(engine_dir) == []
        assert listening_unix_sockets_under(engine_dir) == []
        assert port not in listening_tcp()
        assert mounts_under(engine_dir) == []
        assert not Path(f"/sys/class/net/{bridge}").exists()
        assert script("status", env={"LAB_ENGINE_DIR": str(engine_dir)}).returncode == 3
    finally:
        bystander.kill()
        bystander.wait()
        stop_engine(engine_dir)
        remove_engine_dir(engine_dir)


@needs_engine
def test_a_failed_start_shows_the_log_and_the_likely_fix() -> None:
    """A folder where the socket goes: dockerd fails after bind-mounting its data root onto itself."""
    engine_dir = engine_dir_for_test()
    try:
        (engine_dir / "docker.sock").mkdir()
        result = script("start", env={"LAB_ENGINE_DIR": str(engine_dir)})
        assert result.returncode == 1
        assert "dockerd exited during start" in result.stderr
        assert "can't create unix socket" in result.stderr  # the log's tail
        assert "likely fix: something other than a socket is at" in result.stderr
        assert mounts_under(engine_dir) == []  # the bind mount dockerd left is undone
        assert processes_naming(engine_dir) == []
    finally:
        stop_engine(engine_dir)
        remove_engine_dir(engine_dir)


@needs_engine
@needs_busybox
def test_a_killed_engine_starts_again_and_then_stops_clean() -> None:
    """As when a session's processes are ended under it: SIGKILL to dockerd, its containerd and shims."""
    engine_dir = engine_dir_for_test()
    try:
        host, _ = start_engine(engine_dir)
        import_busybox(host, "cdl-engine-test/busybox:1")
        docker(
            host,
            "run",
            "-d",
            "--init",
            "--name",
            "cdl-engine-test-killed",
            "cdl-engine-test/busybox:1",
            "sleep",
            "300",
        )
        orphan = int(docker(host, "inspect", "--format", "{{.State.Pid}}", "cdl-engine-test-killed").stdout)
        for pid in processes_naming(engine_dir):
            os.kill(pid, signal.SIGKILL)
        assert alive(orphan)  # the container outlives its shim
        assert mounts_under(engine_dir)  # and so do the data root's bind mount and the container's overlay

        host, _ = start_engine(engine_dir)
        assert not alive(orphan)  # the new dockerd's containerd ended the old task
        docker(host, "start", "cdl-engine-test-killed")
        docker(host, "exec", "cdl-engine-test-killed", "true")
        stopped = stop_engine(engine_dir)
        assert stopped.returncode == 0, stopped.stderr
        assert mounts_under(engine_dir) == []
        assert processes_naming(engine_dir) == []
    finally:
        stop_engine(engine_dir)
        remove_engine_dir(engine_dir)
