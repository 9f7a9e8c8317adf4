"""An image made of Debian packages, built on a machine with no registry and cached by a key.

The tools image (supply/tools_image.py) and the FRR router image (supply/frr_image.py) are each a
debootstrap of Debian with a recipe's packages, finished by the recipe folder's own rootfs.sh. The
rootfs tar lives in `${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/<folder>/<key>/`, where <key>
hashes every file of the recipe folder, the image's module and supply/buildcache.py; the image is
imported into the Docker engine as `<repository>:<suite>-<key>` (with the image's own ENTRYPOINT
and CMD), and imported again from the tar if the engine lost it. Root is needed (debootstrap).
Only the standard library: it runs before a venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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

ROOTFS_TAR = "rootfs.tar"
KEYS = frozenset({"repository", "suite", "mirror", "packages"})
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_SUITE = re.compile(r"^[a-z]+$")
_MIRROR = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~-]+)*/?$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class DebianImageError(ToolchainError):
    """The recipe or a build step failed; the message says which and why."""


@dataclass(frozen=True)
class DebianRecipe:
    repository: str
    suite: str
    mirror: str
    packages: tuple[str, ...]


@dataclass(frozen=True)
class DebianImage:
    """One image of this kind: what it is called, where its recipe and cache live, how it starts."""

    name: str  # "tools image": in messages
    target: str  # its make target
    recipe_dir: Path
    module: Path  # the image's own module, part of the key
    folder: str  # its cache folder under cilium-datapath-lab/
    changes: tuple[str, ...]  # `docker import --change` lines (CMD, ENTRYPOINT)

    def recipe(self) -> DebianRecipe:
        return load_recipe(self.recipe_dir, self.name)

    def key(self) -> str:
        this = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
        return recipe_key(self.recipe_dir, self.module, f"{self.name}\0{this}")

    def root(self, env: Mapping[str, str]) -> Path:
        base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
        return Path(base) / "cilium-datapath-lab" / self.folder

    def current_tag(self, env: Mapping[str, str]) -> str | None:
        """The tag of the current recipe's image if that key is built, without building anything."""
        key = self.key()
        return image_tag(self.recipe(), key) if built_dir(self.root(env), key) is not None else None

    def build(self, env: Mapping[str, str] | None = None) -> str:
        """Build the current key unless built, make sure the engine holds the image; its tag."""
        env = dict(os.environ if env is None else env)
        recipe, key = self.recipe(), self.key()
        tag, root = image_tag(recipe, key), self.root(env)
        with locked(root):
            done = built_dir(root, key)
            if done is None:
                done = self._build_key(recipe, key, root, env)
            else:
                self.say(f"{self.name} {key} is already built: {done}")
            if engine_image_id(tag, env) is None:
                _run(
                    ["docker", "import", *import_changes(self.changes), str(done / ROOTFS_TAR), tag],
                    done,
                    env,
                )
                self.say(f"imported {tag} into the engine")
        self.say(f"{self.name}: {tag}")
        return tag

    def _build_key(self, recipe: DebianRecipe, key: str, root: Path, env: Mapping[str, str]) -> Path:
        tmp = buildcache.start(root, key)
        rootfs = tmp / "rootfs"
        rootfs.mkdir()
        started = time.monotonic()
        self.say(
            f"debootstrap {recipe.suite} with {len(recipe.packages)} packages for {image_tag(recipe, key)} ..."
        )
        _run(rootfs_argv(recipe, self.recipe_dir, rootfs), tmp, env)
        tar = ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp / ROOTFS_TAR), "."]
        _run(tar, tmp, env)
        _run(["rm", "-rf", "--one-file-system", str(rootfs)], tmp, env)
        stamp = {"key": key, "image": image_tag(recipe, key), "seconds": round(time.monotonic() - started)}
        final = buildcache.finish(tmp, root, key, stamp)
        self.say(f"{self.name} {key} built in {stamp['seconds']}s: {final}")
        return final

    def say(self, message: str) -> None:
        print(f"[{self.target}] {message}", flush=True)

    def main(self, argv: Sequence[str] | None = None) -> int:
        parser = argparse.ArgumentParser(
            prog=f"python -m {self.module.stem}", description=f"Build the {self.name}."
        )
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("build", help=f"build the {self.name} unless this key is built; import it if missing")
        sub.add_parser("tag", help="print the built image's tag (exit 1 if it is not built)")
        args = parser.parse_args(argv)
        try:
            if args.command == "build":
                self.build()
                return 0
            tag = self.current_tag(os.environ)
            if tag is None:
                print(f"the {self.name} is not built: run `make {self.target}`", file=sys.stderr)
                return 1
            print(tag)
            return 0
        except (ToolchainError, subprocess.SubprocessError, OSError) as exc:
            print(f"[{self.target}] error: {exc}", file=sys.stderr)
            return 1


def _matching(what: str, value: object, pattern: re.Pattern[str], image: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise DebianImageError(f"{image} recipe: {what} {value!r} is not valid")
    return value


def parse_recipe(data: Mapping[str, object], image: str = "image") -> DebianRecipe:
    """Validate the recipe: every value reaches debootstrap's argv or a tag, so only plain tokens."""
    unknown, missing = sorted(set(data) - KEYS), sorted(KEYS - set(data))
    if unknown or missing:
        raise DebianImageError(f"{image} recipe: unknown keys {unknown}, missing keys {missing}")
    packages = data["packages"]
    if not isinstance(packages, list) or not packages:
        raise DebianImageError(f"{image} recipe: packages must be a non-empty list")
    return DebianRecipe(
        repository=_matching("repository", data["repository"], _REPOSITORY, image),
        suite=_matching("suite", data["suite"], _SUITE, image),
        mirror=_matching("mirror", data["mirror"], _MIRROR, image),
        packages=tuple(_matching("package", p, _PACKAGE, image) for p in packages),
    )


def load_recipe(recipe_dir: Path, image: str = "image") -> DebianRecipe:
    with (recipe_dir / "recipe.toml").open("rb") as fh:
        return parse_recipe(tomllib.load(fh), image)


def image_tag(recipe: DebianRecipe, key: str) -> str:
    return f"{recipe.repository}:{recipe.suite}-{key}"


def rootfs_argv(recipe: DebianRecipe, recipe_dir: Path, target: Path) -> list[str]:
    return [
        "bash",
        str(recipe_dir / "rootfs.sh"),
        str(target),
        recipe.suite,
        recipe.mirror,
        ",".join(recipe.packages),
    ]


def import_changes(changes: Sequence[str]) -> list[str]:
    """`--change` arguments for `docker import`, each change a Dockerfile line (JSON-form argv)."""
    for line in changes:
        instruction, _, value = line.partition(" ")
        try:
            argv = json.loads(value)
        except json.JSONDecodeError:
            argv = None
        if instruction not in ("CMD", "ENTRYPOINT") or not isinstance(argv, list):
            raise DebianImageError(f"not a JSON-form CMD or ENTRYPOINT: {line!r}")
    return [arg for line in changes for arg in ("--change", line)]
