"""Shared test setup: the project root and this folder are importable (as Pulumi runs __main__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(autouse=True)
def _registry_images_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests evaluate the stacks as a user's host would: the offline switch (lab/offline.py) is
    off unless a test turns it on, whatever the shell running the tests has set."""
    monkeypatch.delenv("LAB_OFFLINE_SUPPLY", raising=False)
