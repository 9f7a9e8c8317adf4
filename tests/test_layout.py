"""One concern per folder: the lab's model, its components and its checks never reach into the
machinery this machine builds for itself (supply/) or the host tools (host/), so a user's host
runs the stacks without any of it, and a newcomer can read each room on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# room -> the top-level packages its code may not import
FORBIDDEN = {
    "lab": {"supply", "host", "components", "verify", "engine"},
    "components": {"supply", "host", "engine"},
    "verify": {"supply", "host", "components", "engine"},
    "__main__.py": {"supply", "host", "engine"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _python_files(room: str) -> list[Path]:
    path = ROOT / room
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_nothing_it_must_not(room: str) -> None:
    files = _python_files(room)
    assert files, room
    crossing = {
        str(f.relative_to(ROOT)): sorted(_imported_packages(f) & FORBIDDEN[room])
        for f in files
        if _imported_packages(f) & FORBIDDEN[room]
    }
    assert crossing == {}


def test_the_check_catches_a_crossing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from supply import toolchain  # noqa\n    import host.preflight\n")
    assert _imported_packages(bad) >= {"supply", "host"}


def test_no_build_code_or_recipe_is_left_in_the_model() -> None:
    """The supply's modules and recipes live in supply/ alone."""
    for name in (
        "toolchain.py",
        "images.py",
        "node_image.py",
        "chart.py",
        "cilium_images.py",
        "buildcache.py",
    ):
        assert not (ROOT / "lab" / name).exists(), name
    for folder in ("toolchain", "images"):
        assert not (ROOT / folder).exists(), folder
    assert (ROOT / "supply" / "toolchain" / "recipe.toml").is_file()
    assert (ROOT / "supply" / "images" / "kind-node" / "recipe.toml").is_file()
    assert (ROOT / "supply" / "images" / "cilium" / "recipe.toml").is_file()
