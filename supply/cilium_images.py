"""Build Cilium's own binaries for the pinned release offline (the Go module proxy), cached by a key.

`make cilium-images` runs `python -m supply.cilium_images build`. What it builds, with which flags and
why, is data in supply/images/cilium/recipe.toml; supply/images/cilium/wrapper/ is the Go module that requires
`github.com/cilium/cilium` at the release and repeats (or replaces) what its go.mod needs from the
proxy. The binaries land in `${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/cilium/<key>/bin/`,
where <key> hashes every file of supply/images/cilium/, this script, supply/buildcache.py, supply/node_image.py (its
one-binary image writer makes the operator image) and the Go version. From them it makes the agent
image (a debootstrap rootfs, agent/rootfs.sh, `docker import`ed) and the operator image (its static
binary alone, `docker load`ed), tagged `<repository>:<version>-<key>`; their tars stay in the key's
directory. The discipline is supply/buildcache.py's: build in a temporary directory, check every binary
that can report its version, rename into place, stamp last; a stamped key is never rebuilt, only
re-imported if the engine lost an image.
Only the standard library is used: it runs before a venv.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supply import buildcache, toolchain
from supply import node_image as images
from supply.buildcache import built_dir, locked, recipe_key
from supply.toolchain import ToolchainError, _run, cache_root, go_command, go_version

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = Path(__file__).resolve().parent / "images" / "cilium"
MODULE = "github.com/cilium/cilium"
# Where Cilium's Makefile.defs stamps the version and the Envoy it expects (-X targets).
VERSION_VAR = f"{MODULE}/pkg/version.ciliumVersion"
ENVOY_VAR = f"{MODULE}/pkg/envoy.requiredEnvoyVersionSHA"
_CILIUM_KEYS = frozenset({"version", "module_dir", "revision", "date", "tags", "envoy_sha"})
_BINARY_KEYS = frozenset({"name", "package", "tags", "version_argv"})
_RELEASE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_TAG = re.compile(r"^[A-Za-z0-9_]+$")
_ARG = re.compile(r"^[A-Za-z0-9-][A-Za-z0-9._=-]*$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_AGENT_KEYS = frozenset({"repository", "suite", "mirror", "packages", "backports", "workdir", "env"})
_OPERATOR_KEYS = frozenset({"repository", "binary"})
# A local image repository (no registry host, no tag): it reaches argv and the Helm values as is.
_REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
_MIRROR = re.compile(r"^https?://[A-Za-z0-9.-]+(/[A-Za-z0-9._-]+)*/?$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_./:=+-]*$")
_ABS_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
# What the agent image's processes see (Cilium's scripts and the chart call tools by name).
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where the operator's binary lives in its one-binary image (the chart runs it by name).
OPERATOR_PATH_PREFIX = "/usr/bin"
# The release the wrapper's go.mod requires: `github.com/cilium/cilium vX.Y.Z` (alone or in a block).
_REQUIRE = re.compile(r"^\s*(?:require\s+)?github\.com/cilium/cilium\s+(\S+)", re.MULTILINE)
# A built binary's version check must not hang the build (cilium-dbg asks an agent that is absent).
_CHECK_TIMEOUT = 60


class CiliumBuildError(ToolchainError):
    """A recipe, build step or check of Cilium's binaries failed; the message says which and why."""


@dataclass(frozen=True)
class CiliumBinary:
    """One executable: `go build` of a package of the Cilium module, in the wrapper."""

    name: str
    package: str
    tags: tuple[str, ...]
    version_argv: tuple[str, ...]


@dataclass(frozen=True)
class AgentImage:
    """The agent image: Debian `suite` with `packages` (and `backports` from `<suite>-backports`),
    plus Cilium's files (agent/rootfs.sh)."""

    repository: str
    suite: str
    mirror: str
    packages: tuple[str, ...]
    workdir: str
    env: tuple[str, ...]
    backports: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperatorImage:
    """The operator image: one of the recipe's binaries, alone."""

    repository: str
    binary: str


@dataclass(frozen=True)
class CiliumRecipe:
    version: str
    module_dir: str
    revision: str
    date: str
    tags: tuple[str, ...]
    envoy_sha: str
    binaries: tuple[CiliumBinary, ...]
    agent: AgentImage
    operator: OperatorImage


def _safe(what: str, value: object) -> str:
    """supply.toolchain's plain-token check (names, packages, paths reach argv), raising this module's error."""
    if not isinstance(value, str):
        raise CiliumBuildError(f"recipe {what} must be a string, not {value!r}")
    try:
        return toolchain._safe(what, value)
    except ToolchainError as exc:
        raise CiliumBuildError(str(exc)) from None


def _tokens(what: str, raw: object, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and pattern.fullmatch(v) for v in raw):
        raise CiliumBuildError(
            f"recipe {what} must be a list of plain tokens ({pattern.pattern}), not {raw!r}"
        )
    return tuple(raw)


def _checked_keys(what: str, raw: Mapping[str, object], allowed: frozenset[str], required: set[str]) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise CiliumBuildError(f"{what}: unknown recipe keys {sorted(unknown)}")
    missing = required - set(raw)
    if missing:
        raise CiliumBuildError(f"{what}: missing recipe keys {sorted(missing)}")


def _parse_binary(raw: object) -> CiliumBinary:
    if not isinstance(raw, dict):
        raise CiliumBuildError("recipe [[binary]] must be a list of tables")
    what = f"binary {raw.get('name')!r}"
    _checked_keys(what, raw, _BINARY_KEYS, {"name", "package"})
    package = _safe("package", raw["package"])
    if package != MODULE and not package.startswith(f"{MODULE}/"):
        raise CiliumBuildError(f"{what}: package {package!r} is not a package of {MODULE}")
    return CiliumBinary(
        name=_safe("name", raw["name"]),
        package=package,
        tags=_tokens(f"{what} tags", raw.get("tags", []), _TAG),
        version_argv=_tokens(f"{what} version_argv", raw.get("version_argv", []), _ARG),
    )


def _repository(what: str, raw: object) -> str:
    if not isinstance(raw, str) or not _REPOSITORY.fullmatch(raw):
        raise CiliumBuildError(f"recipe {what} repository {raw!r} is not a local repository like cdl/cilium")
    return raw


def _matching(what: str, raw: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(raw, str) or not pattern.fullmatch(raw):
        raise CiliumBuildError(f"recipe {what} {raw!r} does not match {pattern.pattern}")
    return raw


def _list_of(what: str, raw: object, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise CiliumBuildError(f"recipe {what} must be a non-empty list, not {raw!r}")
    return tuple(_matching(what, v, pattern) for v in raw)


def _parse_agent(raw: object) -> AgentImage:
    if not isinstance(raw, dict):
        raise CiliumBuildError("recipe has no [agent] table")
    _checked_keys("[agent]", raw, _AGENT_KEYS, set(_AGENT_KEYS) - {"backports"})
    packages = _list_of("[agent] packages", raw["packages"], _PACKAGE)
    backports = _list_of("[agent] backports", raw["backports"], _PACKAGE) if "backports" in raw else ()
    both = sorted(set(packages) & set(backports))
    if both:
        raise CiliumBuildError(
            f"recipe [agent] names {both} in both packages and backports: keep each in one of them"
        )
    return AgentImage(
        repository=_repository("[agent]", raw["repository"]),
        suite=_safe("suite", raw["suite"]),
        mirror=_matching("[agent] mirror", raw["mirror"], _MIRROR),
        packages=packages,
        workdir=_matching("[agent] workdir", raw["workdir"], _ABS_PATH),
        env=_list_of("[agent] env", raw["env"], _ENV),
        backports=backports,
    )


def _parse_operator(raw: object, names: Sequence[str]) -> OperatorImage:
    if not isinstance(raw, dict):
        raise CiliumBuildError("recipe has no [operator] table")
    _checked_keys("[operator]", raw, _OPERATOR_KEYS, set(_OPERATOR_KEYS))
    binary = _safe("[operator] binary", raw["binary"])
    if binary not in names:
        raise CiliumBuildError(f"recipe [operator] binary {binary!r} is not one of the [[binary]] names")
    return OperatorImage(repository=_repository("[operator]", raw["repository"]), binary=binary)


def parse_recipe(data: Mapping[str, object]) -> CiliumRecipe:
    """Validate the recipe: every value that reaches argv, a path or -ldflags is a plain token."""
    cilium = data.get("cilium")
    if not isinstance(cilium, dict):
        raise CiliumBuildError("recipe has no [cilium] table")
    _checked_keys("[cilium]", cilium, _CILIUM_KEYS, set(_CILIUM_KEYS))
    version = _safe("version", cilium["version"])
    if not _RELEASE.fullmatch(version):
        raise CiliumBuildError(f"recipe version {version!r} is not an exact release X.Y.Z")
    date = cilium["date"]
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise CiliumBuildError(f"recipe date {date!r} is not an RFC 3339 UTC time")
    envoy_sha = _safe("envoy_sha", cilium["envoy_sha"])
    if not _SHA.fullmatch(envoy_sha):
        raise CiliumBuildError(f"recipe envoy_sha {envoy_sha!r} is not a 40-digit git commit")
    raw_binaries = data.get("binary")
    if not isinstance(raw_binaries, list) or not raw_binaries:
        raise CiliumBuildError("recipe [[binary]] must be a non-empty list of tables")
    binaries = tuple(_parse_binary(raw) for raw in raw_binaries)
    names = [b.name for b in binaries]
    if len(set(names)) != len(names):
        raise CiliumBuildError(f"recipe names a binary twice: {sorted(names)}")
    return CiliumRecipe(
        version=version,
        module_dir=_safe("module_dir", cilium["module_dir"]),
        revision=_safe("revision", cilium["revision"]),
        date=date,
        tags=_tokens("[cilium] tags", cilium["tags"], _TAG),
        envoy_sha=envoy_sha,
        binaries=binaries,
        agent=_parse_agent(data.get("agent")),
        operator=_parse_operator(data.get("operator"), names),
    )


def load_recipe(recipe_dir: Path = RECIPE_DIR) -> CiliumRecipe:
    with (recipe_dir / "recipe.toml").open("rb") as fh:
        recipe = parse_recipe(tomllib.load(fh))
    required = wrapper_requires(recipe_dir / recipe.module_dir / "go.mod")
    if required != f"v{recipe.version}":
        raise CiliumBuildError(
            f"recipe version {recipe.version} but {recipe.module_dir}/go.mod requires {MODULE} {required}"
        )
    return recipe


def wrapper_requires(go_mod: Path) -> str | None:
    """The version of the Cilium module the wrapper's go.mod requires, or None if it requires none."""
    match = _REQUIRE.search(go_mod.read_text())
    return match[1] if match else None


def version_string(recipe: CiliumRecipe) -> str:
    """ciliumVersion as Makefile.defs builds it: VERSION, then GIT_VERSION (revision and date)."""
    return f"{recipe.version} {recipe.revision} {recipe.date}"


def ldflags(recipe: CiliumRecipe) -> str:
    """The -ldflags value: stripped, with the version and Envoy SHA stamped (the value has spaces, so quoted)."""
    return f"-s -w -X '{VERSION_VAR}={version_string(recipe)}' -X {ENVOY_VAR}={recipe.envoy_sha}"


def build_tags(recipe: CiliumRecipe, binary: CiliumBinary) -> str:
    return ",".join(dict.fromkeys((*recipe.tags, *binary.tags)))


def build_argv(go: str, recipe: CiliumRecipe, binary: CiliumBinary, out: Path) -> list[str]:
    return [
        go,
        "build",
        "-trimpath",
        f"-tags={build_tags(recipe, binary)}",
        f"-ldflags={ldflags(recipe)}",
        "-o",
        str(out),
        binary.package,
    ]


def cilium_key(recipe_dir: Path, go: str) -> str:
    """The recipe key: every recipe file, this script, supply/buildcache.py, supply/node_image.py (the
    operator image's writer) and the Go version."""
    writer = hashlib.sha256(Path(images.__file__).resolve().read_bytes()).hexdigest()
    return recipe_key(recipe_dir, Path(__file__).resolve(), f"{go}\0images.py {writer}")


def agent_tag(recipe: CiliumRecipe, key: str) -> str:
    return f"{recipe.agent.repository}:{recipe.version}-{key}"


def operator_tag(recipe: CiliumRecipe, key: str) -> str:
    return f"{recipe.operator.repository}:{recipe.version}-{key}"


def image_tag_suffix(recipe: CiliumRecipe, key: str) -> str:
    """The tag both images share (the chart takes one tag per image; the lab gives both this one)."""
    return f"{recipe.version}-{key}"


def agent_import_changes(recipe: CiliumRecipe) -> list[str]:
    """`docker import --change` lines: the image config Cilium's Dockerfile gives its agent."""
    changes = [f"ENV PATH={AGENT_PATH}", *(f"ENV {e}" for e in recipe.agent.env)]
    changes += [f"WORKDIR {recipe.agent.workdir}", 'CMD ["/usr/bin/cilium-dbg"]']
    return changes


def agent_import_argv(recipe: CiliumRecipe, tar: Path, tag: str) -> list[str]:
    argv = ["docker", "import"]
    for change in agent_import_changes(recipe):
        argv += ["--change", change]
    return [*argv, str(tar), tag]


def agent_rootfs_argv(
    recipe: CiliumRecipe, recipe_dir: Path, rootfs: Path, module: Path, bin_dir: Path
) -> list[str]:
    """agent/rootfs.sh (supply.toolchain._run runs it, like every step, under `nice -n 19`)."""
    return [
        "bash",
        str(recipe_dir / "agent" / "rootfs.sh"),
        str(rootfs),
        recipe.agent.suite,
        recipe.agent.mirror,
        ",".join(recipe.agent.packages),
        str(module),
        str(bin_dir),
        ",".join(recipe.agent.backports),
    ]


def cilium_root(env: Mapping[str, str]) -> Path:
    """Next to the toolchain cache: ${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/cilium."""
    return cache_root(env).parent / "cilium"


def reported_version(path: Path, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """What a built binary prints when asked for its version (stdout and stderr; its exit status
    is not judged: cilium-dbg's `version` also asks the absent agent)."""
    proc = subprocess.run(
        [str(path), *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=_CHECK_TIMEOUT,
        check=False,
    )
    return proc.stdout + proc.stderr


def check_version(recipe: CiliumRecipe, binary: CiliumBinary, path: Path, env: Mapping[str, str]) -> None:
    """The binary reports the stamped version; nothing to check if the recipe gives no version_argv."""
    if not binary.version_argv:
        return
    output = reported_version(path, binary.version_argv, env)
    if version_string(recipe) not in output:
        raise CiliumBuildError(
            f"{binary.name} {' '.join(binary.version_argv)} does not report "
            f"{version_string(recipe)!r}:\n{output}".rstrip()
        )


def _say(message: str) -> None:
    print(f"[cilium-images] {message}", flush=True)


def build(recipe_dir: Path = RECIPE_DIR, env: Mapping[str, str] | None = None) -> Path:
    """Build the binaries and both images of the current key unless it is built; make sure the
    engine has both images; return the key's directory."""
    env = dict(os.environ if env is None else env)
    go = go_command()
    recipe = load_recipe(recipe_dir)
    key = cilium_key(recipe_dir, go_version(go))
    root = cilium_root(env)
    with locked(root):
        done = built_dir(root, key)
        if done is not None:
            _say(f"Cilium {recipe.version} binaries and images {key} are already built: {done}")
        else:
            done = _build_key(go, recipe, recipe_dir, key, root, env)
        ensure_imported(recipe, key, done, env)
        return done


def ensure_imported(recipe: CiliumRecipe, key: str, done: Path, env: Mapping[str, str]) -> None:
    """Import an image the engine lacks from the key's tars (a built key is never rebuilt)."""
    agent, operator = agent_tag(recipe, key), operator_tag(recipe, key)
    if images.engine_image_id(agent, env) is None:
        _run(agent_import_argv(recipe, done / AGENT_TAR, agent), done, env)
        _say(f"imported {agent} into the engine")
    if images.engine_image_id(operator, env) is None:
        _run(["docker", "load", "--input", str(done / OPERATOR_TAR)], done, env)
        _say(f"loaded {operator} into the engine")
    _say(f"images: {agent} and {operator}")


AGENT_TAR = "agent-rootfs.tar"
OPERATOR_TAR = "operator.tar"


def _build_key(
    go: str, recipe: CiliumRecipe, recipe_dir: Path, key: str, root: Path, env: Mapping[str, str]
) -> Path:
    tmp = buildcache.start(root, key)
    _say(f"building Cilium {recipe.version} binaries and images {key} in {tmp} ({go_version(go)})")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    build_env = {**env, "CGO_ENABLED": "0"}
    module = recipe_dir / recipe.module_dir
    timings: dict[str, float] = {}
    started = time.monotonic()
    for binary in recipe.binaries:  # one `go build` at a time: the machine is shared
        _say(f"building {binary.name} ({binary.package}, tags {build_tags(recipe, binary)}) ...")
        t0 = time.monotonic()
        out = bin_dir / binary.name
        _run(build_argv(go, recipe, binary, out), module, build_env)
        check_version(recipe, binary, out, env)
        timings[binary.name] = round(time.monotonic() - t0, 1)
        _say(f"built {binary.name} in {timings[binary.name]:.0f}s")
    arch = _run([go, "env", "GOARCH"], tmp, build_env).strip()

    t0 = time.monotonic()
    operator = operator_tag(recipe, key)
    archive = images.static_image_archive(
        operator,
        (bin_dir / recipe.operator.binary).read_bytes(),
        f"{OPERATOR_PATH_PREFIX}/{recipe.operator.binary}",
        arch,
    )
    (tmp / OPERATOR_TAR).write_bytes(archive)
    timings["operator-image"] = round(time.monotonic() - t0, 1)

    source = _run([go, "list", "-m", "-f", "{{.Dir}}", MODULE], module, build_env).strip()
    rootfs = tmp / "work" / "rootfs"
    rootfs.mkdir(parents=True)
    t0 = time.monotonic()
    _say(
        f"debootstrap {recipe.agent.suite} with {len(recipe.agent.packages)} packages for the agent image"
        + (
            f", then {', '.join(recipe.agent.backports)} from {recipe.agent.suite}-backports"
            if recipe.agent.backports
            else ""
        )
        + " ..."
    )
    _run(agent_rootfs_argv(recipe, recipe_dir, rootfs, Path(source), bin_dir), tmp, env)
    _run(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp / AGENT_TAR), "."],
        tmp,
        env,
    )
    shutil.rmtree(tmp / "work")
    timings["agent-rootfs"] = round(time.monotonic() - t0, 1)
    _say(f"agent rootfs in {timings['agent-rootfs']:.0f}s")
    stamp = {
        "key": key,
        "go": go_version(go),
        "module": f"{MODULE}@v{recipe.version}",
        "version": version_string(recipe),
        "agent_image": agent_tag(recipe, key),
        "operator_image": operator,
        "seconds": round(time.monotonic() - started),
        "built": timings,
    }
    final = buildcache.finish(tmp, root, key, stamp)
    _say(f"Cilium {recipe.version} binaries and images {key} built in {stamp['seconds']}s: {final}")
    return final


def current_dir(env: Mapping[str, str]) -> Path | None:
    """The built binaries' directory of the current recipe, without building anything."""
    return built_dir(cilium_root(env), cilium_key(RECIPE_DIR, go_version(go_command())))


def current_tags(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The agent and operator image tags of the current recipe if that key is built."""
    recipe = load_recipe()
    key = cilium_key(RECIPE_DIR, go_version(go_command()))
    if built_dir(cilium_root(env), key) is None:
        return None
    return agent_tag(recipe, key), operator_tag(recipe, key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m supply.cilium_images", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build Cilium's binaries and images unless this key is built")
    sub.add_parser("key", help="print the cache key of the current recipe")
    sub.add_parser("dir", help="print the built key's directory (exit 1 if it is not built)")
    sub.add_parser("tags", help="print the built agent and operator image tags (exit 1 if not built)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        elif args.command == "key":
            load_recipe()
            print(cilium_key(RECIPE_DIR, go_version(go_command())))
        elif args.command == "tags":
            tags = current_tags(os.environ)
            if tags is None:
                print("Cilium's images are not built: run `make cilium-images`", file=sys.stderr)
                return 1
            print("\n".join(tags))
        else:
            found = current_dir(os.environ)
            if found is None:
                print("Cilium's binaries are not built: run `make cilium-images`", file=sys.stderr)
                return 1
            print(found)
        return 0
    except (ToolchainError, subprocess.SubprocessError, OSError) as exc:
        print(f"[cilium-images] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
