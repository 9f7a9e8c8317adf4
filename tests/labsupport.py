"""What the replica and BGP test files share: when they can run here, and running one check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from verify import catalogue
from verify.bgp_replica import tools_missing
from verify.checks import Context, Verdict
from verify.replica import check_prefix

REPLICA_TOOLS = ("ip", "tcpdump", "ping", "bpftool", "clang")
needs_replica = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in REPLICA_TOOLS),
    reason="the replica needs root and iproute2, tcpdump, ping, bpftool and clang (see .ci/run)",
)

_BGP_MISSING = tools_missing() if os.geteuid() == 0 else []
needs_bgp_daemons = pytest.mark.skipif(
    os.geteuid() != 0 or bool(_BGP_MISSING) or not all(shutil.which(t) for t in ("ip", "ping")),
    reason="real BGP daemons in network namespaces need root, iproute2, ping, FRR (vtysh, zebra, bgpd), "
    f"gobgpd/gobgp, python3 and tcpdump (missing: {', '.join(_BGP_MISSING) or 'root'})",
)
CONVERGE_LIMIT = 30.0  # seconds a real-daemon scenario may take to converge (issue #5)


def run_prefix(tag: str) -> str:
    """A replica prefix of this test process only: `cdl<tag><pid>-`.

    Why: Replica.up() first removes its prefix's namespaces (a crashed run's leftovers) and ends
    the processes inside; two test runs at once on one host with a fixed prefix end each other's
    daemons mid-test. A killed run's leftovers: `python -m verify replica down --prefix <it>`.
    """
    return check_prefix(f"cdl{tag}{os.getpid() % 100000}-")


def run_check(check_id: str, probe: Any, tmp_path: Path) -> Verdict:
    """Run one check of the catalogue once (no settle retries) and print its findings."""
    verdict = catalogue.by_id(check_id).run(probe, Context(artifacts=tmp_path, mode=probe.topology.mode))
    print("\n".join([f"{check_id}: {verdict.status}", *verdict.findings]))
    return verdict


def failed(verdict: Verdict) -> list[str]:
    return [f for f in verdict.findings if f.startswith("FAIL")]
