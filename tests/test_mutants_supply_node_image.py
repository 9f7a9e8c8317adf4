"""supply/node_image.py cases a mutation run (`make mutation`) found no test for.

The build itself (Go, debootstrap, docker import) takes an hour and root; here it runs against a
stand-in for each step (`_run`, docker_import, the Go version), which records what the build asks
for and makes the files a real step would. What is checked is the build's own part: which step
gets which arguments, in which order, and what lands in the key's folder and its stamp.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from clisupport import failed_build, help_text

from supply import node_image as images
from supply.buildcache import STAMP
from supply.node_image import ImageError, NodeRecipe


def _buffered() -> dict[str, str]:
    """This process's environment (read when called: a mutant under test is named in it), with
    stdout buffered as on a pipe by default: a PYTHONUNBUFFERED in the shell would hide a missing flush."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


GO = "/opt/go/bin/go"
GO_VERSION = "go version go1.26.8 linux/amd64"
K8S = "v1.36.1"


class Steps:
    """Stands in for supply.toolchain._run as node_image calls it: records (argv, cwd, env) and
    makes what the step would (a binary from `go build -o`, the rootfs from rootfs.sh, a tar)."""

    def __init__(self, reports: str = K8S) -> None:
        self.calls: list[tuple[list[str], Path, dict[str, str]]] = []
        self.reports = reports

    def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
        argv = list(argv)
        self.calls.append((argv, cwd, dict(env)))
        if argv[:3] == [GO, "env", "GOARCH"]:
            return "arm64\n"
        if argv[:2] == [GO, "build"]:
            out = Path(argv[argv.index("-o") + 1])
            out.write_bytes(b"\x7fELF " + out.name.encode())
            return ""
        if argv[0].endswith("/kubeadm"):
            return self.reports + "\n"
        if argv[0] == "bash":
            rootfs = Path(argv[2])
            (rootfs / "lib" / "systemd" / "system").mkdir(parents=True)
            (rootfs / "lib" / "systemd" / "system" / "containerd.service").write_text("[Unit]\n")
            (rootfs / "usr" / "bin").mkdir(parents=True)
            return ""
        if argv[0] == "tar":
            Path(argv[argv.index("-cf") + 1]).write_bytes(b"rootfs tar")
            return ""
        raise AssertionError(f"unexpected step {argv}")

    def argvs(self) -> list[list[str]]:
        return [argv for argv, _, _ in self.calls]


def go_version(go: str) -> str:
    """`go version` of the one Go the build was given."""
    assert go == GO, go
    return GO_VERSION


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    made = Steps()
    monkeypatch.setattr(images, "_run", made)
    monkeypatch.setattr(images, "go_version", go_version)
    return made


@pytest.fixture
def imports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str, dict[str, str]]]:
    made: list[tuple[Path, str, dict[str, str]]] = []

    def docker_import(tar: Path, tag: str, env: Mapping[str, str]) -> str:
        made.append((tar, tag, dict(env)))
        return "0123456789abcdef" * 4

    monkeypatch.setattr(images, "docker_import", docker_import)
    return made


def _recipe() -> NodeRecipe:
    return images.load_node_recipe()


def test_a_key_is_built_step_by_step_into_its_folder(
    tmp_path: Path,
    steps: Steps,
    imports: list[tuple[Path, str, dict[str, str]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe, root, env = _recipe(), tmp_path / "images", {"PATH": "/usr/bin", "HOME": str(tmp_path)}
    root.mkdir()
    final = images._build_key(GO, recipe, images.RECIPE_DIR, "k1", root, env)
    assert final == root / "k1"
    builds = [argv for argv in steps.argvs() if argv[:2] == [GO, "build"]]
    names = [*recipe.node_binaries, *recipe.control_plane, *(i.name for i in recipe.images)]
    assert [Path(argv[argv.index("-o") + 1]).name for argv in builds] == names  # one at a time, in order
    ldflags = images.version_ldflags(K8S, recipe.build_date)
    for argv, name in zip(builds, names, strict=True):
        if name in recipe.node_binaries + recipe.control_plane:
            assert argv[2:5] == ["-trimpath", f"-ldflags={ldflags}", "-o"]
            assert argv[-1] == f"k8s.io/kubernetes/cmd/{name}"
        else:
            image = next(i for i in recipe.images if i.name == name)
            assert argv[2:5] == ["-trimpath", "-ldflags=-s -w", "-o"] and argv[-1] == image.package
    cwds = {
        Path(argv[argv.index("-o") + 1]).name: cwd
        for argv, cwd, _ in steps.calls
        if argv[:2] == [GO, "build"]
    }
    assert cwds["kubeadm"] == images.RECIPE_DIR / recipe.module_dir
    assert cwds["etcd"] == images.RECIPE_DIR / "etcd"
    for argv, _, build_env in steps.calls:
        if argv[0] == GO:
            assert build_env == {**env, "CGO_ENABLED": "0"}, argv
        else:
            assert build_env == env, argv  # kubeadm, rootfs.sh and tar run without CGO_ENABLED
    # The other steps run in the build's own folder, never in the caller's (a module of its own
    # there could make `go env` fetch a toolchain).
    capsys_out = capsys.readouterr().out
    build_dir = Path(capsys_out.split(" in ", 1)[1].split(" (", 1)[0])
    assert build_dir.parent == root and build_dir.name.startswith(".build-k1-")
    assert {cwd for argv, cwd, _ in steps.calls if argv[:2] != [GO, "build"]} == {build_dir}
    # What each step was asked, after the builds: the version check, debootstrap, the tar.
    rest = [argv for argv in steps.argvs() if argv[:2] != [GO, "build"]]
    assert rest[0] == [GO, "env", "GOARCH"]
    assert rest[1][0].endswith("/bin/kubeadm") and rest[1][1:] == ["version", "-o", "short"]
    assert rest[2][:2] == ["bash", str(images.RECIPE_DIR / "rootfs.sh")]
    assert rest[2][3:] == [recipe.suite, recipe.mirror, ",".join(recipe.packages)]
    assert rest[3][:6] == ["tar", "--numeric-owner", "--xattrs", "-C", rest[2][2], "-cf"]
    assert rest[3][7:] == ["."]
    # The key's folder: binaries, one image tar per preloaded ref, the rootfs tar, no work folder.
    assert sorted(p.name for p in (final / "bin").iterdir()) == sorted(names)
    refs = images.control_plane_refs(recipe)
    assert sorted(p.name for p in (final / "images").iterdir()) == sorted(f"{n}.tar" for n in refs)
    assert (final / "node-rootfs.tar").read_bytes() == b"rootfs tar" and not (final / "work").exists()
    # Each image tar holds its binary at the path kubeadm's manifests run it from, for this arch.
    for name, ref in refs.items():
        with tarfile.open(final / "images" / f"{name}.tar") as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
            config = json.loads(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
        assert manifest[0]["RepoTags"] == [ref] and config["architecture"] == "arm64"
        wanted = f"/{name}" if name in ("coredns", "pause") else f"/usr/local/bin/{name}"
        assert config["config"]["Entrypoint"] == [wanted], name
        with tarfile.open(final / "images" / f"{name}.tar") as tar:
            layer_tar = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
        with tarfile.open(fileobj=io.BytesIO(layer_tar)) as layer:
            assert layer.extractfile(wanted.lstrip("/")).read() == b"\x7fELF " + name.encode()  # type: ignore[union-attr]
    tag = f"cdl/kind-node:{K8S}-k1"
    [(rootfs_tar, imported, import_env)] = imports
    assert (rootfs_tar.name, imported, import_env) == ("node-rootfs.tar", tag, env)
    stamp = json.loads((final / STAMP).read_text())
    assert set(stamp["built"]) == {*names, "image-tars", "debootstrap", "rootfs-tar", "docker-import"}
    assert stamp["seconds"] in range(0, 60)
    del stamp["built"], stamp["seconds"]
    assert stamp == {
        "key": "k1",
        "go": GO_VERSION,
        "tag": tag,
        "image_id": "0123456789abcdef" * 4,
        "images": refs,
    }
    out = capsys_out
    assert out.startswith(f"[images] building node image k1 in {build_dir} ({GO_VERSION})\n")
    assert f"[images] building kubeadm {K8S} ...\n" in out
    packages = len(recipe.packages)
    for what in (
        "writing the control-plane image tars",
        f"debootstrap bookworm ({packages} packages)",
        "assembling and packing the node rootfs",
        f"docker import as {tag}",
    ):
        assert f"[images] {what} ...\n" in out and re.search(rf"\[images\] {re.escape(what)}: \d+s\n", out), (
            what
        )
    assert re.search(r"\[images\] building etcd v3\.6\.8 \(go\.etcd\.io/etcd/server/v3\): \d+s\n", out)
    assert out.endswith(f"[images] node image k1 built in {stamp_seconds(final)}s: {final}\n")


def stamp_seconds(final: Path) -> int:
    seconds: int = json.loads((final / STAMP).read_text())["seconds"]
    return seconds


def test_a_kubeadm_that_reports_another_version_stops_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, imports: list[tuple[Path, str, dict[str, str]]]
) -> None:
    wrong = Steps(reports="v1.36.0")
    monkeypatch.setattr(images, "_run", wrong)
    monkeypatch.setattr(images, "go_version", go_version)
    (tmp_path / "images").mkdir()
    with pytest.raises(ImageError) as stopped:
        images._build_key(GO, _recipe(), images.RECIPE_DIR, "k1", tmp_path / "images", {})
    assert str(stopped.value) == "the built kubeadm reports 'v1.36.0', the recipe builds v1.36.1"
    assert not (tmp_path / "images" / "k1").exists() and imports == []


def test_build_builds_an_unbuilt_key_then_only_imports_what_the_engine_lost(
    tmp_path: Path,
    steps: Steps,
    imports: list[tuple[Path, str, dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    in_engine: dict[str, str] = {}
    asked: list[Mapping[str, str]] = []

    def engine_image_id(tag: str, env: Mapping[str, str]) -> str | None:
        asked.append(env)
        return in_engine.get(tag)

    monkeypatch.setattr(images, "go_command", lambda: GO)
    monkeypatch.setattr(images, "engine_image_id", engine_image_id)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    key = images.image_key(images.RECIPE_DIR, GO_VERSION)
    tag = f"cdl/kind-node:{K8S}-{key}"
    done = images.build(env=env)
    assert done == tmp_path / "cache" / "cilium-datapath-lab" / "images" / key
    assert [t for _, t, _ in imports] == [tag, tag]  # built (and imported), then missing from the engine
    assert imports[1][0] == done / "node-rootfs.tar" and imports[1][2] == env and asked == [env]
    out = capsys.readouterr().out
    seconds = re.search(
        rf"\[images\] imported {re.escape(tag)} \(0123456789ab\) into the engine in (\d+)s\n", out
    )
    assert seconds and int(seconds[1]) < 60
    assert out.endswith(
        f"[images] node image: {tag}; a stack runs it with: pulumi config set "
        f"cilium-datapath-lab:nodeImage local:{tag} -s <stack>\n"
    )
    in_engine[tag] = "0123"
    builds = len(steps.calls)
    assert images.build(env=env) == done
    assert len(steps.calls) == builds and len(imports) == 2  # neither built nor imported again
    assert capsys.readouterr().out.startswith(f"[images] node image {key} is already built: {done}\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert images.build() == done  # the process's environment when none is given
    assert images.current_tag(os.environ) == tag


def test_current_tag_is_none_until_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "go_command", lambda: GO)
    monkeypatch.setattr(images, "go_version", go_version)
    assert images.current_tag({"XDG_CACHE_HOME": str(tmp_path)}) is None
    key = images.image_key(images.RECIPE_DIR, GO_VERSION)
    (tmp_path / "cilium-datapath-lab" / "images" / key).mkdir(parents=True)
    (tmp_path / "cilium-datapath-lab" / "images" / key / STAMP).write_text("{}")
    assert images.current_tag({"XDG_CACHE_HOME": str(tmp_path)}) == f"cdl/kind-node:{K8S}-{key}"


def test_the_cli_prints_the_key_and_the_tag_or_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(images, "go_command", lambda: GO)
    monkeypatch.setattr(images, "go_version", go_version)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = images.image_key(images.RECIPE_DIR, GO_VERSION)
    assert images.main(["key"]) == 0
    assert capsys.readouterr() == (f"{key}\n", "")
    assert images.main(["tag"]) == 1
    assert capsys.readouterr() == ("", "the kind node image is not built: run `make images`\n")
    (tmp_path / "cilium-datapath-lab" / "images" / key).mkdir(parents=True)
    (tmp_path / "cilium-datapath-lab" / "images" / key / STAMP).write_text("{}")
    assert images.main(["tag"]) == 0
    assert capsys.readouterr() == (f"cdl/kind-node:{K8S}-{key}\n", "")
    built: list[bool] = []
    monkeypatch.setattr(images, "build", lambda: built.append(True))
    assert images.main(["build"]) == 0 and built == [True]


@pytest.mark.parametrize(
    "error",
    [
        ImageError("the rootfs has no x"),
        subprocess.CalledProcessError(1, ["docker", "import"]),
        OSError(28, "No space left on device"),
    ],
)
def test_the_cli_reports_a_failed_build_in_one_line(
    error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failed_build(images, error, monkeypatch, capsys) == ("", f"[images] error: {error}\n")


def test_the_cli_wants_a_command_and_says_what_each_does(capsys: pytest.CaptureFixture[str]) -> None:
    said = help_text(images.main, capsys)
    assert said.startswith("usage: python -m supply.node_image [-h] {build,key,tag} ...")
    assert (
        "Build the lab's kind node image offline (Debian packages and the Go module proxy), cached by a key."
        in said
    )
    assert "build build the node image unless this key is built; import it if missing" in said
    assert "key print the cache key of the current recipe" in said
    assert "tag print the built node image's tag (exit 1 if it is not built)" in said


def test_progress_lines_are_flushed_before_what_a_step_prints_next() -> None:
    code = (
        "import os; from supply.node_image import _say; _say('building'); os.write(1, b'go: downloading\\n')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**_buffered(), "PYTHONPATH": str(Path(images.__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == "[images] building\ngo: downloading\n"


def _tar_names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_an_image_archive_is_owned_by_root_with_fixed_times() -> None:
    data = images.static_image_archive("registry.k8s.io/pause:3.10.2", b"\x7fELF", "/pause", "amd64")
    outer = _tar_names(data)
    [layer_name] = [n for n in outer if n.endswith("/layer.tar")]
    assert outer[layer_name.split("/")[0]].isdir()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        layer = _tar_names(tar.extractfile(layer_name).read())  # type: ignore[union-attr]
    assert set(layer) == {"tmp", "pause"}
    for member in [*outer.values(), *layer.values()]:
        assert (member.uname, member.gname, member.uid, member.gid, member.mtime) == ("root", "root", 0, 0, 0)


def test_the_image_key_follows_the_capability_filter_the_node_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = images.image_key(images.RECIPE_DIR, GO_VERSION)
    capfilter = tmp_path / "runc_capfilter.py"
    capfilter.write_bytes(images.CAPFILTER.read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(images, "CAPFILTER", capfilter)
    assert images.image_key(images.RECIPE_DIR, GO_VERSION) != before


def test_the_node_images_live_beside_the_toolchain(tmp_path: Path) -> None:
    assert (
        images.images_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "cilium-datapath-lab" / "images"
    )


# --- the recipe -------------------------------------------------------------------------------------


def _raw() -> dict[str, Any]:
    with (images.RECIPE_DIR / "recipe.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_the_shipped_recipe_parses_to_exactly_its_values() -> None:
    raw = _raw()
    k8s, debian = raw["kubernetes"], raw["debian"]
    assert images.parse_node_recipe(raw) == NodeRecipe(
        kubernetes_version=k8s["version"],
        module_dir=k8s["module_dir"],
        build_date=k8s["build_date"],
        node_binaries=tuple(k8s["node_binaries"]),
        control_plane=tuple(k8s["control_plane"]),
        registry=k8s["registry"],
        images=tuple(images.StaticImage(**i) for i in raw["image"]),
        suite=debian["suite"],
        mirror=debian["mirror"],
        packages=tuple(debian["packages"]),
        repository=raw["node"]["repository"],
    )


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("kubernetes", "version"),
        ("kubernetes", "module_dir"),
        ("kubernetes", "registry"),
        ("debian", "suite"),
        ("node", "repository"),
    ],
)
def test_a_value_that_is_no_plain_token_is_refused_naming_its_key(table: str, key: str) -> None:
    raw = _raw()
    raw[table][key] = "a b"
    with pytest.raises(ImageError) as refused:
        images.parse_node_recipe(raw)
    assert str(refused.value) == f"recipe {key} 'a b' is not a plain module path, version or name"


@pytest.mark.parametrize(
    ("key", "value"), [("name", "e tcd"), ("module_dir", "../x"), ("version", "v1 2"), ("package", "a b")]
)
def test_an_image_value_that_is_no_plain_token_is_refused_naming_its_key(key: str, value: str) -> None:
    raw = _raw()
    raw["image"][0][key] = value
    with pytest.raises(ImageError) as refused:
        images.parse_node_recipe(raw)
    assert str(refused.value) == f"recipe {key} {value!r} is not a plain module path, version or name"


def test_a_list_value_that_is_no_plain_token_is_refused_naming_its_key() -> None:
    raw = _raw()
    raw["kubernetes"]["control_plane"] = ["kube-apiserver", "a;b"]
    with pytest.raises(ImageError) as refused:
        images.parse_node_recipe(raw)
    assert str(refused.value) == "recipe control_plane 'a;b' is not a plain module path, version or name"


def test_each_structural_refusal_in_its_own_words() -> None:
    raw = _raw()
    del raw["debian"]
    with pytest.raises(ImageError, match=r"^recipe has no \[debian\] table$"):
        images.parse_node_recipe(raw)
    for bad in ([1], "etcd", [{"name": "etcd"}, "x"]):
        raw = _raw()
        raw["image"] = bad
        with pytest.raises(ImageError, match=r"^recipe \[\[image\]\] must be a list of tables$"):
            images.parse_node_recipe(raw)
    raw = _raw()
    raw["image"][1]["colour"] = "red"
    with pytest.raises(ImageError, match=r"^image 'coredns': unknown recipe keys \['colour'\]$"):
        images.parse_node_recipe(raw)
    raw = _raw()
    del raw["image"][2]["ref"]
    with pytest.raises(ImageError, match=r"^image 'pause': missing recipe keys \['ref'\]$"):
        images.parse_node_recipe(raw)


def test_a_recipe_without_images_preloads_only_the_control_plane() -> None:
    raw = _raw()
    del raw["image"]
    recipe = images.parse_node_recipe(raw)
    assert recipe.images == ()
    assert set(images.control_plane_refs(recipe)) == set(recipe.control_plane)


def test_a_mirror_host_may_have_capitals_as_dns_names_do() -> None:
    raw = _raw()
    raw["debian"]["mirror"] = "http://Deb.Debian.org/Debian/"
    assert images.parse_node_recipe(raw).mirror == "http://Deb.Debian.org/Debian/"


# --- one-binary image archives ------------------------------------------------------------------------


def test_an_image_config_is_compact_sorted_json_with_every_field() -> None:
    data = images.static_image_archive(
        "registry.k8s.io/etcd:3.6.8-0", b"\x7fELF", "/usr/local/bin/etcd", "amd64"
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        raw = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    config = json.loads(raw)
    assert raw == json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert manifest[0]["Config"] == f"{hashlib.sha256(raw).hexdigest()}.json"
    assert config == {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/usr/local/bin/etcd"],
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "supply/node_image.py"}],
    }


def test_an_image_archives_modes_are_fixed() -> None:
    data = images.static_image_archive("r.example/x:1", b"\x7fELF", "/usr/local/bin/x", "amd64")
    outer = _tar_names(data)
    [layer_name] = [n for n in outer if n.endswith("/layer.tar")]
    assert {n: m.mode for n, m in outer.items()} == {
        layer_name.split("/")[0]: 0o755,
        layer_name: 0o644,
        next(n for n in outer if n.endswith(".json") and n != "manifest.json"): 0o644,
        "manifest.json": 0o644,
    }
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        layer = _tar_names(tar.extractfile(layer_name).read())  # type: ignore[union-attr]
    assert {n: m.mode for n, m in layer.items()} == {
        "usr": 0o755,
        "usr/local": 0o755,
        "usr/local/bin": 0o755,
        "tmp": 0o1777,
        "usr/local/bin/x": 0o755,
    }


def test_a_binary_lands_at_its_path_whatever_its_first_letter() -> None:
    data = images.static_image_archive("r.example/x:1", b"\x7fELF", "/Xvfb", "amd64")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [layer_name] = [n for n in tar.getnames() if n.endswith("/layer.tar")]
        layer = _tar_names(tar.extractfile(layer_name).read())  # type: ignore[union-attr]
    assert set(layer) == {"tmp", "Xvfb"}


# --- the engine: a stand-in docker on PATH -------------------------------------------------------------

_FAKE_DOCKER = """#!/bin/sh
{ echo "argv $*"; echo "cwd $(pwd)"; echo "buildkit ${DOCKER_BUILDKIT-unset}"; } >> "$LOG"
case "$1 $2" in
  "build --quiet") cat >> "$LOG"; echo "$BUILD_OUT"; echo "$BUILD_ERR" >&2; exit "$BUILD_RC" ;;
  "image inspect") echo "$INSPECT_OUT"; exit "$INSPECT_RC" ;;
esac
exit 0
"""


def _docker(tmp_path: Path, **answers: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "docker").write_text(_FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    defaults = {
        "BUILD_OUT": "sha256:" + "ab" * 32,
        "BUILD_ERR": "",
        "BUILD_RC": "0",
        "INSPECT_OUT": "",
        "INSPECT_RC": "1",
    }
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(tmp_path / "docker.log"), **defaults, **answers}


def test_docker_import_imports_the_rootfs_then_builds_the_node_metadata_on_it(tmp_path: Path) -> None:
    env = _docker(tmp_path)
    (tmp_path / "k").mkdir()
    tar = tmp_path / "k" / "node-rootfs.tar"
    tar.write_bytes(b"tar")
    assert images.docker_import(tar, "cdl/kind-node:v1-k", env) == "ab" * 32
    log = (tmp_path / "docker.log").read_text()
    assert log == (
        f"argv import {tar} cdl/kind-node:v1-k-rootfs\ncwd {tmp_path / 'k'}\nbuildkit unset\n"
        f"argv build --quiet --tag cdl/kind-node:v1-k -\ncwd {os.getcwd()}\nbuildkit 0\n"
        + images.node_dockerfile("cdl/kind-node:v1-k-rootfs")
    )


def test_a_failed_node_metadata_build_says_which_and_why(tmp_path: Path) -> None:
    env = _docker(tmp_path, BUILD_OUT="", BUILD_ERR="  no space left on device", BUILD_RC="1")
    (tmp_path / "rootfs.tar").write_bytes(b"tar")
    with pytest.raises(ImageError) as failed:
        images.docker_import(tmp_path / "rootfs.tar", "t:1", env)
    assert str(failed.value) == "`docker build` of t:1 on t:1-rootfs failed:\n  no space left on device"


def test_an_image_is_looked_up_by_its_id_in_the_engine(tmp_path: Path) -> None:
    env = _docker(tmp_path, INSPECT_OUT="sha256:" + "cd" * 32, INSPECT_RC="0")
    assert images.engine_image_id("cdl/kind-node:v1-k", env) == "cd" * 32
    assert (tmp_path / "docker.log").read_text().splitlines()[0] == (
        "argv image inspect --format {{.Id}} cdl/kind-node:v1-k"
    )
    missing = _docker(tmp_path / "other", INSPECT_OUT="", INSPECT_RC="1")
    assert images.engine_image_id("cdl/kind-node:v1-k", missing) is None


# --- the node's rootfs ------------------------------------------------------------------------------------


def _debian_like(rootfs: Path) -> None:
    """What debootstrap leaves that assemble_rootfs writes into: /usr/local/sbin, systemd's wants
    folder (with a link of its own), containerd's unit, /usr/bin."""
    for d in (
        "usr/bin",
        "usr/local/sbin",
        "etc/systemd/system/multi-user.target.wants",
        "lib/systemd/system",
    ):
        (rootfs / d).mkdir(parents=True)
    (rootfs / "lib/systemd/system/containerd.service").write_text("[Unit]\n")
    (rootfs / "etc/systemd/system/multi-user.target.wants/containerd.service").symlink_to("/nowhere")


def test_the_rootfs_is_assembled_over_what_debootstrap_left(tmp_path: Path) -> None:
    recipe = _recipe()
    rootfs, bin_dir, tars = tmp_path / "rootfs", tmp_path / "bin", tmp_path / "images"
    _debian_like(rootfs)
    (rootfs / "kind" / "images").mkdir(parents=True)  # a second assembly into the same tree
    bin_dir.mkdir()
    tars.mkdir()
    for name in recipe.node_binaries:
        (bin_dir / name).write_text(name)
    images.assemble_rootfs(rootfs, recipe, images.RECIPE_DIR, bin_dir, tars)
    for name in recipe.node_binaries:
        assert ((rootfs / "usr/bin" / name).stat().st_mode & 0o7777) == 0o755
    assert ((rootfs / "usr/local/sbin/runc-capfilter").stat().st_mode & 0o7777) == 0o755
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "containerd.service") == "/lib/systemd/system/containerd.service"
    for path in (rootfs / "etc").rglob("*"):
        if path.is_dir() and not path.is_symlink():
            assert (path.stat().st_mode & 0o7777) == 0o755, path


def test_the_rootfs_gets_every_folder_it_writes_to(tmp_path: Path) -> None:
    """A recipe whose files/ holds only the boot units, on a rootfs with only containerd's unit:
    every folder written to is made."""
    recipe = _recipe()
    recipe_dir = tmp_path / "recipe"
    for unit in ("etc/systemd/system/cdl-preload-images.service", "etc/systemd/system/kubelet.service"):
        (recipe_dir / "files" / unit).parent.mkdir(parents=True, exist_ok=True)
        (recipe_dir / "files" / unit).write_text("[Unit]\n")
    rootfs, bin_dir, tars = tmp_path / "rootfs", tmp_path / "bin", tmp_path / "images"
    (rootfs / "lib/systemd/system").mkdir(parents=True)
    (rootfs / "lib/systemd/system/containerd.service").write_text("[Unit]\n")
    (rootfs / "usr/bin").mkdir(parents=True)
    bin_dir.mkdir()
    tars.mkdir()
    for name in recipe.node_binaries:
        (bin_dir / name).write_text(name)
    images.assemble_rootfs(rootfs, recipe, recipe_dir, bin_dir, tars)
    assert (rootfs / "kind" / "images").is_dir() and (rootfs / "kind" / "version").read_text() == "v1.36.1\n"
    assert (rootfs / "usr/local/sbin/runc-capfilter").is_file()  # no /usr/local before
    assert len(list((rootfs / "etc/systemd/system/multi-user.target.wants").iterdir())) == 3


def test_a_rootfs_without_the_boot_units_is_refused_naming_the_first_missing(tmp_path: Path) -> None:
    """Even where the recipe's files/ brings no /etc/systemd at all."""
    recipe = _recipe()
    (tmp_path / "recipe" / "files" / "usr").mkdir(parents=True)
    rootfs, bin_dir = tmp_path / "rootfs", tmp_path / "bin"
    (rootfs / "lib/systemd/system").mkdir(parents=True)
    (rootfs / "lib/systemd/system/containerd.service").write_text("[Unit]\n")
    (rootfs / "usr/bin").mkdir(parents=True)
    bin_dir.mkdir()
    for name in recipe.node_binaries:
        (bin_dir / name).write_text(name)
    with pytest.raises(ImageError) as refused:
        images.assemble_rootfs(rootfs, recipe, tmp_path / "recipe", bin_dir, tmp_path)
    assert (
        str(refused.value)
        == "the node rootfs has no /etc/systemd/system/cdl-preload-images.service to start at boot"
    )


def test_install_tree_makes_the_destination_and_its_folders(tmp_path: Path) -> None:
    (tmp_path / "src" / "a" / "bin").mkdir(parents=True)
    (tmp_path / "src" / "a" / "bin" / "run").write_text("#!/bin/sh\n")
    (tmp_path / "src" / "usr" / "local" / "sbin").mkdir(parents=True)
    (tmp_path / "src" / "usr" / "local" / "sbin" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "src" / "a" / "conf").write_text("x\n")
    images._install_tree(tmp_path / "src", tmp_path / "dest" / "rootfs")
    assert ((tmp_path / "dest/rootfs/a/bin/run").stat().st_mode & 0o7777) == 0o755
    assert ((tmp_path / "dest/rootfs/usr/local/sbin/tool").stat().st_mode & 0o7777) == 0o755
    assert ((tmp_path / "dest/rootfs/a/conf").stat().st_mode & 0o7777) == 0o644
    assert ((tmp_path / "dest/rootfs/a").stat().st_mode & 0o7777) == 0o755


# --- the step timer --------------------------------------------------------------------------------------


def _clock(monkeypatch: pytest.MonkeyPatch, *readings: float) -> None:
    """time.monotonic gives these readings in turn, then the last one again."""
    left = list(readings)
    monkeypatch.setattr("supply.node_image.time.monotonic", lambda: left.pop(0) if len(left) > 1 else left[0])


def test_a_step_is_timed_to_a_tenth_and_said_in_whole_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _clock(monkeypatch, 100.0, 102.26)
    timings: dict[str, float] = {}
    with images._timed(timings, "etcd", "building etcd"):
        pass
    assert timings == {"etcd": 2.3}
    assert capsys.readouterr().out == "[images] building etcd ...\n[images] building etcd: 2s\n"


def test_a_failed_step_is_timed_but_not_said_done(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _clock(monkeypatch, 10.0, 11.0)
    timings: dict[str, float] = {}
    with pytest.raises(ImageError), images._timed(timings, "etcd", "building etcd"):
        raise ImageError("go build failed")
    assert timings == {"etcd": 1.0}
    assert capsys.readouterr().out == "[images] building etcd ...\n"
