"""Build the lab's kind node image offline (Debian packages and the Go module proxy), cached by a key.

`make images` runs `python -m supply.node_image build`. What it builds, and why at those versions, is data
in supply/images/kind-node/recipe.toml. Built output lives in
`${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/images/<key>/` (bin/ the Kubernetes binaries,
images/ the control-plane image tars, node-rootfs.tar the node's filesystem), where <key> hashes
every file of supply/images/kind-node/, this script, supply/buildcache.py, the capability filter the node runs
and the Go version. The node image is imported into the Docker engine as
`<repository>:<version>-<key>`; a stack runs it as `local:<that tag>` (lab/image_ref.py). The
discipline is supply/buildcache.py's: build in a temporary directory, rename it into place, stamp
last; a stamped key is never rebuilt (only re-imported if the engine lost it).
Only the standard library is used: it runs before a venv.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supply import buildcache, toolchain
from supply.buildcache import built_dir, locked, recipe_key
from supply.toolchain import ToolchainError, _run, cache_root, go_command, go_version

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = Path(__file__).resolve().parent / "images" / "kind-node"
CAPFILTER = REPO / "engine" / "runc_capfilter.py"
# The stack config key that selects the node image (lab/config.py's key("nodeImage"); this module
# runs before the venv, so it cannot import lab.config).
NODE_IMAGE_KEY = "cilium-datapath-lab:nodeImage"
# registry/path:tag, each part a plain token: these names reach argv and containerd as they are.
_REF = re.compile(r"^[a-z0-9][a-z0-9.-]*(/[a-z0-9][a-z0-9._-]*)+:[A-Za-z0-9][A-Za-z0-9._-]*$")
_IMAGE_KEYS = frozenset({"name", "ref", "module_dir", "package", "version"})
# Where a static image keeps its binary, and the PATH its processes see (kubeadm's static pods name
# their command, e.g. `kube-apiserver`, without a path).
_IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"


class ImageError(ToolchainError):
    """A recipe, build step or check of the node image failed; the message says which and why."""


@dataclass(frozen=True)
class StaticImage:
    """A one-binary image preloaded into the node's containerd under `ref`."""

    name: str
    ref: str
    module_dir: str
    package: str
    version: str


@dataclass(frozen=True)
class NodeRecipe:
    kubernetes_version: str
    module_dir: str
    build_date: str
    node_binaries: tuple[str, ...]
    control_plane: tuple[str, ...]
    registry: str
    images: tuple[StaticImage, ...]
    suite: str
    mirror: str
    packages: tuple[str, ...]
    repository: str


def _safe(what: str, value: str) -> str:
    """supply.toolchain's plain-token check, raising this module's error."""
    try:
        return toolchain._safe(what, value)
    except ToolchainError as exc:
        raise ImageError(str(exc)) from None


def _ref(value: str) -> str:
    if not _REF.fullmatch(value):
        raise ImageError(f"recipe image reference {value!r} is not registry/path:tag")
    return value


def _strings(table: Mapping[str, object], key: str) -> tuple[str, ...]:
    raw = table.get(key)
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise ImageError(f"recipe {key} must be a non-empty list of strings")
    return tuple(_safe(key, v) for v in raw)


def _table(data: Mapping[str, object], key: str) -> Mapping[str, object]:
    raw = data.get(key)
    if not isinstance(raw, dict):
        raise ImageError(f"recipe has no [{key}] table")
    return raw


def _string(table: Mapping[str, object], key: str) -> str:
    raw = table.get(key)
    if not isinstance(raw, str) or not raw:
        raise ImageError(f"recipe {key} must be a non-empty string")
    return raw


def parse_node_recipe(data: Mapping[str, object]) -> NodeRecipe:
    """Validate the recipe; every value that reaches argv or a path is a plain token."""
    k8s, debian, node = _table(data, "kubernetes"), _table(data, "debian"), _table(data, "node")
    version = _safe("version", _string(k8s, "version"))
    if not re.fullmatch(r"v\d+\.\d+\.\d+", version):
        raise ImageError(f"kubernetes version {version!r} is not vMAJOR.MINOR.PATCH")
    build_date = _string(k8s, "build_date")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", build_date):
        raise ImageError(f"build_date {build_date!r} is not an RFC 3339 UTC time")
    raw_images = data.get("image", [])
    if not isinstance(raw_images, list) or not all(isinstance(t, dict) for t in raw_images):
        raise ImageError("recipe [[image]] must be a list of tables")
    images: list[StaticImage] = []
    for raw in raw_images:
        unknown = set(raw) - _IMAGE_KEYS
        if unknown:
            raise ImageError(f"image {raw.get('name')!r}: unknown recipe keys {sorted(unknown)}")
        missing = _IMAGE_KEYS - set(raw)
        if missing:
            raise ImageError(f"image {raw.get('name')!r}: missing recipe keys {sorted(missing)}")
        image = StaticImage(**raw)
        for what in ("name", "module_dir", "version"):
            _safe(what, getattr(image, what))
        if image.package != ".":
            _safe("package", image.package)
        _ref(image.ref)
        images.append(image)
    node_binaries, control_plane = _strings(k8s, "node_binaries"), _strings(k8s, "control_plane")
    names = [*node_binaries, *control_plane, *(i.name for i in images)]
    if len(set(names)) != len(names):
        raise ImageError(f"recipe names a binary twice: {sorted(names)}")
    mirror = _string(debian, "mirror")
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(/[A-Za-z0-9._-]+)*/?", mirror):
        raise ImageError(f"debian mirror {mirror!r} is not a plain http(s) URL")
    return NodeRecipe(
        kubernetes_version=version,
        module_dir=_safe("module_dir", _string(k8s, "module_dir")),
        build_date=build_date,
        node_binaries=node_binaries,
        control_plane=control_plane,
        registry=_safe("registry", _string(k8s, "registry")),
        images=tuple(images),
        suite=_safe("suite", _string(debian, "suite")),
        mirror=mirror,
        packages=_strings(debian, "packages"),
        repository=_safe("repository", _string(node, "repository")),
    )


def load_node_recipe(recipe_dir: Path = RECIPE_DIR) -> NodeRecipe:
    with (recipe_dir / "recipe.toml").open("rb") as fh:
        return parse_node_recipe(tomllib.load(fh))


def version_ldflags(version: str, build_date: str) -> str:
    """-X flags that make every binary report `version`, as Kubernetes' hack/lib/version.sh stamps them."""
    major, minor, _ = version.removeprefix("v").split(".")
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = [
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    ]
    return " ".join(["-s", "-w", *flags])


def control_plane_refs(recipe: NodeRecipe) -> dict[str, str]:
    """Every image kubeadm will ask for, by binary name (`kubeadm config images list`'s names)."""
    refs = {name: f"{recipe.registry}/{name}:{recipe.kubernetes_version}" for name in recipe.control_plane}
    refs.update({image.name: image.ref for image in recipe.images})
    return refs


def image_key(recipe_dir: Path, go: str) -> str:
    """The recipe key: recipe files, this script, the node's capability filter and the Go version."""
    capfilter = hashlib.sha256(CAPFILTER.read_bytes()).hexdigest()
    return recipe_key(recipe_dir, Path(__file__).resolve(), f"{go}\0capfilter {capfilter}")


def node_tag(recipe: NodeRecipe, key: str) -> str:
    return f"{recipe.repository}:{recipe.kubernetes_version}-{key}"


def images_root(env: Mapping[str, str]) -> Path:
    """Next to the toolchain cache: ${XDG_CACHE_HOME:-~/.cache}/cilium-datapath-lab/images."""
    return cache_root(env).parent / "images"


# --- A one-binary image as a docker-archive tar (what `ctr images import` and `docker load` read).


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uname, info.gname = mode, 0, "root", "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def static_image_archive(ref: str, binary: bytes, path: str, arch: str) -> bytes:
    """A reproducible docker-archive of one image: `binary` at `path`, its entrypoint, root, no shell."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        parts = Path(path).parent.parts[1:]
        for depth in range(1, len(parts) + 1):
            _tar_member(layer, "/".join(parts[:depth]) + "/", None, 0o755)
        _tar_member(layer, "tmp/", None, 0o1777)
        _tar_member(layer, path.lstrip("/"), binary, 0o755)
    layer_bytes = layer_buf.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": [path], "Env": [f"PATH={_IMAGE_PATH}"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "supply/node_image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_member(tar, f"{diff_id}/", None, 0o755)
        _tar_member(tar, f"{diff_id}/layer.tar", layer_bytes, 0o644)
        _tar_member(tar, config_name, config_bytes, 0o644)
        _tar_member(tar, "manifest.json", json.dumps(manifest).encode(), 0o644)
    return out.getvalue()


# --- Building.


def _say(message: str) -> None:
    print(f"[images] {message}", flush=True)


def _go_build(go: str, module: Path, package: str, ldflags: str, out: Path, env: Mapping[str, str]) -> None:
    """`go build` in the wrapper module (read in place: go.mod and go.sum are complete)."""
    _run([go, "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(out), package], module, env)


def _timed(timings: dict[str, float], name: str, what: str) -> _Timer:
    return _Timer(timings, name, what)


class _Timer:
    """Prints `what` on entry and the seconds on exit, and records them under `name`."""

    def __init__(self, timings: dict[str, float], name: str, what: str) -> None:
        self.timings, self.name, self.what, self.t0 = timings, name, what, 0.0

    def __enter__(self) -> None:
        _say(f"{self.what} ...")
        self.t0 = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        seconds = round(time.monotonic() - self.t0, 1)
        self.timings[self.name] = seconds
        if exc[0] is None:
            _say(f"{self.what}: {seconds:.0f}s")


def _install_tree(src: Path, dest: Path) -> None:
    """Copy files/ into the rootfs: scripts (under bin/ directories) 0755, everything else 0644."""
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o755)
            continue
        shutil.copyfile(path, target)
        target.chmod(0o755 if path.parent.name in ("bin", "sbin") else 0o644)


# Units the node starts at boot: (unit file in the rootfs, multi-user.target.wants link name).
_BOOT_UNITS = (
    ("/lib/systemd/system/containerd.service", "containerd.service"),
    ("/etc/systemd/system/cdl-preload-images.service", "cdl-preload-images.service"),
    ("/etc/systemd/system/kubelet.service", "kubelet.service"),
)


def assemble_rootfs(rootfs: Path, recipe: NodeRecipe, recipe_dir: Path, bin_dir: Path, images: Path) -> None:
    """The node's own files, binaries, preloaded images and boot units, on top of Debian's rootfs."""
    _install_tree(recipe_dir / "files", rootfs)
    for name in recipe.node_binaries:
        shutil.copyfile(bin_dir / name, rootfs / "usr" / "bin" / name)
        (rootfs / "usr" / "bin" / name).chmod(0o755)
    capfilter = rootfs / "usr" / "local" / "sbin" / "runc-capfilter"
    capfilter.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CAPFILTER, capfilter)
    capfilter.chmod(0o755)
    (rootfs / "kind" / "images").mkdir(parents=True, exist_ok=True)
    for tar in sorted(images.glob("*.tar")):
        shutil.copyfile(tar, rootfs / "kind" / "images" / tar.name)
    (rootfs / "kind" / "version").write_text(recipe.kubernetes_version + "\n")
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit, link in _BOOT_UNITS:
        if not (rootfs / unit.lstrip("/")).is_file():
            raise ImageError(f"the node rootfs has no {unit} to start at boot")
        (wants / link).unlink(missing_ok=True)
        (wants / link).symlink_to(unit)


# The node image's metadata (kind's node-image contract): systemd is told it runs in a container and
# stops on SIGRTMIN+3, and kind starts `entrypoint /sbin/init`. `docker import --change` (20.10)
# refuses STOPSIGNAL, so the imported rootfs gets them from a metadata-only build on top of it.
NODE_METADATA = (
    "ENV container=docker",
    "STOPSIGNAL SIGRTMIN+3",
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
)


def node_dockerfile(rootfs_tag: str) -> str:
    return "\n".join([f"FROM {rootfs_tag}", *NODE_METADATA]) + "\n"


def docker_import(tar: Path, tag: str, env: Mapping[str, str]) -> str:
    """Import the rootfs as `<tag>-rootfs`, then build `tag` with the node's metadata; its image ID."""
    rootfs_tag = f"{tag}-rootfs"
    _run(["docker", "import", str(tar), rootfs_tag], tar.parent, env)
    proc = subprocess.run(
        ["docker", "build", "--quiet", "--tag", tag, "-"],
        input=node_dockerfile(rootfs_tag),
        env={**env, "DOCKER_BUILDKIT": "0"},  # the classic builder: no BuildKit on this engine
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ImageError(f"`docker build` of {tag} on {rootfs_tag} failed:\n{proc.stderr}".rstrip())
    return proc.stdout.strip().removeprefix("sha256:")


def engine_image_id(tag: str, env: Mapping[str, str]) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip().removeprefix("sha256:") if proc.returncode == 0 else None


def build(recipe_dir: Path = RECIPE_DIR, env: Mapping[str, str] | None = None) -> Path:
    """Build the node image of the current key unless built; make sure the engine has it."""
    env = dict(os.environ if env is None else env)
    go = go_command()
    recipe = load_node_recipe(recipe_dir)
    key = image_key(recipe_dir, go_version(go))
    tag = node_tag(recipe, key)
    root = images_root(env)
    with locked(root):
        done = built_dir(root, key)
        if done is None:
            done = _build_key(go, recipe, recipe_dir, key, root, env)
        else:
            _say(f"node image {key} is already built: {done}")
        if engine_image_id(tag, env) is None:
            t0 = time.monotonic()
            image_id = docker_import(done / "node-rootfs.tar", tag, env)
            _say(f"imported {tag} ({image_id[:12]}) into the engine in {time.monotonic() - t0:.0f}s")
        _say(
            f"node image: {tag}; a stack runs it with: pulumi config set {NODE_IMAGE_KEY} local:{tag} -s <stack>"
        )
        return done


def _build_key(
    go: str, recipe: NodeRecipe, recipe_dir: Path, key: str, root: Path, env: Mapping[str, str]
) -> Path:
    tmp = buildcache.start(root, key)
    _say(f"building node image {key} in {tmp} ({go_version(go)})")
    bin_dir, images, work = tmp / "bin", tmp / "images", tmp / "work"
    for d in (bin_dir, images, work):
        d.mkdir()
    build_env = {**env, "CGO_ENABLED": "0"}
    arch = _run([go, "env", "GOARCH"], tmp, build_env).strip()
    timings: dict[str, float] = {}
    started = time.monotonic()
    ldflags = version_ldflags(recipe.kubernetes_version, recipe.build_date)
    refs = control_plane_refs(recipe)
    for name in (*recipe.node_binaries, *recipe.control_plane):  # one at a time: the machine is shared
        with _timed(timings, name, f"building {name} {recipe.kubernetes_version}"):
            _go_build(
                go,
                recipe_dir / recipe.module_dir,
                f"k8s.io/kubernetes/cmd/{name}",
                ldflags,
                bin_dir / name,
                build_env,
            )
    for image in recipe.images:
        with _timed(timings, image.name, f"building {image.name} {image.version} ({image.package})"):
            _go_build(
                go, recipe_dir / image.module_dir, image.package, "-s -w", bin_dir / image.name, build_env
            )
    reported = _run([str(bin_dir / "kubeadm"), "version", "-o", "short"], tmp, env).strip()
    if reported != recipe.kubernetes_version:
        raise ImageError(
            f"the built kubeadm reports {reported!r}, the recipe builds {recipe.kubernetes_version}"
        )
    with _timed(timings, "image-tars", "writing the control-plane image tars"):
        for name, ref in refs.items():
            path = f"/{name}" if name in ("coredns", "pause") else f"/usr/local/bin/{name}"
            archive = static_image_archive(ref, (bin_dir / name).read_bytes(), path, arch)
            (images / f"{name}.tar").write_bytes(archive)
    rootfs = work / "rootfs"
    rootfs.mkdir()
    with _timed(timings, "debootstrap", f"debootstrap {recipe.suite} ({len(recipe.packages)} packages)"):
        _run(
            [
                "bash",
                str(recipe_dir / "rootfs.sh"),
                str(rootfs),
                recipe.suite,
                recipe.mirror,
                ",".join(recipe.packages),
            ],
            tmp,
            env,
        )
    with _timed(timings, "rootfs-tar", "assembling and packing the node rootfs"):
        assemble_rootfs(rootfs, recipe, recipe_dir, bin_dir, images)
        _run(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "-C",
                str(rootfs),
                "-cf",
                str(tmp / "node-rootfs.tar"),
                ".",
            ],
            tmp,
            env,
        )
    shutil.rmtree(work)
    tag = node_tag(recipe, key)
    with _timed(timings, "docker-import", f"docker import as {tag}"):
        image_id = docker_import(tmp / "node-rootfs.tar", tag, env)
    stamp = {
        "key": key,
        "go": go_version(go),
        "tag": tag,
        "image_id": image_id,
        "images": refs,
        "seconds": round(time.monotonic() - started),
        "built": timings,
    }
    final = buildcache.finish(tmp, root, key, stamp)
    _say(f"node image {key} built in {stamp['seconds']}s: {final}")
    return final


def current_tag(env: Mapping[str, str]) -> str | None:
    """The node image tag of the current recipe if that key is built, without building anything."""
    recipe = load_node_recipe()
    key = image_key(RECIPE_DIR, go_version(go_command()))
    return node_tag(recipe, key) if built_dir(images_root(env), key) is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supply.node_image", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the node image unless this key is built; import it if missing")
    sub.add_parser("key", help="print the cache key of the current recipe")
    sub.add_parser("tag", help="print the built node image's tag (exit 1 if it is not built)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        elif args.command == "key":
            print(image_key(RECIPE_DIR, go_version(go_command())))
        else:
            tag = current_tag(os.environ)
            if tag is None:
                print("the kind node image is not built: run `make images`", file=sys.stderr)
                return 1
            print(tag)
        return 0
    except (ToolchainError, subprocess.CalledProcessError, OSError) as exc:
        print(f"[images] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
