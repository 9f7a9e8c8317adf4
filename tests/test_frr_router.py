"""The FRR router turns ICMP redirects off from inside its container, on every Docker Engine.

Under mocks: the container's inputs carry the redirects-off entrypoint, the image's start command
after it, and no per-endpoint or interface-named sysctl. On a real engine: a container created
from those very inputs, in the order the Docker provider uses (create on `bridge`, disconnect it,
connect the lab network with a fixed address, start), ends with send_redirects 0 on eth0 and
`all`, also after a restart; a static busybox stands in for the FRR image (no registry here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mockstack import Evaluation, evaluate

from components.frr_router import FRR_START
from host.preflight import parse_version
from lab.scripts import script

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = "docker:index/container:Container"
BUSYBOX = Path("/bin/busybox")
PROBE_START = ["/bin/sleep", "600"]  # stands in for FRR_START: a start command that stays up


@pytest.fixture(scope="module")
def router() -> dict[str, Any]:
    ev: Evaluation = evaluate("bgp")
    return ev.one(CONTAINER, "frr0-container").inputs


# --- the inputs, under mocks ----------------------------------------------------------------------


def test_the_entrypoint_turns_redirects_off_then_runs_the_images_start(router: dict[str, Any]) -> None:
    assert router["entrypoints"] == ["/bin/sh", "-c", script("frr/redirects-off"), "redirects-off"]
    assert router["command"] == list(FRR_START) == ["/sbin/tini", "--", "/usr/lib/frr/docker-start"]
    assert "CAP_SYS_ADMIN" in router["capabilities"]["adds"]  # remounts /proc/sys
    assert "apparmor=unconfined" in router["securityOpts"]  # docker-default denies mount


def test_no_per_endpoint_and_no_interface_named_sysctl(router: dict[str, Any]) -> None:
    """Per-endpoint sysctls need Engine 27.0; an `eth0` container sysctl is refused from 28.0."""
    (network,) = router["networksAdvanced"]
    assert not network.get("driverOpts")
    sysctls = router["sysctls"]
    named = [k for k in sysctls if re.fullmatch(r"net\.ipv[46]\.conf\.(?!all\.|default\.)[^.]+\..+", k)]
    assert named == []
    assert (
        sysctls["net.ipv4.conf.all.send_redirects"] == sysctls["net.ipv4.conf.default.send_redirects"] == "0"
    )


# --- the mechanism, on a real engine ---------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    env: dict[str, str]
    version: tuple[int, int, int]

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, check=False, timeout=60
        )
        if check:
            assert result.returncode == 0, f"docker {' '.join(args[:3])}: {result.stderr}"
        return result


def reachable_engine() -> Engine | None:
    """The engine your settings reach, else the project's own (engine/dockerd.sh), else None."""
    if shutil.which("docker") is None:
        return None
    candidates = [dict(os.environ)]
    host = subprocess.run(
        ["bash", str(ROOT / "engine" / "dockerd.sh"), "host"], capture_output=True, text=True, check=False
    )
    if host.returncode == 0 and host.stdout.strip():
        project = {**os.environ, "DOCKER_HOST": host.stdout.strip()}
        project.pop("DOCKER_CONTEXT", None)
        candidates.append(project)
    for env in candidates:
        answer = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=env, capture_output=True, text=True, check=False, timeout=20,
        )  # fmt: skip
        version = parse_version(answer.stdout) if answer.returncode == 0 else None
        if version is not None:
            return Engine(env, version)
    return None


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = reachable_engine()
    if found is None:
        pytest.skip("no Docker engine answers (as root: make dockerd starts the project's own)")
    if not BUSYBOX.is_file():
        pytest.skip(
            "the stand-in image is a static busybox (Debian busybox-static); no registry is reachable"
        )
    return found


@pytest.fixture(scope="module")
def lab(engine: Engine) -> Iterator[tuple[str, str, str]]:
    """A busybox image and a user bridge network like the lab's: (image, network, router address)."""
    tag = f"cdl-frr-test-{os.getpid()}"
    image, network = f"{tag}/busybox:1", tag
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(BUSYBOX, arcname="bin/busybox")
            for applet in ("sh", "mount", "sleep", "cat"):
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        engine.docker("import", str(archive), image)
    try:
        address = create_network(engine, network)
        yield image, network, address
    finally:
        engine.docker("network", "rm", network, check=False)
        engine.docker("image", "rm", "-f", image, check=False)


def create_network(engine: Engine, name: str) -> str:
    """The first 10.253.x.0/24 the engine accepts (it refuses pools that overlap its others)."""
    for third in range(200, 250):
        prefix = f"10.253.{third}"
        created = engine.docker(
            "network", "create", "--driver", "bridge", "--subnet", f"{prefix}.0/24",
            "--gateway", f"{prefix}.1", "--ip-range", f"{prefix}.0/25",
            "-o", "com.docker.network.driver.mtu=1500", name, check=False,
        )  # fmt: skip
        if created.returncode == 0:
            return f"{prefix}.254"  # the router's place: the top of the underlay
    pytest.fail("the engine accepted no 10.253.200-249.0/24 network")


def start_like_the_provider(
    engine: Engine, inputs: dict[str, Any], name: str, image: str, network: str, address: str
) -> None:
    """The router's entrypoint, caps, security options and sysctls, with PROBE_START as the
    image's start, in the Docker provider's order. The CLI takes one word for --entrypoint; the
    rest goes first in the arguments, which makes the same argv."""
    # No entrypoint in the inputs: the image's start alone, as before the router had one.
    entrypoint, *entry_args = inputs.get("entrypoints") or ["/bin/sh", "-c", 'exec "$@"', "plain"]
    flags = ["--name", name, "--hostname", name, "--network", "bridge", "--entrypoint", entrypoint]
    for cap in inputs["capabilities"]["adds"]:
        flags += ["--cap-add", cap]
    for option in inputs.get("securityOpts", []):
        flags += ["--security-opt", option]
    for key, value in sorted(inputs["sysctls"].items()):
        flags += ["--sysctl", f"{key}={value}"]
    engine.docker("create", *flags, image, *entry_args, *PROBE_START)
    # The provider creates on the default network, then leaves it (ignoring "not connected").
    engine.docker("network", "disconnect", "bridge", name, check=False)
    opts = [f"--driver-opt={opt}" for n in inputs["networksAdvanced"] for opt in n.get("driverOpts") or []]
    engine.docker("network", "connect", *opts, "--ip", address, network, name)
    engine.docker("start", name)


def inside(engine: Engine, name: str, path: str) -> str:
    return engine.docker("exec", name, "cat", path).stdout


def redirects(engine: Engine, name: str) -> dict[str, str]:
    conf = "/proc/sys/net/ipv4/conf"
    return {i: inside(engine, name, f"{conf}/{i}/send_redirects").strip() for i in ("all", "default", "eth0")}


_serial = iter(range(1_000_000))


@pytest.fixture
def container(engine: Engine) -> Iterator[str]:
    name = f"cdl-frr-test-{os.getpid()}-{next(_serial)}"
    try:
        yield name
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_on_the_engine_eth0_and_all_keep_redirects_off(
    engine: Engine, lab: tuple[str, str, str], router: dict[str, Any], container: str
) -> None:
    image, network, address = lab
    start_like_the_provider(engine, router, container, image, network, address)
    assert redirects(engine, container) == {"all": "0", "default": "0", "eth0": "0"}
    # Its one interface besides lo, eth0, is the lab network's:
    assert address in inside(engine, container, "/proc/net/fib_trie")
    mounts = inside(engine, container, "/proc/mounts")
    assert re.search(r"^proc /proc/sys proc ro,", mounts, re.M), "/proc/sys is read-only again"
    assert inside(engine, container, "/proc/1/cmdline").split("\0")[:-1] == PROBE_START  # exec'd as PID 1
    engine.docker("restart", "--time", "0", container)  # a new network namespace: the entrypoint runs again
    assert redirects(engine, container) == {"all": "0", "default": "0", "eth0": "0"}


def test_on_the_engine_the_sysctls_alone_leave_eth0_sending_redirects(
    engine: Engine, lab: tuple[str, str, str], router: dict[str, Any], container: str
) -> None:
    """Why the entrypoint exists: `default`=0 at create does not reach eth0, which Docker moves in
    before it applies the container's sysctls (until Engine 28.0 dropped the prestart hook)."""
    if engine.version >= (28, 0, 0):
        pytest.skip(f"Engine {'.'.join(map(str, engine.version))} moves interfaces in after the sysctls")
    image, network, address = lab
    start_like_the_provider(engine, {**router, "entrypoints": None}, container, image, network, address)
    assert redirects(engine, container) == {"all": "0", "default": "0", "eth0": "1"}


def test_on_the_engine_a_router_that_cannot_remount_does_not_start(
    engine: Engine, lab: tuple[str, str, str], router: dict[str, Any], container: str
) -> None:
    image, network, address = lab
    without_sys_admin = {**router, "capabilities": {"adds": ["CAP_NET_ADMIN", "CAP_NET_RAW"]}}
    start_like_the_provider(engine, without_sys_admin, container, image, network, address)
    engine.docker("wait", container)
    state = engine.docker("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
    assert state == "1"
    assert "redirects-off: cannot remount /proc/sys read-write" in engine.docker("logs", container).stderr
