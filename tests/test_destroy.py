"""Destroy works without a cluster: every delete command of every stack, run twice on a host where
the cluster is already gone, succeeds; and everything else is deleted with the cluster."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mockstack import evaluate

from lab.modes import Mode

GONE_KIND = """#!/bin/bash
echo "kind $*" >> "$FAKE_LOG"
case "$1 $2" in
  "get clusters") echo "No kind clusters found." >&2 ;;
  *) echo "ERROR: unexpected kind call: $*" >&2; exit 1 ;;
esac
"""
GONE_DOCKER = """#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
echo "Error response from daemon: No such container: $3" >&2
exit 1
"""


@pytest.fixture
def host_without_cluster(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("kind", GONE_KIND), ("docker", GONE_DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(tmp_path / "calls.log")}


@pytest.mark.parametrize("stack", [m.value for m in Mode])
def test_every_delete_command_is_idempotent_without_a_cluster(
    stack: str, host_without_cluster: dict[str, str], tmp_path: Path
) -> None:
    ev = evaluate(stack)
    deletes = [r for r in ev.by_type("command:local:Command") if r.inputs.get("delete")]
    assert deletes, "the cluster at least has a delete command"
    for r in deletes:
        env = {**host_without_cluster, **r.inputs["environment"]}
        for attempt in (1, 2):
            done = subprocess.run(
                [*r.inputs["interpreter"], r.inputs["delete"]],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
            assert done.returncode == 0, f"{r.name} delete (attempt {attempt}): {done.stderr}"
    calls = Path(host_without_cluster["FAKE_LOG"]).read_text()
    assert "kind delete" not in calls  # nothing to delete, nothing attempted


@pytest.mark.parametrize("stack", [m.value for m in Mode])
def test_commands_without_delete_are_deleted_with_the_cluster(stack: str) -> None:
    ev = evaluate(stack)
    cluster = ev.one("command:local:Command", "-cluster")
    for r in ev.by_type("command:local:Command"):
        if r is not cluster and not r.inputs.get("delete"):
            assert r.deleted_with == cluster.urn, r.name
