"""supply/buildcache.py cases a mutation run (`make mutation`) found no test for."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from supply import buildcache
from supply.buildcache import STAMP, built_dir, finish, recipe_key, start


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A recipe folder with a nested file, a build script, and buildcache.py's bytes held fixed (the
    mutated copy's own bytes differ from the file's)."""
    recipe_dir = tmp_path / "recipe"
    (recipe_dir / "wrapper").mkdir(parents=True)
    (recipe_dir / "recipe.toml").write_text("version = 1\n")
    (recipe_dir / "wrapper" / "go.mod").write_text("module wrapper\n")
    script = tmp_path / "build.py"
    script.write_text("print('build')\n")
    helper = tmp_path / "buildcache.py"
    helper.write_text("# the build discipline\n")
    monkeypatch.setattr(buildcache, "__file__", str(helper))
    return recipe_dir, script


def test_the_key_follows_every_recipe_file_even_a_nested_one(recipe: tuple[Path, Path]) -> None:
    recipe_dir, script = recipe
    key = recipe_key(recipe_dir, script, "go1.26")
    (recipe_dir / "wrapper" / "go.mod").write_text("module wrapper\n\ngo 1.26\n")
    assert recipe_key(recipe_dir, script, "go1.26") != key
    (recipe_dir / "wrapper" / "go.mod").write_text("module wrapper\n")
    assert recipe_key(recipe_dir, script, "go1.26") == key
    (recipe_dir / "wrapper" / "go.sum").write_text("")  # a new, empty file
    assert recipe_key(recipe_dir, script, "go1.26") != key


def test_the_key_follows_where_a_recipe_file_is_not_only_what_it_holds(recipe: tuple[Path, Path]) -> None:
    """A file moved to another folder (or renamed) builds something else: the wrapper module reads
    its go.mod from one folder only."""
    recipe_dir, script = recipe
    key = recipe_key(recipe_dir, script, "go1.26")
    (recipe_dir / "other").mkdir()
    (recipe_dir / "wrapper" / "go.mod").rename(recipe_dir / "other" / "go.mod")
    moved = recipe_key(recipe_dir, script, "go1.26")
    assert moved != key
    (recipe_dir / "other" / "go.mod").rename(recipe_dir / "other" / "go.mod.bak")
    assert recipe_key(recipe_dir, script, "go1.26") not in {key, moved}


def test_the_key_is_the_documented_framing_of_each_file(recipe: tuple[Path, Path]) -> None:
    """The key format itself: each recipe file by its path in the recipe (sorted), then the script
    and buildcache.py by name, each as `label NUL length NUL bytes`, then `extra`; the first 16 hex
    digits of the SHA-256. A change here changes every key on every machine, and so rebuilds every
    cache (hours of Go builds): it must be a decision made in this test, not a side effect."""
    recipe_dir, script = recipe
    h = hashlib.sha256()
    for label, data in [
        ("recipe.toml", b"version = 1\n"),
        ("wrapper/go.mod", b"module wrapper\n"),
        ("build.py", b"print('build')\n"),
        ("buildcache.py", b"# the build discipline\n"),
    ]:
        h.update(f"{label}\0{len(data)}\0".encode() + data)
    h.update(b"go1.26")
    assert recipe_key(recipe_dir, script, "go1.26") == h.hexdigest()[:16]


def test_the_stamp_is_indented_json_ending_in_a_newline(tmp_path: Path) -> None:
    """People read stamps with cat (which key, how long each step took)."""
    final = finish(start(tmp_path, "k"), tmp_path, "k", {"key": "k", "built": {"kubeadm": 12.5}})
    assert (final / STAMP).read_text() == '{\n  "key": "k",\n  "built": {\n    "kubeadm": 12.5\n  }\n}\n'
    assert json.loads((final / STAMP).read_text())["built"] == {"kubeadm": 12.5}


def test_a_leftover_a_build_cannot_remove_does_not_stop_the_next_build(tmp_path: Path) -> None:
    """`start` removes what killed builds left; one entry it cannot remove (here a file, which
    rmtree refuses) stays, and the build goes on."""
    (tmp_path / ".build-odd").write_text("not a folder")
    (tmp_path / ".build-old-1" / "bin").mkdir(parents=True)
    tmp = start(tmp_path, "k")
    assert tmp.is_dir() and not (tmp_path / ".build-old-1").exists()
    assert (tmp_path / ".build-odd").read_text() == "not a folder"
    assert built_dir(tmp_path, "k") is None
