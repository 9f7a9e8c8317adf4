"""The cached-build discipline shared by the toolchain and the node image (supply/buildcache.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from supply import buildcache
from supply.buildcache import STAMP, built_dir, finish, recipe_key, start


def test_only_a_stamped_directory_is_a_build(tmp_path: Path) -> None:
    (tmp_path / "abc" / "bin").mkdir(parents=True)
    assert built_dir(tmp_path, "abc") is None
    (tmp_path / "abc" / STAMP).write_text("{}")
    assert built_dir(tmp_path, "abc") == tmp_path / "abc"


def test_start_clears_killed_builds_and_keeps_finished_ones(tmp_path: Path) -> None:
    killed = tmp_path / ".build-old-123"
    (killed / "bin").mkdir(parents=True)
    (tmp_path / "done" / STAMP).parent.mkdir()
    (tmp_path / "done" / STAMP).write_text("{}")
    tmp = start(tmp_path, "new")
    assert not killed.exists()
    assert tmp.parent == tmp_path and tmp.name.startswith(".build-new-") and tmp.is_dir()
    assert built_dir(tmp_path, "done") is not None


def test_finish_stamps_and_replaces_an_unstamped_leftover(tmp_path: Path) -> None:
    tmp = start(tmp_path, "k")
    (tmp / "bin").mkdir()
    leftover = tmp_path / "k"
    leftover.mkdir()
    (leftover / "half").write_text("from a build killed after its rename")
    final = finish(tmp, tmp_path, "k", {"key": "k", "seconds": 3})
    assert final == tmp_path / "k" and not tmp.exists()
    assert not (final / "half").exists() and (final / "bin").is_dir()
    assert json.loads((final / STAMP).read_text()) == {"key": "k", "seconds": 3}
    assert stat.S_IMODE(final.stat().st_mode) == 0o755  # mkdtemp's 0700 would hide it from other users
    assert built_dir(tmp_path, "k") == final


def test_the_key_covers_the_recipe_the_script_this_module_and_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "a.toml").write_text("a = 1\n")
    script = tmp_path / "build.py"
    script.write_text("print('build')\n")
    key = recipe_key(recipe, script, "go1.26")
    assert key == recipe_key(recipe, script, "go1.26") and len(key) == 16
    assert recipe_key(recipe, script, "go1.27") != key
    script.write_text("print('build twice')\n")
    assert recipe_key(recipe, script, "go1.26") != key
    script.write_text("print('build')\n")
    helper = tmp_path / "buildcache.py"
    helper.write_text("# another finishing step\n")
    monkeypatch.setattr(buildcache, "__file__", str(helper))
    assert recipe_key(recipe, script, "go1.26") != key
