"""What comments and docstrings say about the repository and the tools it drives is true."""

from __future__ import annotations

import re
from pathlib import Path

from components.kind_cluster import KindCluster

ROOT = Path(__file__).resolve().parent.parent
# Where a comment or docstring may point a reader at another file of the project.
SOURCES = [
    "Makefile",
    "README.md",
    "__main__.py",
    "cilium",
    "components",
    "docs",
    "engine",
    "frr",
    "host",
    "lab",
    "scripts",
    "supply",
    "verify",
]
_PATH = re.compile(
    r"(?<![\w/$.-])((?:lab|components|verify|scripts|cilium|frr|tests|bench|stacks|supply|host|engine|docs)/[\w./-]+\.(?:py|ya?ml|sh|j2|mmd|conf|md|json|c|toml|go))\b"
)


def _texts() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [f for f in files if "__pycache__" not in f.parts]


def test_every_file_a_comment_points_at_exists() -> None:
    dangling = [
        f"{f.relative_to(ROOT)}: {m}"
        for f in _texts()
        for m in _PATH.findall(f.read_text(errors="replace"))
        if not (ROOT / m).exists()
    ]
    assert not dangling, dangling


def test_the_kind_cluster_docstring_says_what_kind_does_with_its_own_network() -> None:
    """kind creates its `kind` network with only an IPv6 --subnet of its own choosing; Docker
    still gives it an IPv4 subnet from its default pools (kind's docker/network.go). The lab's
    reason for its own network is a subnet known before `pulumi up`: the stack's underlaySubnet."""
    doc = " ".join((KindCluster.__doc__ or "").split())
    assert "only an IPv6" not in doc and "gets only" not in doc
    assert "IPv4 subnet Docker picks" in doc and "underlaySubnet" in doc
    assert "KIND_EXPERIMENTAL_DOCKER_NETWORK" in doc
