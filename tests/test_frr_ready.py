"""An FRR router is up only when FRR runs every line of its rendered config (scripts/frr/ready.sh).

FRR skips a config line it cannot parse and keeps running, so a router could peer with a config
other than the rendered one. The readiness script reads the router's startup log, fails on any
rejected line and quotes it. Here against a fake `docker` that answers from files, with the log
lines of both FRR versions; the real router (Debian's FRR 8.4) in tests/test_real_bgp.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mockstack import evaluate

from lab.scripts import INTERPRETER, script

FAKE_DOCKER = """#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
# A real docker CLI streams its output in pieces: with FAKE_STATE/streams, the last piece comes
# later, when a reader that stopped at its match has gone (SIGPIPE, exit 141).
more() { [ -e "$FAKE_STATE/streams" ] && { sleep 0.2; echo "(more output)"; }; return 0; }
case "$1" in
  logs) cat "$FAKE_STATE/log"; more ;;
  exec)
    case "$*" in
      *cmdline*) [ -e "$FAKE_STATE/restarting" ] && rm "$FAKE_STATE/restarting" ;;  # once, then done
      *) cat "$FAKE_STATE/running-config" 2>/dev/null && more ;;
    esac ;;
esac
"""
RUNNING = "frr version 8.4.4\nhostname lab-bgp-frr0\n!\nrouter bgp 65000\n bgp router-id 172.30.9.254\nexit\n"
BOOT_LOG = "2026/12/07 10:00:00 ZEBRA: [NNACN-54BDA] Disabling MPLS support (no kernel support)\n"
UP = "2026/12/07 10:00:05 WATCHFRR: [KWE5Q-QNGFC] all daemons up, doing startup-complete notify\n"


def _ready(
    tmp_path: Path,
    log: str,
    running: str | None,
    timeout: int = 5,
    restarting: bool = False,
    streams: bool = False,
) -> subprocess.CompletedProcess[str]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    for folder in (bin_dir, state):
        folder.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (state / "log").write_text(log)
    if running is not None:
        (state / "running-config").write_text(running)
    if restarting:
        (state / "restarting").write_text("")
    if streams:
        (state / "streams").write_text("")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_STATE": str(state),
        "LAB_ROUTER": "lab-bgp-frr0",
        "LAB_TIMEOUT": str(timeout),
    }
    return subprocess.run(
        [*INTERPRETER, script("frr/ready")], env=env, capture_output=True, text=True, check=False, timeout=30
    )


def test_a_router_running_its_whole_config_is_ready(tmp_path: Path) -> None:
    result = _ready(tmp_path, BOOT_LOG + UP, RUNNING)
    assert result.returncode == 0, result.stderr
    assert "FRR on lab-bgp-frr0 runs its whole configuration (no line rejected)" in result.stderr


@pytest.mark.parametrize(
    "rejection",
    [
        # vtysh -b applying frr.conf as watchfrr starts the daemons (Debian's FRR 8.4, seen here)
        "line 21: % Unknown command[25]:  neighbor NODES bogus-knob 3\n"
        "Configuration file[/etc/frr/frr.conf] processing failure: 2",
        # FRR 8.4 (lib/vty.c: "ERROR: %s on config line %u: %s")
        "2026/12/07 10:00:01 BGP: [RHJDG-5FNSK][EC 100663304] ERROR: No such command on config line 21: "
        "neighbor NODES bogus-knob 3",
        # FRR 10.x ("%s on config line %u: %s")
        "2026/12/07 10:00:01 BGP: [RHJDG-5FNSK][EC 100663304] No such command on config line 21: "
        "neighbor NODES bogus-knob 3",
    ],
)
def test_a_rejected_line_fails_the_router_quoting_it_even_though_bgp_runs(
    tmp_path: Path, rejection: str
) -> None:
    """The BGP instance is up (the rest of the config was read): the rejected line still fails it."""
    result = _ready(tmp_path, BOOT_LOG + rejection + "\n" + UP, RUNNING)
    assert result.returncode == 1
    assert "FRR on lab-bgp-frr0 rejected lines of its configuration at startup" in result.stderr
    assert "21: " in result.stderr and "neighbor NODES bogus-knob 3" in result.stderr
    assert "fix: the rendered config (frr/frr.conf.j2)" in result.stderr


def test_it_waits_for_the_command_that_applies_the_config_to_end(tmp_path: Path) -> None:
    """watchfrr can say "all daemons up" while `vtysh -b` still runs: the script looks again."""
    result = _ready(tmp_path, BOOT_LOG + UP, RUNNING, restarting=True)
    assert result.returncode == 0, result.stderr
    calls = Path(tmp_path / "calls.log").read_text()
    assert calls.count("cmdline") == 2, calls


def test_output_that_goes_on_after_the_match_is_read_whole(tmp_path: Path) -> None:
    """Seen in CI: `docker exec ... | grep -q` under pipefail failed a router that ran its BGP
    instance, as grep left at its match and docker died writing the rest. Here the log and the
    running config go on after the lines looked for; the router is ready at the first look."""
    result = _ready(tmp_path, BOOT_LOG + UP, RUNNING, streams=True)
    assert result.returncode == 0, result.stderr
    calls = Path(tmp_path / "calls.log").read_text()
    assert calls.count("docker logs") == 2, calls  # once until up, once for rejected lines


def test_a_processing_failure_without_a_line_still_fails_the_router(tmp_path: Path) -> None:
    failure = "Configuration file[/etc/frr/frr.conf] processing failure: 13\n"
    result = _ready(tmp_path, BOOT_LOG + failure + UP, RUNNING)
    assert result.returncode == 1 and "processing failure: 13" in result.stderr


def test_a_router_up_without_its_bgp_instance_fails(tmp_path: Path) -> None:
    result = _ready(tmp_path, BOOT_LOG + UP, RUNNING.replace("router bgp", "router ospf"))
    assert result.returncode == 1 and "runs no BGP instance" in result.stderr


def test_a_router_that_never_runs_bgp_fails_with_its_log(tmp_path: Path) -> None:
    result = _ready(tmp_path, BOOT_LOG + "watchfrr: Can't create pid lock file\n", None, timeout=1)
    assert result.returncode == 1
    assert "runs no BGP instance (waited up to 1s)" in result.stderr
    assert "Can't create pid lock file" in result.stderr


def test_each_router_has_a_readiness_gate_the_checks_wait_for() -> None:
    ev = evaluate("bgp")
    ready = ev.one("command:local:Command", "frr0-ready")
    container = ev.one("docker:index/container:Container", "frr0-container")
    assert ready.inputs["environment"]["LAB_ROUTER"] == container.inputs["name"]
    assert ready.inputs["create"] == script("frr/ready")
    assert container.urn in ready.dependencies
    checks = [r for r in ev.by_type("command:local:Command") if r.name.startswith("verify-bgp.")]
    assert checks and all(ready.urn in c.dependencies for c in checks)
