"""pytest plugin: the fast tier, i.e. the suite as an unprivileged user runs it.

Why: mutation testing reruns tests once per mutant, so it may only use tests that take seconds
and touch no host state. Every test that needs root (network namespaces, FRR/GoBGP daemons,
dockerd) already skips itself when `os.geteuid() != 0`; reporting a non-root user here, before
any test module is imported, leaves exactly the tests that need no root and no daemons, with no
second list of them to keep in step. Load it with `pytest -p bench.mutation.fast_tier`.
"""

from __future__ import annotations

import os

UNPRIVILEGED_UID = 65534  # nobody


def _unprivileged() -> int:
    return UNPRIVILEGED_UID


os.geteuid = _unprivileged
