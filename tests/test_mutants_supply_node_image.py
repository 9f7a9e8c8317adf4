"""supply/node_image.py cases a mutation run (`make mutation`) found no test for.

The build itself (Go, debootstrap, docker import) takes an hour and root; here it runs against a
stand-in for each step (`_run`, docker_import, the Go version), which records what the build asks
for and makes the files a real step would. What is checked is the build's own part: which step
gets which arguments, in which order, and what lands in the key's folder and its stamp.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from supply import node_image as images
from supply.buildcache import STAMP
from supply.node_image import ImageError, NodeRecipe

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


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    made = Steps()
    monkeypatch.setattr(images, "_run", made)
    monkeypatch.setattr(images, "go_version", lambda go: GO_VERSION)
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
    out = capsys.readouterr().out
    assert out.startswith(f"[images] building node image k1 in {root}/.build-k1-")
    assert f"[images] building kubeadm {K8S} ...\n" in out
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
    monkeypatch.setattr(images, "go_version", lambda go: GO_VERSION)
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
    monkeypatch.setattr(images, "go_command", lambda: GO)
    monkeypatch.setattr(images, "engine_image_id", lambda tag, env: in_engine.get(tag))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    key = images.image_key(images.RECIPE_DIR, GO_VERSION)
    tag = f"cdl/kind-node:{K8S}-{key}"
    done = images.build(env=env)
    assert done == tmp_path / "cache" / "cilium-datapath-lab" / "images" / key
    assert [t for _, t, _ in imports] == [tag, tag]  # built (and imported), then missing from the engine
    out = capsys.readouterr().out
    assert re.search(rf"\[images\] imported {re.escape(tag)} \(0123456789ab\) into the engine in \d+s\n", out)
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
    monkeypatch.setattr(images, "go_version", lambda go: GO_VERSION)
    assert images.current_tag({"XDG_CACHE_HOME": str(tmp_path)}) is None
    key = images.image_key(images.RECIPE_DIR, GO_VERSION)
    (tmp_path / "cilium-datapath-lab" / "images" / key).mkdir(parents=True)
    (tmp_path / "cilium-datapath-lab" / "images" / key / STAMP).write_text("{}")
    assert images.current_tag({"XDG_CACHE_HOME": str(tmp_path)}) == f"cdl/kind-node:{K8S}-{key}"


def test_the_cli_prints_the_key_and_the_tag_or_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(images, "go_command", lambda: GO)
    monkeypatch.setattr(images, "go_version", lambda go: GO_VERSION)
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
    def fail() -> None:
        raise error

    monkeypatch.setattr(images, "build", fail)
    assert images.main(["build"]) == 1
    assert capsys.readouterr() == ("", f"[images] error: {error}\n")


def test_the_cli_wants_a_command_and_says_what_each_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        images.main([])
    assert refused.value.code == 2
    with pytest.raises(SystemExit):
        images.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
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
        env={**os.environ, "PYTHONPATH": str(Path(images.__file__).resolve().parent.parent)},
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
