"""The Cilium Helm chart, taken from the `github.com/cilium/cilium` Go module at the release tag.

helm.cilium.io cannot be reached from this machine, but the Go module proxy serves Cilium's
releases, and a release's `install/kubernetes/cilium` is its chart as published (Chart.yaml
carries the version). `make chart` (`python -m supply.chart build`) packs that directory as
`${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/charts/<key>/cilium-<version>.tgz`, laid out as
`helm package` lays a chart out (one top directory `cilium/`), so whatever takes a chart tarball
takes it: the Helm values tests (`CILIUM_CHART`, set by `make test` when the chart is built) and
Helm itself. The tarball is byte-for-byte the same on every build (sorted members, owner 0, fixed
times and modes). The key hashes this script, supply/buildcache.py and the version, and a stamped key
is never rebuilt. Only the standard library is used: it runs before a venv.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from supply import buildcache
from supply.buildcache import built_dir, locked
from supply.toolchain import ToolchainError, _run, go_command

MODULE = "github.com/cilium/cilium"
CHART_PATH = "install/kubernetes/cilium"
# The chart version the lab installs by default (lab/config.py's DEFAULT_CILIUM_VERSION; this
# module runs before the venv, so it cannot import lab.config: a test holds the two together).
CILIUM_VERSION = "1.20.2"
_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_CHART_VERSION = re.compile(r"^version:\s*['\"]?([^'\"\s]+)['\"]?\s*$", re.MULTILINE)
# What `helm package` stores for every member; fixed, so two builds give the same bytes.
_MTIME = 0


class ChartError(ToolchainError):
    """The module or its chart is not what the lab expects; the message says what and why."""


def charts_root(env: Mapping[str, str]) -> Path:
    """Next to the toolchain and image caches: ${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/charts."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(base) / "cilium-datapath-lab" / "charts"


def chart_key(version: str) -> str:
    """The version and a hash of how the chart is packed (this script and the build discipline)."""
    h = hashlib.sha256()
    for path in (Path(__file__).resolve(), Path(buildcache.__file__).resolve()):
        data = path.read_bytes()
        h.update(f"{path.name}\0{len(data)}\0".encode())
        h.update(data)
    return f"{_checked_version(version)}-{h.hexdigest()[:12]}"


def _checked_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ChartError(f"Cilium version {version!r} is not an exact release X.Y.Z")
    return version


def chart_version(chart_yaml: str) -> str | None:
    """The top-level `version:` of a Chart.yaml (the chart's own version, not appVersion)."""
    match = _CHART_VERSION.search(chart_yaml)
    return match[1] if match else None


def ignore_rules(text: str) -> list[str]:
    """A .helmignore's patterns. Negation (`!`) is refused rather than half-implemented."""
    rules = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    negated = [r for r in rules if r.startswith("!")]
    if negated:
        raise ChartError(f".helmignore negates {negated}; supply/chart.py packs only plain patterns")
    return rules


def ignored(relative: str, is_dir: bool, rules: Sequence[str]) -> bool:
    """Whether `helm package` leaves a chart path out: `dir/` rules match directories by name,
    rules with a `/` the whole relative path, others any path component's name (shell globs)."""
    name = relative.rsplit("/", 1)[-1]
    for rule in rules:
        if rule.endswith("/"):
            if is_dir and fnmatch.fnmatchcase(name, rule[:-1]):
                return True
        elif "/" in rule:
            if fnmatch.fnmatchcase(relative, rule.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(name, rule):
            return True
    return False


def pack(chart_dir: Path, version: str) -> bytes:
    """The chart directory as a helm-style .tgz with the same bytes on every run.

    Refuses a directory that is not the chart of `version`: a module at another tag, or a path that
    moved, would otherwise hand the tests a chart the lab does not install."""
    chart_yaml = chart_dir / "Chart.yaml"
    if not chart_yaml.is_file():
        raise ChartError(
            f"{chart_dir} has no Chart.yaml: the module no longer keeps its chart at {CHART_PATH}"
        )
    found = chart_version(chart_yaml.read_text())
    if found != version:
        raise ChartError(f"{chart_yaml} is version {found!r}, not {version}")
    for needed in ("values.yaml", "values.schema.json", "templates"):
        if not (chart_dir / needed).exists():
            raise ChartError(f"{chart_dir} has no {needed}: not a complete Cilium chart")
    helmignore = chart_dir / ".helmignore"
    rules = ignore_rules(helmignore.read_text()) if helmignore.is_file() else []
    members: list[Path] = []
    for path in sorted(chart_dir.rglob("*")):
        relative = path.relative_to(chart_dir)
        # A member is left out with its directory: rglob lists children of an ignored directory too.
        if any(ignored(p.as_posix(), True, rules) for p in relative.parents if p.parts) or ignored(
            relative.as_posix(), path.is_dir(), rules
        ):
            continue
        members.append(path)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in members:
            if path.is_symlink():
                raise ChartError(f"{path} is a symlink; a chart holds regular files only")
            name = f"cilium/{path.relative_to(chart_dir).as_posix()}"
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = _MTIME, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _say(message: str) -> None:
    print(f"[chart] {message}", flush=True)


def module_dir(go: str, version: str, env: Mapping[str, str]) -> Path:
    """The Cilium module of `version` in the Go module cache, downloaded from the proxy if absent."""
    with tempfile.TemporaryDirectory(prefix="cdl-chart-") as cwd:  # outside any go.mod
        out = _run([go, "mod", "download", "-json", f"{MODULE}@v{version}"], Path(cwd), env)
    try:
        directory = json.loads(out)["Dir"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ChartError(
            f"`go mod download` of {MODULE}@v{version} printed no module directory: {out[:200]!r}"
        ) from exc
    return Path(directory)


def tarball(done: Path, version: str) -> Path:
    return done / f"cilium-{version}.tgz"


def build(version: str = CILIUM_VERSION, env: Mapping[str, str] | None = None) -> Path:
    """The packed chart of `version`, built unless its key is; returns the tarball's path."""
    env = dict(os.environ if env is None else env)
    key, root = chart_key(version), charts_root(env)
    with locked(root):
        done = built_dir(root, key)
        if done is not None:
            _say(f"chart {key} is already built: {tarball(done, version)}")
            return tarball(done, version)
        started = time.monotonic()
        _say(f"taking the chart from {MODULE}@v{version} (the Go module proxy; about 100 MB the first time)")
        source = module_dir(go_command(), version, env) / CHART_PATH
        tmp = buildcache.start(root, key)
        data = pack(source, version)
        tarball(tmp, version).write_bytes(data)
        stamp = {
            "key": key,
            "module": f"{MODULE}@v{version}",
            "sha256": hashlib.sha256(data).hexdigest(),
            "seconds": round(time.monotonic() - started),
        }
        final = buildcache.finish(tmp, root, key, stamp)
        _say(f"chart {key} built in {stamp['seconds']}s: {tarball(final, version)}")
        return tarball(final, version)


def current_path(env: Mapping[str, str], version: str = CILIUM_VERSION) -> Path | None:
    """The built chart of `version`, without building anything."""
    done = built_dir(charts_root(env), chart_key(version))
    return tarball(done, version) if done is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supply.chart", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", default=CILIUM_VERSION, help=f"Cilium release X.Y.Z (default {CILIUM_VERSION})"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="pack the chart of that release unless it is built")
    sub.add_parser("path", help="print the built chart's tarball (exit 1 if it is not built)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.version)
            return 0
        path = current_path(os.environ, args.version)
        if path is None:
            print(f"the Cilium {args.version} chart is not built: run `make chart`", file=sys.stderr)
            return 1
        print(path)
        return 0
    except (ToolchainError, OSError) as exc:
        print(f"[chart] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
