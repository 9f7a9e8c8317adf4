"""engine/dockerd.sh cases the shell mutation harness (bench/mutation/shell.py) found no test for.

Most need no engine: what LAB_ENGINE_DIR and the timeouts may be is checked before any command
runs, and `stop` is exercised on stand-in processes named `dockerd` and `containerd-shim-runc-v2`
(a python script under that name; the kernel names a script's process after the script), children
of this test so that one can stay unreaped, as this machine's PID 1 leaves an exited dockerd.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "engine" / "dockerd.sh"
# The longest socket dockerd's containerd makes under the engine folder (engine/dockerd.sh).
LONGEST_SUFFIX = "/run/containerd/containerd.sock.ttrpc"


def script(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


# --- what LAB_ENGINE_DIR and the timeouts may be (checked before any command) -----------------------


def test_a_trailing_slash_is_dropped_from_the_engine_folder() -> None:
    done = script("env", env={"LAB_ENGINE_DIR": "/tmp/cdl-mutants-engine/"})
    assert (done.returncode, done.stdout) == (
        0,
        "export DOCKER_HOST=unix:///tmp/cdl-mutants-engine/docker.sock\n",
    )


@pytest.mark.parametrize("engine_dir", [str(ROOT), f"{ROOT}/", f"{ROOT}/cache"])
def test_the_repository_and_any_folder_in_it_are_refused(engine_dir: str) -> None:
    done = script("env", env={"LAB_ENGINE_DIR": engine_dir})
    assert done.returncode == 1 and done.stdout == ""
    assert f"LAB_ENGINE_DIR must lie outside the repository ({ROOT})" in done.stderr


def test_a_sibling_folder_that_starts_with_the_repositorys_name_is_outside_it() -> None:
    sibling = f"{ROOT}-engine"
    done = script("env", env={"LAB_ENGINE_DIR": sibling})
    assert (done.returncode, done.stdout) == (0, f"export DOCKER_HOST=unix://{sibling}/docker.sock\n"), (
        done.stderr
    )


@pytest.mark.parametrize("variable", ["LAB_ENGINE_START_TIMEOUT", "LAB_ENGINE_STOP_TIMEOUT"])
@pytest.mark.parametrize("value", ["abc", "1.5", "1;id", "-1"])
def test_each_timeout_must_be_whole_seconds(variable: str, value: str) -> None:
    done = script("env", env={"LAB_ENGINE_DIR": "/tmp/cdl-mutants-engine", variable: value})
    assert (done.returncode, done.stdout) == (1, "")
    assert "the LAB_ENGINE_*_TIMEOUT values are whole seconds" in done.stderr


def _dir_with_longest_socket(length: int) -> str:
    engine_dir = "/tmp/cdl-" + "d" * (length - len(LONGEST_SUFFIX) - len("/tmp/cdl-"))
    assert len(engine_dir + LONGEST_SUFFIX) == length
    return engine_dir


def test_the_socket_path_limit_is_107_characters() -> None:
    """sun_path holds 108 bytes with the terminating NUL: a 108-character path cannot be bound."""
    fits = script("env", env={"LAB_ENGINE_DIR": _dir_with_longest_socket(107)})
    assert fits.returncode == 0, fits.stderr
    too_long = script("env", env={"LAB_ENGINE_DIR": _dir_with_longest_socket(108)})
    assert too_long.returncode == 1 and "too long for unix socket paths" in too_long.stderr


# --- stop, on stand-in processes ---------------------------------------------------------------------


@pytest.fixture
def engine_dir() -> Iterator[Path]:
    # Short and outside the repository: socket paths must stay under 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="cdl-mut-", dir="/tmp"))
    yield path
    if not [line for line in Path("/proc/mounts").read_text().splitlines() if f" {path}/" in line]:
        shutil.rmtree(path, ignore_errors=True)  # never into a mount an unclean stop left
    shutil.rmtree(f"{path}-2", ignore_errors=True)


class StandIns:
    """Processes named like the engine's, started by this test (so never reaped behind its back)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        program = self.bin_dir / name
        if not program.exists():
            program.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
            program.chmod(0o755)
        proc = subprocess.Popen([str(program), *args])
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{proc.pid}/comm").read_text().strip() != name[:15]:  # until it runs as `name`
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.02)
        return proc


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[StandIns]:
    made = StandIns(tmp_path)
    yield made
    for proc in made.procs:
        proc.kill()
        proc.wait()


def _dockerd(
    stand_ins: StandIns, engine_dir: Path, pidfile_arg: str | None = None
) -> subprocess.Popen[bytes]:
    pidfile = engine_dir / "dockerd.pid"
    proc = stand_ins.start("dockerd", f"--data-root={engine_dir}/data", pidfile_arg or f"--pidfile={pidfile}")
    pidfile.write_text(str(proc.pid))  # as dockerd writes it: no newline
    return proc


def _stop(engine_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return script("stop", env={"LAB_ENGINE_DIR": str(engine_dir), "LAB_ENGINE_STOP_TIMEOUT": "3", **env})


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    """Running, not merely unreaped (a zombie's state is Z)."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def test_stop_sends_term_and_an_exited_but_unreaped_dockerd_counts_as_stopped(
    engine_dir: Path, stand_ins: StandIns
) -> None:
    dockerd = _dockerd(stand_ins, engine_dir)
    started = time.monotonic()
    done = _stop(engine_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"stopping dockerd (pid {dockerd.pid})" in done.stdout and "engine: stopped after" in done.stdout
    assert not _alive(dockerd)  # a zombie until this test reaps it, and stop did not wait for that
    assert time.monotonic() - started < 3  # not the 3 s STOP_TIMEOUT
    assert dockerd.wait() == -15  # SIGTERM


def test_stop_reports_a_shim_of_its_engine_that_outlives_dockerd_and_leaves_it(
    engine_dir: Path, stand_ins: StandIns
) -> None:
    _dockerd(stand_ins, engine_dir)
    address = f"{engine_dir}/run/containerd/containerd.sock"
    shim = stand_ins.start("containerd-shim-runc-v2", "-namespace", "moby", "-address", address)
    done = _stop(engine_dir)
    assert done.returncode == 1
    assert "dockerd stopped, but these processes of" in done.stderr and f"  {shim.pid} " in done.stderr
    assert _alive(shim)  # not touched


def test_processes_of_an_engine_whose_folder_starts_with_this_ones_name_are_not_its_own(
    engine_dir: Path, stand_ins: StandIns
) -> None:
    _dockerd(stand_ins, engine_dir)
    sibling = Path(f"{engine_dir}-2")
    (sibling / "run").mkdir(parents=True)
    other = stand_ins.start("dockerd", f"--pidfile={sibling}/dockerd.pid", f"--exec-root={sibling}/run")
    done = _stop(engine_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "remain" not in done.stderr
    assert _alive(other)


def test_a_pidfile_naming_a_process_whose_argument_only_starts_like_ours_is_stale(
    engine_dir: Path, stand_ins: StandIns
) -> None:
    impostor = _dockerd(stand_ins, engine_dir, pidfile_arg=f"--pidfile={engine_dir}/dockerd.pid.old")
    done = _stop(engine_dir)
    assert done.returncode == 0
    assert "not running (stale pidfile" in done.stdout
    assert _alive(impostor)


def test_stop_waits_for_the_engines_lock(engine_dir: Path, stand_ins: StandIns) -> None:
    """A start of the same engine holds the lock half-way; with no time to wait, stop gives up."""
    dockerd = _dockerd(stand_ins, engine_dir)
    with (engine_dir / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = _stop(engine_dir, LAB_ENGINE_START_TIMEOUT="0", LAB_ENGINE_STOP_TIMEOUT="0")
    assert done.returncode == 1
    assert f"another engine/dockerd.sh holds {engine_dir}/lock" in done.stderr
    assert _alive(dockerd)


# --- the real engine (root) ------------------------------------------------------------------------

needs_engine = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
    reason="the local Docker engine needs root and Debian's docker.io, containerd and runc (see .ci/run)",
)


@needs_engine
def test_the_callers_docker_settings_do_not_reach_the_engines_cli(engine_dir: Path) -> None:
    """A shell set up for a remote engine (TLS, its certificates, a context) still starts, asks
    and stops this one: with DOCKER_TLS_VERIFY the CLI would look for ~/.docker/ca.pem."""
    hostile = {
        "LAB_ENGINE_DIR": str(engine_dir),
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(engine_dir / "no-certs"),
        "DOCKER_CONTEXT": "cdl-no-such-context",
    }
    try:
        started = script("start", env=hostile, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        status = script("status", env=hostile)
        assert (
            "running (pid" in status.stdout
            and "answering" in status.stdout
            and "not answering" not in status.stdout
        )
    finally:
        stopped = script("stop", env={"LAB_ENGINE_DIR": str(engine_dir)}, timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@needs_engine
def test_a_containerd_pidfile_naming_another_process_is_removed_before_start(
    engine_dir: Path, stand_ins: StandIns
) -> None:
    """dockerd adopts the containerd its pidfile names while that PID lives, then gives up on the dead
    socket: a PID since reused (here by a process that also takes a --config) is not this engine's
    containerd, whose command line names its own containerd.toml."""
    pidfile = engine_dir / "run" / "containerd" / "containerd.pid"
    pidfile.parent.mkdir(parents=True)
    other = stand_ins.start("containerd", "--config", "/etc/other/config.toml")
    pidfile.write_text(str(other.pid))
    env = {"LAB_ENGINE_DIR": str(engine_dir), "LAB_ENGINE_START_TIMEOUT": "40"}
    try:
        started = script("start", env=env, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"removing the stale containerd pidfile {pidfile}" in started.stdout
        assert _alive(other)  # never signalled
    finally:
        stopped = script("stop", env={"LAB_ENGINE_DIR": str(engine_dir)}, timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
