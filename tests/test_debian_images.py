"""The images made of Debian packages (supply/debian_image.py): the FRR router image's recipe, what
its key covers, and the start metadata `docker import` is given. The tools image's recipe has its
own tests in tests/test_supply_offline.py; both images are built for real by `make supply`."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from supply import frr_image, tools_image
from supply.debian_image import DebianImageError, import_changes


def test_the_frr_recipe_carries_frr_and_tini_and_the_upstream_start_path() -> None:
    recipe = frr_image.FRR.recipe()
    assert {"frr", "tini"} <= set(recipe.packages)
    assert (recipe.repository, recipe.suite) == ("cdl/frr", "bookworm")
    rootfs = (frr_image.RECIPE_DIR / "rootfs.sh").read_text()
    assert "/usr/lib/frr/docker-start" in rootfs and "/sbin/tini" in rootfs
    start = (frr_image.RECIPE_DIR / "docker-start").read_text()
    assert "install -d -o frr -g frr" in start and "/var/run/frr" in start and "/var/tmp/frr" in start
    assert "exec /usr/lib/frr/watchfrr" in start


def test_the_frr_key_covers_its_start_script_and_differs_from_the_tools_key(tmp_path: Path) -> None:
    copy = tmp_path / "frr"
    shutil.copytree(frr_image.RECIPE_DIR, copy)
    image = dataclasses.replace(frr_image.FRR, recipe_dir=copy)
    key = image.key()
    assert key == frr_image.FRR.key() and key != tools_image.tools_key()
    (copy / "docker-start").write_text((copy / "docker-start").read_text() + "\n")
    assert image.key() != key


def test_each_image_is_cached_in_its_own_folder() -> None:
    env = {"XDG_CACHE_HOME": "/c"}
    assert frr_image.FRR.root(env) == Path("/c/cilium-datapath-lab/frr")
    assert tools_image.TOOLS.root(env) == Path("/c/cilium-datapath-lab/tools")


def test_start_metadata_is_json_form_cmd_or_entrypoint_only() -> None:
    assert import_changes(['CMD ["sleep", "infinity"]']) == ["--change", 'CMD ["sleep", "infinity"]']
    assert import_changes([]) == []
    for bad in ("CMD sleep infinity", 'USER ["root"]', 'ENTRYPOINT "sh"'):
        with pytest.raises(DebianImageError, match="not a JSON-form CMD or ENTRYPOINT"):
            import_changes([bad])
