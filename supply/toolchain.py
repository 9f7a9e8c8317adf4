"""Build the real Pulumi toolchain from the Go module proxy into a cache outside the repository.

`make toolchain` runs `python -m supply.toolchain build`. What it builds, and why at those versions, is
data in supply/toolchain/recipe.toml. The result lives in
`${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/toolchain/<key>/` (bin/ for PATH, pulumi-home/ for
PULUMI_HOME with the providers installed as plugins), where <key> hashes every file of supply/toolchain/,
supply/buildcache.py (the build discipline, shared with the node image),
this script and the Go version: while they are unchanged nothing is rebuilt. A build runs in a
temporary directory renamed into place only after every binary is built and checked, so a killed
build never leaves a half toolchain. Go's own module and build caches are shared between keys,
so a new key rebuilds only what changed. Only the standard library is used: it runs before a venv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from supply import buildcache
from supply.buildcache import built_dir, locked, recipe_key

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = Path(__file__).resolve().parent / "toolchain"
BINARY_KEYS = frozenset(
    {
        "name",
        "version",
        "module_dir",
        "package",
        "version_var",
        "install",
        "plugin",
        "python_package",
        "embed_module",
        "embed_schema",
        "embed_json",
        "generator",
        "generates",
        "tags",
        "own_build",
    }
)
FILE_KEYS = frozenset({"name", "module", "version", "path"})


class ToolchainError(Exception):
    """A recipe, a build step or a check failed; the message says which and why."""


@dataclass(frozen=True)
class Binary:
    """One executable: `go build` in a wrapper module, or `go install module@version`."""

    name: str
    version: str
    module_dir: str = ""
    package: str = ""
    version_var: str = ""
    install: str = ""
    plugin: str = ""
    python_package: str = ""
    embed_module: str = ""
    embed_schema: Mapping[str, str] = field(default_factory=dict)
    embed_json: Mapping[str, str] = field(default_factory=dict)
    # A package of the wrapper module, built like the binary and run in the build copy before it with
    # the path of `generates` as its only argument: a file the binary embeds, made at build time
    # (e.g. a bridged provider's schema) rather than committed.
    generator: str = ""
    generates: str = ""
    # Go build tags, comma-separated as `go build -tags` takes them, for the generator and the binary.
    tags: str = ""
    # Set for a plugin that is the project's own build, not Pulumi's binary: what it is and what it is
    # built from, said by `make toolchain` at every run and by the preflight (host/preflight.py).
    own_build: str = ""


@dataclass(frozen=True)
class ModuleFile:
    """A file shipped inside a Go module (e.g. the Python exec script in sdk/v3)."""

    name: str
    module: str
    version: str
    path: str


@dataclass(frozen=True)
class Recipe:
    binaries: tuple[Binary, ...]
    files: tuple[ModuleFile, ...]

    def binary(self, name: str) -> Binary:
        for b in self.binaries:
            if b.name == name:
                return b
        raise ToolchainError(f"the recipe builds no binary named {name!r}")


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")
_TAG = re.compile(r"^[A-Za-z0-9_.]+$")  # one Go build tag (go/build's rule)


def _safe(what: str, value: str) -> str:
    """Names, versions and paths of the recipe end up in argv and file paths: only plain tokens."""
    if not _SAFE.fullmatch(value) or ".." in value.split("/"):
        raise ToolchainError(f"recipe {what} {value!r} is not a plain module path, version or name")
    return value


def parse_recipe(data: Mapping[str, object]) -> Recipe:
    """Validate the recipe's tables; an unknown key or a binary that is neither kind is an error."""
    binaries: list[Binary] = []
    for raw in _tables(data, "binary"):
        unknown = set(raw) - BINARY_KEYS
        if unknown:
            raise ToolchainError(f"binary {raw.get('name')!r}: unknown recipe keys {sorted(unknown)}")
        b = Binary(**raw)  # type: ignore[arg-type]
        for what in ("name", "version"):
            _safe(what, getattr(b, what))
        if bool(b.module_dir) == bool(b.install):
            raise ToolchainError(f"binary {b.name!r}: set exactly one of module_dir (wrapper) or install")
        if b.module_dir and not b.package:
            raise ToolchainError(f"binary {b.name!r}: a wrapper build needs the package to build")
        for value in (b.module_dir, b.package, b.install, b.version_var, b.plugin, b.embed_module):
            if value and value != ".":  # "." is the wrapper module's own main package
                _safe("value", value)
        for target, source in {**b.embed_schema, **b.embed_json}.items():
            _safe("embed target", target)
            _safe("embed source", source)
        if (b.embed_schema or b.embed_json) and not b.embed_module:
            raise ToolchainError(f"binary {b.name!r}: embedded files need embed_module")
        if bool(b.plugin) != bool(b.python_package):
            raise ToolchainError(f"binary {b.name!r}: a provider names both plugin and python_package")
        _check_generator(b)
        if b.own_build and not (isinstance(b.own_build, str) and b.plugin):
            raise ToolchainError(f"binary {b.name!r}: own_build is a sentence about a provider plugin")
        binaries.append(b)
    files: list[ModuleFile] = []
    for raw in _tables(data, "file"):
        unknown = set(raw) - FILE_KEYS
        if unknown:
            raise ToolchainError(f"file {raw.get('name')!r}: unknown recipe keys {sorted(unknown)}")
        f = ModuleFile(**raw)
        for what in ("name", "module", "version", "path"):
            _safe(what, getattr(f, what))
        files.append(f)
    names = [b.name for b in binaries] + [f.name for f in files]
    if len(set(names)) != len(names):
        raise ToolchainError(f"recipe names a file twice: {sorted(names)}")
    return Recipe(tuple(binaries), tuple(files))


def _check_generator(b: Binary) -> None:
    """A generator is a package of the binary's own wrapper module, writing one plain file in it."""
    for what in ("generator", "generates", "tags"):
        if not isinstance(getattr(b, what), str):
            raise ToolchainError(f"binary {b.name!r}: {what} must be a string, not {getattr(b, what)!r}")
    if bool(b.generator) != bool(b.generates):
        raise ToolchainError(f"binary {b.name!r}: a generator names both generator and generates")
    if b.generator and not b.module_dir:
        raise ToolchainError(f"binary {b.name!r}: a generator is a package of a wrapper module (module_dir)")
    for what, value in (("generator", b.generator), ("generates", b.generates)):
        if value:
            _safe(what, value)
    if b.tags and not all(_TAG.fullmatch(tag) for tag in b.tags.split(",")):
        raise ToolchainError(f"binary {b.name!r}: tags {b.tags!r} are not comma-separated Go build tags")


def _tables(data: Mapping[str, object], key: str) -> list[dict[str, str]]:
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ToolchainError(f"recipe [[{key}]] must be a list of tables")
    return raw


def load_recipe(recipe_dir: Path = RECIPE_DIR) -> Recipe:
    with (recipe_dir / "recipe.toml").open("rb") as fh:
        return parse_recipe(tomllib.load(fh))


def cache_root(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(base) / "cilium-datapath-lab" / "toolchain"


def go_command() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if found is None:
        raise ToolchainError("no `go` on PATH (nor /usr/local/go/bin/go): install Go 1.26 first")
    return found


def go_version(go: str) -> str:
    return subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout.strip()


# --- Python-side pins: the providers and CLI must agree with what the program's packages ask for.

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>[A-Za-z0-9_.+-]+)$")


def pyproject_pins(pyproject: Path) -> dict[str, str]:
    """Exact `name==version` pins of pyproject.toml's dependencies (normalised names)."""
    with pyproject.open("rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    pins: dict[str, str] = {}
    for dep in deps:
        m = _PIN.match(dep.strip())
        if m:
            pins[m["name"].lower().replace("_", "-")] = m["version"]
    return pins


def installed_plugin_version(venv: Path, python_package: str) -> str | None:
    """The version in the installed package's pulumi-plugin.json, or None if it is not installed."""
    module = python_package.replace("-", "_")
    for found in sorted(venv.glob(f"lib/python3*/site-packages/{module}/pulumi-plugin.json")):
        version = json.loads(found.read_text()).get("version")
        return str(version) if version is not None else None
    return None


def _semver(v: str) -> tuple[int, ...]:
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        raise ToolchainError(f"{v!r} is not a semantic version")
    return tuple(int(x) for x in m.groups())


def pin_problems(recipe: Recipe, pins: Mapping[str, str], venv: Path | None) -> list[str]:
    """Every disagreement between the recipe and the Python packages (empty when they agree)."""
    problems: list[str] = []
    sdk = pins.get("pulumi")
    if sdk is None:
        problems.append("pyproject.toml pins no exact pulumi version")
    else:
        cli = recipe.binary("pulumi").version
        if _semver(cli) < _semver(sdk):
            problems.append(f"pulumi CLI {cli} is older than the Python SDK pin pulumi=={sdk}")
        for f in recipe.files:
            if f.module == "github.com/pulumi/pulumi/sdk/v3" and _semver(f.version) != _semver(sdk):
                problems.append(f"{f.name} comes from sdk/v3 {f.version}, the Python SDK pin is {sdk}")
    for b in recipe.binaries:
        if not b.plugin:
            continue
        pinned = pins.get(b.python_package)
        if pinned != b.version:
            problems.append(f"{b.name} builds {b.version}, pyproject.toml pins {b.python_package}=={pinned}")
        installed = installed_plugin_version(venv, b.python_package) if venv else None
        if installed is not None and installed != b.version:
            problems.append(
                f"{b.name} builds {b.version}, the installed {b.python_package} asks for {installed}"
            )
    return problems


# --- Building.


def _say(message: str) -> None:
    print(f"[toolchain] {message}", flush=True)


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """Run one build step at the lowest priority (the machine is shared); its output is shown."""
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    proc = subprocess.run([*nice, *argv], cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(
            f"`{shlex.join(argv)}` (in {cwd}) exited {proc.returncode}:\n{proc.stdout}{proc.stderr}".rstrip()
        )
    return proc.stdout


def _module_dir(go: str, module: str, cwd: Path, env: Mapping[str, str]) -> Path:
    """Where the Go module cache holds `module` (a path@version, or the version cwd's go.mod selects).

    `go mod download -json` fetches the module first when the cache lacks it; `go list -m -json`
    would not, and names no Dir for a module not yet downloaded (a fresh machine's empty cache).
    """
    answer = json.loads(_run([go, "mod", "download", "-json", module], cwd, env))
    if answer.get("Error") or not answer.get("Dir"):
        raise ToolchainError(f"`go mod download {module}` (in {cwd}) gave no module folder: {answer}")
    return Path(answer["Dir"])


def _write_embeds(go: str, b: Binary, src: Path, env: Mapping[str, str]) -> None:
    """Generated files main.go embeds: the committed schema with its version, JSON written compact."""
    module = _module_dir(go, b.embed_module, src, env)
    for target, source in b.embed_schema.items():
        schema = json.loads((module / source).read_text())
        schema["version"] = b.version.removeprefix("v")
        (src / target).write_text(json.dumps(schema, separators=(",", ":")))
    for target, source in b.embed_json.items():
        data = json.loads((module / source).read_text())
        (src / target).write_text(json.dumps(data, separators=(",", ":")))


def _generate(
    go: str, b: Binary, flags: Sequence[str], src: Path, work: Path, env: Mapping[str, str]
) -> None:
    """Build the generator with the binary's flags (its version too) and let it write `generates`."""
    t0 = time.monotonic()
    generator = work / f"generate-{b.name}"
    _run([go, "build", *flags, "-o", str(generator), f"./{b.generator}"], src, env)
    target = src / b.generates
    _run([str(generator), str(target)], src, env)
    if not target.is_file() or target.stat().st_size == 0:
        raise ToolchainError(f"binary {b.name!r}: generator {b.generator} wrote no {b.generates}")
    _say(f"generated {b.generates} with {b.generator} in {time.monotonic() - t0:.0f}s")


def build_binary(go: str, b: Binary, recipe_dir: Path, work: Path, out: Path, env: Mapping[str, str]) -> None:
    ldflags = "-s -w" + (f" -X {b.version_var}={b.version}" if b.version_var else "")
    flags = ["-trimpath", f"-ldflags={ldflags}", *(["-tags", b.tags] if b.tags else [])]
    if b.install:
        gobin = work / f"gobin-{b.name}"
        gobin.mkdir()
        _run([go, "install", *flags, f"{b.install}@{b.version}"], work, {**env, "GOBIN": str(gobin)})
        shutil.move(gobin / Path(b.install).name, out)
        return
    src = work / f"src-{b.name}"
    shutil.copytree(recipe_dir / b.module_dir, src)
    if b.embed_module:
        _write_embeds(go, b, src, env)
    if b.generator:
        _generate(go, b, flags, src, work, env)
    _run([go, "build", *flags, "-o", str(out), b.package], src, env)


def _install_plugin(bin_dir: Path, b: Binary, binary: Path, home: Path, env: Mapping[str, str]) -> None:
    argv = [
        str(bin_dir / "pulumi"),
        "plugin",
        "install",
        "resource",
        b.plugin,
        b.version,
        "--file",
        str(binary),
    ]
    _run(argv, binary.parent, {**env, "PULUMI_HOME": str(home)})


def check_built(recipe: Recipe, key_dir: Path, env: Mapping[str, str]) -> None:
    """The CLI reports its version and every provider is installed at its version, offline."""
    bin_dir, home = key_dir / "bin", key_dir / "pulumi-home"
    run_env = {**env, **toolchain_env(key_dir, REPO, env.get("PATH", ""))}
    reported = _run([str(bin_dir / "pulumi"), "version"], key_dir, run_env).strip()
    expected = recipe.binary("pulumi").version
    if reported != expected:
        raise ToolchainError(f"the built pulumi reports {reported!r}, the recipe builds {expected}")
    listed = json.loads(_run([str(bin_dir / "pulumi"), "plugin", "ls", "--json"], key_dir, run_env))
    have = {(p.get("name"), p.get("kind"), p.get("version")) for p in listed}
    for b in recipe.binaries:
        if b.plugin and (b.plugin, "resource", b.version.removeprefix("v")) not in have:
            raise ToolchainError(
                f"plugin {b.plugin} {b.version} is not installed in {home}: {sorted(map(str, have))}"
            )
    for name in [b.name for b in recipe.binaries if not b.plugin] + [f.name for f in recipe.files]:
        if not os.access(bin_dir / name, os.X_OK):
            raise ToolchainError(f"{bin_dir / name} is missing or not executable")


def toolchain_env(key_dir: Path, repo: Path, path: str) -> dict[str, str]:
    """What a shell (or the Makefile, or a test) sets to use the built toolchain, fully offline.

    `path` is the PATH to extend. PULUMI_PYTHON_CMD: the language host built here predates
    Pulumi.yaml's `virtualenv` option reaching it, so it is told which python (the venv) to run.
    """
    return {
        "PATH": f"{key_dir / 'bin'}{os.pathsep}{path}",
        "PULUMI_HOME": str(key_dir / "pulumi-home"),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_PYTHON_CMD": str(repo / ".venv" / "bin" / "python"),
    }


def build(recipe_dir: Path = RECIPE_DIR, env: Mapping[str, str] | None = None) -> Path:
    """Build the toolchain of the current key (unless already built); return its directory."""
    env = dict(os.environ if env is None else env)
    go = go_command()
    recipe = load_recipe(recipe_dir)
    problems = pin_problems(recipe, pyproject_pins(REPO / "pyproject.toml"), REPO / ".venv")
    if problems:
        raise ToolchainError("the recipe and the Python packages disagree:\n  " + "\n  ".join(problems))
    key = recipe_key(recipe_dir, Path(__file__).resolve(), go_version(go))
    root = cache_root(env)
    with locked(root):
        done = built_dir(root, key)
        if done is not None:
            _say(f"toolchain {key} is already built: {done}")
            say_own_builds(recipe, done)
            return done
        tmp = buildcache.start(root, key)
        _say(f"building toolchain {key} in {tmp} ({go_version(go)})")
        bin_dir, home, work = tmp / "bin", tmp / "pulumi-home", tmp / "work"
        for d in (bin_dir, home, work):
            d.mkdir()
        build_env = {**env, "CGO_ENABLED": "0", "PULUMI_SKIP_UPDATE_CHECK": "true"}
        timings: dict[str, dict[str, object]] = {}
        started = time.monotonic()
        # The CLI first: installing the providers needs it.
        for b in sorted(recipe.binaries, key=lambda b: b.name != "pulumi"):
            what = b.install or (f"toolchain/{b.module_dir}" if b.package == "." else b.package)
            _say(f"building {b.name} {b.version} ({what}) ...")
            t0 = time.monotonic()
            out = (work if b.plugin else bin_dir) / b.name
            build_binary(go, b, recipe_dir, work, out, build_env)
            if b.plugin:
                _install_plugin(bin_dir, b, out, home, build_env)
            seconds = round(time.monotonic() - t0, 1)
            timings[b.name] = {"version": b.version, "seconds": seconds}
            _say(f"built {b.name} {b.version} in {seconds:.0f}s")
        for f in recipe.files:
            source = _module_dir(go, f"{f.module}@{f.version}", work, build_env) / f.path
            shutil.copyfile(source, bin_dir / f.name)
            (bin_dir / f.name).chmod(0o755)
            timings[f.name] = {"version": f.version, "seconds": 0}
            _say(f"copied {f.name} from {f.module}@{f.version}")
        shutil.rmtree(work)
        check_built(recipe, tmp, env)
        stamp = {
            "key": key,
            "go": go_version(go),
            "seconds": round(time.monotonic() - started),
            "built": timings,
        }
        final = buildcache.finish(tmp, root, key, stamp)
        _say(f"toolchain {key} built in {stamp['seconds']}s: {final}")
        say_own_builds(recipe, final)
        return final


def say_own_builds(recipe: Recipe, key_dir: Path) -> None:
    """Which plugins in this toolchain's PULUMI_HOME are the project's own builds, in plain words."""
    for b in recipe.binaries:
        if b.own_build:
            _say(f"plugin {b.plugin} {b.version} in {key_dir / 'pulumi-home'}: {b.own_build}")


def current_dir(env: Mapping[str, str]) -> Path | None:
    """The built toolchain of the current recipe, without building anything."""
    go = go_command()
    return built_dir(cache_root(env), recipe_key(RECIPE_DIR, Path(__file__).resolve(), go_version(go)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supply.toolchain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the toolchain unless this key is already built")
    sub.add_parser("dir", help="print the built toolchain's directory (exit 1 if it is not built)")
    sub.add_parser("env", help="print shell exports that put the built toolchain to use")
    sub.add_parser("key", help="print the cache key of the current recipe")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
            return 0
        if args.command == "key":
            print(recipe_key(RECIPE_DIR, Path(__file__).resolve(), go_version(go_command())))
            return 0
        found = current_dir(os.environ)
        if found is None:
            print("the Pulumi toolchain is not built: run `make toolchain`", file=sys.stderr)
            return 1
        if args.command == "dir":
            print(found)
        else:
            for name, value in toolchain_env(found, REPO, "$PATH").items():
                quoted = (
                    shlex.quote(value) if name != "PATH" else f'{shlex.quote(str(found / "bin"))}:"$PATH"'
                )
                print(f"export {name}={quoted}")
        return 0
    except (ToolchainError, subprocess.CalledProcessError) as exc:
        print(f"[toolchain] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
