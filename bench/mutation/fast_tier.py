"""pytest plugin: the fast tier, i.e. the suite as an unprivileged user runs it.

Why: mutation testing reruns tests once per mutant, so it may only use tests that take seconds
and touch no host state. Every test that needs root (network namespaces, FRR/GoBGP daemons,
dockerd) already skips itself when `os.geteuid() != 0`; reporting a non-root user here, before
any test module is imported, leaves exactly the tests that need no root and no daemons, with no
second list of them to keep in step. Load it with `pytest -p bench.mutation.fast_tier`.

Each test session (one per mutant run) also gets a HOME and XDG_CACHE_HOME of its own, removed
when it ends. Why: a mutant can make the code under test write where the tests did not point it
(a build whose `env` falls back to the process's environment wrote a stand-in node image into
the cache under HOME); the next run, with another mutant or none, would find it and fail, and
every mutant after it would count as killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

UNPRIVILEGED_UID = 65534  # nobody
_HOME_PREFIX = "cdl-fast-tier-home-"


def _unprivileged() -> int:
    return UNPRIVILEGED_UID


os.geteuid = _unprivileged

_session_home: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    home = tempfile.mkdtemp(prefix=_HOME_PREFIX)
    _session_home.append(home)
    os.environ["HOME"] = home
    os.environ["XDG_CACHE_HOME"] = os.path.join(home, ".cache")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _session_home:
        shutil.rmtree(_session_home.pop(), ignore_errors=True)
