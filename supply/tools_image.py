"""Build the tools image the checks run on a machine with no registry, cached by a key.

`make tools-image` runs `python -m supply.tools_image build`. The image stands in for netshoot
(the lab's default, pinned by digest): a debootstrap of Debian with the packages the checks call,
as supply/images/tools/recipe.toml lists them with why (supply/debian_image.py builds and caches
it). Its command is `sleep infinity`: the node sidecars and probe pods are exec'd into.
Only the standard library: it runs before a venv.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path

from supply.debian_image import DebianImage, DebianImageError, DebianRecipe, image_tag, rootfs_argv
from supply.debian_image import parse_recipe as _parse_recipe

RECIPE_DIR = Path(__file__).resolve().parent / "images" / "tools"
TOOLS = DebianImage(
    name="tools image",
    target="tools-image",
    recipe_dir=RECIPE_DIR,
    module=Path(__file__).resolve(),
    folder="tools",
    changes=('CMD ["sleep", "infinity"]',),
)
ToolsImageError = DebianImageError
ToolsRecipe = DebianRecipe
__all__ = ["RECIPE_DIR", "TOOLS", "ToolsImageError", "ToolsRecipe", "rootfs_argv"]


def parse_recipe(data: Mapping[str, object]) -> DebianRecipe:
    return _parse_recipe(data, TOOLS.name)


def load_recipe(recipe_dir: Path = RECIPE_DIR) -> DebianRecipe:
    return _with_dir(recipe_dir).recipe()


def tools_key(recipe_dir: Path = RECIPE_DIR) -> str:
    return _with_dir(recipe_dir).key()


def tools_tag(recipe: DebianRecipe, key: str) -> str:
    return image_tag(recipe, key)


def _with_dir(recipe_dir: Path) -> DebianImage:
    return dataclasses.replace(TOOLS, recipe_dir=recipe_dir)


def current_tag(env: Mapping[str, str]) -> str | None:
    return TOOLS.current_tag(env)


def build(env: Mapping[str, str] | None = None) -> str:
    return TOOLS.build(env)


if __name__ == "__main__":
    sys.exit(TOOLS.main())
