"""The preflight's kernel reading against this very host, cross-checked by the kernel itself.

The other preflight tests feed made-up host files. Here the preflight reads the real ones, and
the answer it gives for each tunnel is compared with what the kernel does when asked for that
device (`ip link add ... type geneve|vxlan` in a network namespace of the test's own, removed
afterwards). On this project's machine (no geneve, VXLAN built in) that means: `make up
STACK=geneve` is refused by the preflight with the fix, while `make preview STACK=geneve` only
warns; on a host with geneve both would pass, and the same tests would say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from host.preflight import HostFiles, check_kernel_modules
from lab.config import parse_config

REPO = Path(__file__).resolve().parent.parent
# What the lab's modes create on the nodes, as `ip link` arguments (remote from TEST-NET-1).
DEVICES = {
    "geneve": ["geneve", "id", "1", "remote", "192.0.2.1"],
    "overlay": ["vxlan", "id", "1", "remote", "192.0.2.1", "dstport", "8472"],
}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="asking the kernel for a tunnel device needs root and iproute2",
)


def kernel_makes(mode: str) -> bool:
    """Whether this kernel creates the mode's tunnel device (a namespace of our own, then gone)."""
    namespace = f"cdl-pf-{mode}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True, timeout=30)
    try:
        made = subprocess.run(
            ["ip", "-n", namespace, "link", "add", "cdltun0", "type", *DEVICES[mode]],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return made.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=True, timeout=30)


@pytest.mark.parametrize("mode", sorted(DEVICES))
def test_the_preflight_reads_this_kernel_as_the_kernel_behaves(mode: str) -> None:
    can = kernel_makes(mode)
    (finding,) = check_kernel_modules(parse_config({"mode": mode}, mode), HostFiles())
    assert finding.ok is can, f"the kernel {'makes' if can else 'refuses'} a {mode} device: {finding}"
    if not can:
        assert finding.required and "fix:" in str(finding) and f"mode {mode}" in str(finding)


def _preflight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host.preflight", "--stack", "geneve", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_geneve_up_is_refused_with_the_fix_where_the_kernel_has_no_geneve() -> None:
    """Exactly what `make up STACK=geneve` meets first on a kernel without geneve; a preview of it
    creates nothing, so there the same finding is a warning."""
    if kernel_makes("geneve"):
        pytest.skip("this kernel makes geneve devices: the geneve lab can run here")
    up = _preflight("--for", "up")
    lines = up.stdout.splitlines()
    failed = [i for i, line in enumerate(lines) if line.startswith("[FAIL]") and "geneve" in line]
    assert up.returncode == 1 and len(failed) == 1, up.stdout
    assert "mode geneve needs it" in lines[failed[0]], up.stdout
    assert lines[failed[0] + 1].strip().startswith("fix: "), up.stdout
    preview = _preflight("--for", "preview")
    assert not [
        line for line in preview.stdout.splitlines() if line.startswith("[FAIL]") and "geneve" in line
    ]
    assert any(line.startswith("[warn]") and "geneve" in line for line in preview.stdout.splitlines()), (
        preview.stdout
    )
