"""Build the tools image the checks run on a machine with no registry, cached by a key.

`make tools-image` runs `python -m supply.tools_image build`. The image stands in for netshoot
(the lab's default, pinned by digest): a debootstrap of Debian with the packages the checks call,
as supply/images/tools/recipe.toml lists them with why. The rootfs tar lives in
`${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/tools/<key>/`, where <key> hashes every file of
supply/images/tools/, this script and supply/buildcache.py; the image is imported into the Docker
engine as `<repository>:<suite>-<key>`, and imported again from the tar if the engine lost it.
Root is needed (debootstrap). Only the standard library: it runs before a venv.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supply import buildcache
from supply.buildcache import built_dir, locked, recipe_key
from supply.node_image import engine_image_id
from supply.toolchain import ToolchainError, _run

RECIPE_DIR = Path(__file__).resolve().parent / "images" / "tools"
ROOTFS_TAR = "tools-rootfs.tar"
KEYS = frozenset({"repository", "suite", "mirror", "packages"})
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_SUITE = re.compile(r"^[a-z]+$")
_MIRROR = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~-]+)*/?$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class ToolsImageError(ToolchainError):
    """The recipe or a build step failed; the message says which and why."""


@dataclass(frozen=True)
class ToolsRecipe:
    repository: str
    suite: str
    mirror: str
    packages: tuple[str, ...]


def _matching(what: str, value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ToolsImageError(f"tools recipe: {what} {value!r} is not valid")
    return value


def parse_recipe(data: Mapping[str, object]) -> ToolsRecipe:
    """Validate the recipe: every value reaches debootstrap's argv or a tag, so only plain tokens."""
    unknown, missing = sorted(set(data) - KEYS), sorted(KEYS - set(data))
    if unknown or missing:
        raise ToolsImageError(f"tools recipe: unknown keys {unknown}, missing keys {missing}")
    packages = data["packages"]
    if not isinstance(packages, list) or not packages:
        raise ToolsImageError("tools recipe: packages must be a non-empty list")
    return ToolsRecipe(
        repository=_matching("repository", data["repository"], _REPOSITORY),
        suite=_matching("suite", data["suite"], _SUITE),
        mirror=_matching("mirror", data["mirror"], _MIRROR),
        packages=tuple(_matching("package", p, _PACKAGE) for p in packages),
    )


def load_recipe(recipe_dir: Path = RECIPE_DIR) -> ToolsRecipe:
    with (recipe_dir / "recipe.toml").open("rb") as fh:
        return parse_recipe(tomllib.load(fh))


def tools_key(recipe_dir: Path = RECIPE_DIR) -> str:
    return recipe_key(recipe_dir, Path(__file__).resolve(), "tools image")


def tools_tag(recipe: ToolsRecipe, key: str) -> str:
    return f"{recipe.repository}:{recipe.suite}-{key}"


def tools_root(env: Mapping[str, str]) -> Path:
    """${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/tools, beside the other builds."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(base) / "cilium-datapath-lab" / "tools"


def rootfs_argv(recipe: ToolsRecipe, recipe_dir: Path, target: Path) -> list[str]:
    return [
        "bash",
        str(recipe_dir / "rootfs.sh"),
        str(target),
        recipe.suite,
        recipe.mirror,
        ",".join(recipe.packages),
    ]


def _say(message: str) -> None:
    print(f"[tools-image] {message}", flush=True)


def _build_key(recipe: ToolsRecipe, recipe_dir: Path, key: str, root: Path, env: Mapping[str, str]) -> Path:
    tmp = buildcache.start(root, key)
    rootfs = tmp / "rootfs"
    rootfs.mkdir()
    started = time.monotonic()
    _say(f"debootstrap {recipe.suite} with {len(recipe.packages)} packages for {tools_tag(recipe, key)} ...")
    _run(rootfs_argv(recipe, recipe_dir, rootfs), tmp, env)
    _run(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp / ROOTFS_TAR), "."], tmp, env
    )
    _run(["rm", "-rf", "--one-file-system", str(rootfs)], tmp, env)
    stamp = {"key": key, "image": tools_tag(recipe, key), "seconds": round(time.monotonic() - started)}
    final = buildcache.finish(tmp, root, key, stamp)
    _say(f"tools image {key} built in {stamp['seconds']}s: {final}")
    return final


def build(recipe_dir: Path = RECIPE_DIR, env: Mapping[str, str] | None = None) -> str:
    """Build the current key unless built, make sure the engine holds the image; its tag."""
    env = dict(os.environ if env is None else env)
    recipe = load_recipe(recipe_dir)
    key = tools_key(recipe_dir)
    tag = tools_tag(recipe, key)
    root = tools_root(env)
    with locked(root):
        done = built_dir(root, key)
        if done is None:
            done = _build_key(recipe, recipe_dir, key, root, env)
        else:
            _say(f"tools image {key} is already built: {done}")
        if engine_image_id(tag, env) is None:
            _run(
                ["docker", "import", "--change", 'CMD ["sleep", "infinity"]', str(done / ROOTFS_TAR), tag],
                done,
                env,
            )
            _say(f"imported {tag} into the engine")
    _say(f"tools image: {tag}")
    return tag


def current_tag(env: Mapping[str, str]) -> str | None:
    """The tag of the current recipe's image if that key is built, without building anything."""
    key = tools_key()
    return tools_tag(load_recipe(), key) if built_dir(tools_root(env), key) is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supply.tools_image", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the tools image unless this key is built; import it if missing")
    sub.add_parser("tag", help="print the built image's tag (exit 1 if it is not built)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
            return 0
        tag = current_tag(os.environ)
        if tag is None:
            print("the tools image is not built: run `make tools-image`", file=sys.stderr)
            return 1
        print(tag)
        return 0
    except (ToolchainError, subprocess.SubprocessError, OSError) as exc:
        print(f"[tools-image] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
