"""The kind node image recipe and builder (supply/node_image.py): validation, version stamping, the
preloaded image tars and the rootfs assembly, offline; the built image itself when it is built."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from supply import node_image as images
from supply.buildcache import built_dir
from supply.node_image import ImageError, NodeRecipe
from supply.toolchain import ToolchainError, go_command, go_version

REPO = Path(__file__).resolve().parent.parent


def _raw() -> dict[str, Any]:
    with (images.RECIPE_DIR / "recipe.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_the_shipped_recipe_parses() -> None:
    recipe = images.load_node_recipe()
    assert recipe.kubernetes_version == "v1.36.1"
    assert recipe.node_binaries == ("kubeadm", "kubelet", "kubectl")
    assert {i.name for i in recipe.images} == {"etcd", "coredns", "pause"}


# What `kubeadm config images list --kubernetes-version v1.36.1` printed for the built kubeadm,
# less kube-proxy: the lab runs without it (kind's kubeProxyMode none; Cilium replaces it).
KUBEADM_V1_36_1 = {
    "registry.k8s.io/kube-apiserver:v1.36.1",
    "registry.k8s.io/kube-controller-manager:v1.36.1",
    "registry.k8s.io/kube-scheduler:v1.36.1",
    "registry.k8s.io/coredns/coredns:v1.14.2",
    "registry.k8s.io/pause:3.10.2",
    "registry.k8s.io/etcd:3.6.8-0",
}


def test_the_preloaded_images_are_exactly_the_names_kubeadm_asks_for() -> None:
    assert set(images.control_plane_refs(images.load_node_recipe()).values()) == KUBEADM_V1_36_1


def _built_dir() -> Path | None:
    try:
        key = images.image_key(images.RECIPE_DIR, go_version(go_command()))
    except ToolchainError:
        return None
    return built_dir(images.images_root(os.environ), key)


def test_the_built_kubeadm_asks_for_the_preloaded_images() -> None:
    built = _built_dir()
    if built is None:
        pytest.skip("the kind node image is not built (make images)")
    out = subprocess.run(
        [str(built / "bin" / "kubeadm"), "config", "images", "list", "--kubernetes-version", "v1.36.1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    asked = {ref for ref in out if "/kube-proxy:" not in ref}
    assert asked == set(images.control_plane_refs(images.load_node_recipe()).values())
    version_argv = {
        "kubeadm": ["version", "-o", "short"],
        "kubelet": ["--version"],
        "kubectl": ["version", "--client"],
    }
    for name, args in version_argv.items():
        version = subprocess.run(
            [str(built / "bin" / name), *args], capture_output=True, text=True, check=True
        ).stdout
        assert "v1.36.1" in version, (name, version)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("kubernetes", "version"), "1.36.1", "is not vMAJOR.MINOR.PATCH"),
        (("kubernetes", "version"), "v1.36.1;rm", "not a plain"),
        (("kubernetes", "build_date"), "yesterday", "RFC 3339"),
        (("kubernetes", "node_binaries"), [], "non-empty list"),
        (("kubernetes", "control_plane"), ["kube-apiserver", "kubelet"], "names a binary twice"),
        (("debian", "mirror"), "http://deb.debian.org/debian;id", r"plain http\(s\) URL"),
        (("debian", "packages"), ["systemd", "a b"], "not a plain"),
        (("node", "repository"), "", "non-empty string"),
    ],
)
def test_a_bad_recipe_value_is_refused_with_its_key(
    path: tuple[str, str], value: object, message: str
) -> None:
    raw = copy.deepcopy(_raw())
    raw[path[0]][path[1]] = value
    with pytest.raises(ImageError, match=message):
        images.parse_node_recipe(raw)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ref", "registry.k8s.io/etcd", "not registry/path:tag"),
        ("ref", "registry.k8s.io/etcd:3.6 8", "not registry/path:tag"),
        ("ref", "etcd:3.6.8-0", "not registry/path:tag"),
        ("module_dir", "../etcd", "not a plain"),
        ("bogus", "x", "unknown recipe keys"),
    ],
)
def test_a_bad_image_table_is_refused(field: str, value: str, message: str) -> None:
    raw = copy.deepcopy(_raw())
    raw["image"][0][field] = value
    with pytest.raises(ImageError, match=message):
        images.parse_node_recipe(raw)


def test_an_image_table_missing_a_key_is_refused() -> None:
    raw = copy.deepcopy(_raw())
    del raw["image"][0]["version"]
    with pytest.raises(ImageError, match=r"missing recipe keys \['version'\]"):
        images.parse_node_recipe(raw)


def test_every_binary_reports_the_pinned_version_in_both_version_packages() -> None:
    flags = images.version_ldflags("v1.36.1", "2026-05-01T00:00:00Z").split(" ")
    assert flags[:2] == ["-s", "-w"]
    xs = {flags[i + 1] for i, f in enumerate(flags) if f == "-X"}
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert {
            f"{package}.gitVersion=v1.36.1",
            f"{package}.gitMajor=1",
            f"{package}.gitMinor=36",
            f"{package}.gitTreeState=clean",
            f"{package}.buildDate=2026-05-01T00:00:00Z",
        } <= xs


def _members(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    out: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out[m.name.rstrip("/")] = (m, f.read() if f else None)
    return out


def test_a_static_image_archive_is_a_reproducible_docker_archive_of_one_binary() -> None:
    ref = "registry.k8s.io/etcd:3.6.8-0"
    first = images.static_image_archive(ref, b"\x7fELF etcd", "/usr/local/bin/etcd", "amd64")
    assert first == images.static_image_archive(ref, b"\x7fELF etcd", "/usr/local/bin/etcd", "amd64")
    assert first != images.static_image_archive(ref, b"\x7fELF etcd2", "/usr/local/bin/etcd", "amd64")
    members = _members(first)
    manifest = json.loads(members["manifest.json"][1] or b"")
    assert [m["RepoTags"] for m in manifest] == [[ref]]
    layer = members[manifest[0]["Layers"][0]][1] or b""
    config = json.loads(members[manifest[0]["Config"]][1] or b"")
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/etcd"]
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in config["config"]["Env"]
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    files = _members(layer)
    info, body = files["usr/local/bin/etcd"]
    assert (body, info.mode, info.mtime, info.uid) == (b"\x7fELF etcd", 0o755, 0, 0)
    assert files["tmp"][0].mode == 0o1777
    assert {"usr", "usr/local", "usr/local/bin"} <= set(files)


def test_the_key_covers_every_recipe_file(tmp_path: Path) -> None:
    shutil.copytree(images.RECIPE_DIR, tmp_path / "r", ignore=shutil.ignore_patterns("*.go", "go.sum"))
    before = images.image_key(tmp_path / "r", "go1.26.8")
    assert images.image_key(tmp_path / "r", "go1.26.8") == before
    assert images.image_key(tmp_path / "r", "go1.26.9") != before
    entrypoint = tmp_path / "r" / "files" / "usr" / "local" / "bin" / "entrypoint"
    entrypoint.write_text(entrypoint.read_text() + "\n# changed\n")
    assert images.image_key(tmp_path / "r", "go1.26.8") != before


def test_the_node_tag_names_version_and_key() -> None:
    recipe = images.load_node_recipe()
    assert images.node_tag(recipe, "0123456789abcdef") == "cdl/kind-node:v1.36.1-0123456789abcdef"


def _fake_rootfs(tmp_path: Path, recipe: NodeRecipe) -> tuple[Path, Path, Path]:
    rootfs, bin_dir, tars = tmp_path / "rootfs", tmp_path / "bin", tmp_path / "images"
    for d in (rootfs / "usr" / "bin", rootfs / "lib" / "systemd" / "system", bin_dir, tars):
        d.mkdir(parents=True)
    (rootfs / "lib" / "systemd" / "system" / "containerd.service").write_text("[Unit]\n")
    for name in recipe.node_binaries:
        (bin_dir / name).write_text(f"binary {name}")
    (tars / "etcd.tar").write_bytes(b"tar")
    return rootfs, bin_dir, tars


def test_the_rootfs_gets_binaries_filter_images_version_and_boot_units(tmp_path: Path) -> None:
    recipe = images.load_node_recipe()
    rootfs, bin_dir, tars = _fake_rootfs(tmp_path, recipe)
    images.assemble_rootfs(rootfs, recipe, images.RECIPE_DIR, bin_dir, tars)
    assert (rootfs / "kind" / "version").read_text() == "v1.36.1\n"
    assert (rootfs / "usr" / "bin" / "kubelet").read_text() == "binary kubelet"
    assert os.access(rootfs / "usr" / "bin" / "kubeadm", os.X_OK)
    capfilter = rootfs / "usr" / "local" / "sbin" / "runc-capfilter"
    assert capfilter.read_bytes() == (REPO / "engine" / "runc_capfilter.py").read_bytes()
    assert os.access(capfilter, os.X_OK)
    assert (rootfs / "kind" / "images" / "etcd.tar").read_bytes() == b"tar"
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants"
    assert {p.name: os.readlink(p) for p in wants.iterdir()} == {
        "containerd.service": "/lib/systemd/system/containerd.service",
        "cdl-preload-images.service": "/etc/systemd/system/cdl-preload-images.service",
        "kubelet.service": "/etc/systemd/system/kubelet.service",
    }
    entrypoint = rootfs / "usr" / "local" / "bin" / "entrypoint"
    assert os.access(entrypoint, os.X_OK)
    assert not os.access(rootfs / "etc" / "containerd" / "config.toml", os.X_OK)
    config = tomllib.loads((rootfs / "etc" / "containerd" / "config.toml").read_text())
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == images.control_plane_refs(recipe)["pause"]
    assert cri["containerd"]["runtimes"]["runc"]["options"]["BinaryName"] == "/usr/local/sbin/runc-capfilter"
    # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj: no static pod would start.
    assert cri["restrict_oom_score_adj"] is True
    dropin = (rootfs / "etc" / "systemd" / "system" / "kubelet.service.d" / "20-cgroups.conf").read_text()
    assert "ExecStartPre=/kind/bin/kubelet-cgroups.sh" in dropin
    assert os.access(rootfs / "kind" / "bin" / "kubelet-cgroups.sh", os.X_OK)


def test_a_rootfs_without_containerd_is_refused(tmp_path: Path) -> None:
    recipe = images.load_node_recipe()
    rootfs, bin_dir, tars = _fake_rootfs(tmp_path, recipe)
    (rootfs / "lib" / "systemd" / "system" / "containerd.service").unlink()
    with pytest.raises(ImageError, match=r"no /lib/systemd/system/containerd\.service"):
        images.assemble_rootfs(rootfs, recipe, images.RECIPE_DIR, bin_dir, tars)


def test_the_built_node_image_is_in_the_engine_with_its_version() -> None:
    built = _built_dir()
    if built is None:
        pytest.skip("the kind node image is not built (make images)")
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode
    ):
        pytest.skip("no Docker engine reachable (make dockerd)")
    tag = json.loads((built / "stamp.json").read_text())["tag"]
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", tag, "/kind/version"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode and "No such image" in out.stderr:
        pytest.skip(f"{tag} is built but not imported into this engine (make images imports it)")
    assert out.stdout == "v1.36.1\n", out.stderr


def test_the_node_metadata_is_kinds_contract() -> None:
    lines = images.node_dockerfile("cdl/kind-node:v1.36.1-k-rootfs").splitlines()
    assert lines[0] == "FROM cdl/kind-node:v1.36.1-k-rootfs"
    assert "STOPSIGNAL SIGRTMIN+3" in lines and "ENV container=docker" in lines
    assert 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' in lines
