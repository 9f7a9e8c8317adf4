"""Every delete command of every stack, run with values full of spaces, globs and shell syntax:
each value must reach kind, docker and rm as one argument, and nothing in it may run.

The values the program passes are validated, so these never occur in a real lab; the test is
what catches an unquoted `$VAR` slipping into a delete script (where it would split on the
space, glob `*`, and with a malicious value delete the wrong files).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mockstack import evaluate

from lab.modes import Mode

# Each fake logs its argv as one JSON line, then answers as a host where the lab still exists.
FAKE = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
if sys.argv[1:3] == ["get", "clusters"]:
    print(os.environ["LAB_CLUSTER"])
"""


def hostile(name: str, canary: Path) -> str:
    """A value with a marker to find it by, a space, glob characters and three ways to run a command."""
    return f"{name}-marker a b*?[x] ;touch {canary}; $(touch {canary}) `touch {canary}`"


def deletes() -> list[tuple[str, Any]]:
    found = []
    for mode in Mode:
        for r in evaluate(mode.value).by_type("command:local:Command"):
            if r.inputs.get("delete"):
                found.append((f"{mode.value}:{r.name}", r))
    return found


DELETES = deletes()


@pytest.mark.parametrize(("name", "resource"), DELETES, ids=[n for n, _ in DELETES])
def test_every_value_reaches_the_tools_as_one_argument(name: str, resource: Any, tmp_path: Path) -> None:
    bin_dir, canary, log = tmp_path / "bin", tmp_path / "canary", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("kind", "docker"):
        (bin_dir / tool).write_text(FAKE)
        (bin_dir / tool).chmod(0o755)
    env = dict(resource.inputs["environment"])
    values = {k: hostile(k, canary) for k in env if k != "LAB_ROUTES"}  # route lines: see below
    env |= values
    if "LAB_KUBECONFIG" in env:
        # The file with the hostile name exists, and so do files its words and glob would match.
        kubeconfig = tmp_path / env["LAB_KUBECONFIG"]
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        kubeconfig.write_text("kind: Config\n")
        decoys = [tmp_path / "LAB_KUBECONFIG-marker", tmp_path / "a", kubeconfig.parent / "b-x"]
        for d in decoys:
            d.write_text("keep me\n")
    done = subprocess.run(
        [*resource.inputs["interpreter"], resource.inputs["delete"]],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert not canary.exists(), "a value was run as shell"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert calls, "the delete called no tool"
    for argv in calls:
        for var, value in values.items():
            pieces = [a for a in argv if f"{var}-marker" in a]
            assert all(a == value for a in pieces), f"{var} was split or rewritten: {argv}"
    used = {var for var, value in values.items() if any(value in argv for argv in calls)}
    assert used == set(values) - {"LAB_NETWORK"}  # the cluster's delete needs no network name
    if "LAB_KUBECONFIG" in env:
        assert not kubeconfig.exists(), "the kubeconfig named by the value was not removed"
        assert all(d.exists() for d in decoys), "rm removed files the value only looks like"


def test_route_lines_with_shell_syntax_are_refused(tmp_path: Path) -> None:
    """LAB_ROUTES is split into ip-route words on purpose, so its lines are validated instead."""
    (name, resource) = next((n, r) for n, r in DELETES if "routes" in n)
    canary = tmp_path / "canary"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE)
    (bin_dir / "docker").chmod(0o755)
    env = {**resource.inputs["environment"], "LAB_ROUTES": f"10.10.0.0/27 via 172.30.4.2; touch {canary}"}
    done = subprocess.run(
        [*resource.inputs["interpreter"], resource.inputs["delete"]],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(tmp_path / "log"), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 2 and "refusing route line" in done.stderr, (name, done.stderr)
    assert not canary.exists()
