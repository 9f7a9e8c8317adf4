"""Cilium's own binaries built from the Go module proxy (supply/cilium_images.py): recipe validation,
the -ldflags Cilium's Makefile.defs stamps, the cache key, the version check, the stand-in for the
refused mcs-api module, and the built agent and operator when they are built."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lab import cilium
from lab import offline as lab_offline
from lab.config import parse_config, with_offline_supply
from lab.plan import plan
from supply import chart, cilium_images
from supply import node_image as images
from supply.cilium_images import CiliumBuildError, CiliumRecipe, parse_recipe
from supply.toolchain import ToolchainError, go_command, go_version

REPO = Path(__file__).resolve().parent.parent


def _raw() -> dict[str, Any]:
    with (cilium_images.RECIPE_DIR / "recipe.toml").open("rb") as fh:
        return tomllib.load(fh)


def _recipe() -> CiliumRecipe:
    return cilium_images.load_recipe()


def test_the_shipped_recipe_builds_the_labs_cilium_release() -> None:
    recipe = _recipe()
    assert recipe.version == chart.CILIUM_VERSION  # the binaries and the chart are one release
    names = [b.name for b in recipe.binaries]
    assert {"cilium-agent", "cilium-operator-generic", "cilium-dbg", "cilium-health", "cilium-cni"} <= set(
        names
    )


def test_the_generic_operator_gets_operator_makefiles_tag_on_top_of_the_common_ones() -> None:
    recipe = _recipe()
    by_name = {b.name: b for b in recipe.binaries}
    assert (
        cilium_images.build_tags(recipe, by_name["cilium-operator-generic"])
        == "osusergo,ipam_provider_operator"
    )
    assert cilium_images.build_tags(recipe, by_name["cilium-agent"]) == "osusergo"


def test_ldflags_stamp_the_version_as_makefile_defs_does() -> None:
    recipe = _recipe()
    assert cilium_images.version_string(recipe) == "1.20.2 v1.20.2 2026-09-15T20:03:11Z"
    argv = cilium_images.build_argv("go", recipe, recipe.binaries[0], Path("/out/cilium-agent"))
    assert argv[:3] == ["go", "build", "-trimpath"]
    assert argv[-3:] == ["-o", "/out/cilium-agent", "github.com/cilium/cilium/daemon"]
    ldflags = next(a for a in argv if a.startswith("-ldflags="))
    assert ldflags == (
        "-ldflags=-s -w "
        "-X 'github.com/cilium/cilium/pkg/version.ciliumVersion=1.20.2 v1.20.2 2026-09-15T20:03:11Z' "
        "-X github.com/cilium/cilium/pkg/envoy.requiredEnvoyVersionSHA=cbec91f666af0bf742da986d43832932dbb26b82"
    )


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    out = copy.deepcopy(data)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "names"),
    [
        (("cilium",), _DELETE, "[cilium]"),
        (("cilium", "colour"), "red", "colour"),
        (("cilium", "revision"), _DELETE, "revision"),
        (("cilium", "version"), "v1.20.2", "version"),
        (("cilium", "version"), "1.20", "version"),
        (("cilium", "version"), 1.2, "version"),
        (("cilium", "date"), "2026-09-15", "date"),
        (("cilium", "envoy_sha"), "cbec91f", "envoy_sha"),
        (("cilium", "module_dir"), "../elsewhere", "module_dir"),
        (("cilium", "revision"), "v1.20.2; rm -rf /", "revision"),
        (("cilium", "tags"), ["osusergo", "a b"], "tags"),
        (("cilium", "tags"), "osusergo", "tags"),
        (("binary",), [], "[[binary]]"),
        (("binary", 0, "flavour"), "x", "flavour"),
        (("binary", 0, "package"), _DELETE, "package"),
        (("binary", 0, "package"), "github.com/evil/cilium/daemon", "package"),
        (("binary", 0, "package"), "github.com/cilium/cilium/../x", "package"),
        (("binary", 0, "name"), "cilium-dbg", "twice"),
        (("binary", 0, "name"), "bin/../../x", "name"),
        (("binary", 0, "tags"), ["ipam,x"], "tags"),
        (("binary", 0, "version_argv"), ["--version", "$(id)"], "version_argv"),
        (("agent",), _DELETE, "[agent]"),
        (("agent", "flavour"), "x", "flavour"),
        (("agent", "workdir"), _DELETE, "workdir"),
        (("agent", "repository"), "quay.io:443/cilium/cilium", "repository"),
        (("agent", "repository"), "cdl/Cilium", "repository"),
        (("agent", "repository"), "cdl/cilium:1.20.2", "repository"),
        (("agent", "mirror"), "http://deb.debian.org/debian;id", "mirror"),
        (("agent", "suite"), "bookworm trixie", "suite"),
        (("agent", "packages"), [], "packages"),
        (("agent", "packages"), ["clang-19", "bash,evil"], "packages"),
        (("agent", "backports"), [], "backports"),
        (("agent", "backports"), ["bpftool,evil"], "backports"),
        (("agent", "backports"), "bpftool", "backports"),
        (("agent", "backports"), ["bash"], "both packages and backports"),
        (("agent", "env"), ["INITSYSTEM=SYSTEMD $(id)"], "env"),
        (("agent", "env"), ["lower=x"], "env"),
        (("agent", "workdir"), "home/cilium", "workdir"),
        (("operator",), _DELETE, "[operator]"),
        (("operator", "binary"), "cilium-operator-aws", "[operator] binary"),
        (("operator", "repository"), "cdl/operator generic", "repository"),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_key(
    path: tuple[str | int, ...], value: object, names: str
) -> None:
    with pytest.raises(CiliumBuildError, match=re.escape(names)):
        parse_recipe(_set(_raw(), path, value))


def _recipe_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "cilium"
    shutil.copytree(cilium_images.RECIPE_DIR, dest)
    return dest


def test_the_wrapper_must_require_the_recipes_release(tmp_path: Path) -> None:
    recipe_dir = _recipe_copy(tmp_path)
    go_mod = recipe_dir / "wrapper" / "go.mod"
    assert cilium_images.wrapper_requires(go_mod) == "v1.20.2"
    go_mod.write_text(
        go_mod.read_text().replace("github.com/cilium/cilium v1.20.2", "github.com/cilium/cilium v1.20.1")
    )
    with pytest.raises(
        CiliumBuildError, match=r"recipe version 1\.20\.2 but wrapper/go\.mod requires .* v1\.20\.1"
    ):
        cilium_images.load_recipe(recipe_dir)


def test_the_key_follows_every_recipe_file_and_the_go_version(tmp_path: Path) -> None:
    recipe_dir = _recipe_copy(tmp_path)
    key = cilium_images.cilium_key(recipe_dir, "go version go1.26.8 linux/amd64")
    assert key == cilium_images.cilium_key(recipe_dir, "go version go1.26.8 linux/amd64")
    assert key != cilium_images.cilium_key(recipe_dir, "go version go1.26.9 linux/amd64")
    for changed in ("recipe.toml", "wrapper/go.sum", "mcs-api-controllers/annotations.go"):
        before = cilium_images.cilium_key(recipe_dir, "go")
        (recipe_dir / changed).write_text((recipe_dir / changed).read_text() + "\n")
        assert cilium_images.cilium_key(recipe_dir, "go") != before, changed


def test_the_key_follows_the_operator_images_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """supply/node_image.py writes the operator image; a change there must not reuse a stamped key."""
    before = cilium_images.cilium_key(cilium_images.RECIPE_DIR, "go")
    writer = tmp_path / "images.py"
    writer.write_text(Path(images.__file__).read_text() + "\n")
    monkeypatch.setattr(images, "__file__", str(writer))
    assert cilium_images.cilium_key(cilium_images.RECIPE_DIR, "go") != before


def test_the_agent_image_gets_the_config_ciliums_dockerfile_gives_it() -> None:
    recipe = _recipe()
    assert recipe.agent.repository == "cdl/cilium"
    assert cilium_images.agent_tag(recipe, "0123456789abcdef") == "cdl/cilium:1.20.2-0123456789abcdef"
    assert (
        cilium_images.operator_tag(recipe, "0123456789abcdef")
        == "cdl/operator-generic:1.20.2-0123456789abcdef"
    )
    changes = cilium_images.agent_import_changes(recipe)
    assert {"ENV INITSYSTEM=SYSTEMD", "WORKDIR /home/cilium", 'CMD ["/usr/bin/cilium-dbg"]'} <= set(changes)
    assert any(c.startswith("ENV PATH=") and ":/usr/bin:" in c for c in changes)
    argv = cilium_images.agent_import_argv(recipe, Path("/k/agent-rootfs.tar"), "cdl/cilium:t")
    assert argv[:2] == ["docker", "import"] and argv[-2:] == ["/k/agent-rootfs.tar", "cdl/cilium:t"]
    assert argv.count("--change") == len(changes)
    # clang-19 is the LLVM Cilium's image tools pin; the agent compiles its BPF with it at run time.
    assert {"clang-19", "iproute2", "iptables", "ipset", "kmod"} <= set(recipe.agent.packages)
    # bookworm's bpftool 7.1 lists none of Cilium's tcx links; the backport's 7.5 does.
    assert recipe.agent.backports == ("bpftool",) and "bpftool" not in recipe.agent.packages
    assert recipe.operator.binary == "cilium-operator-generic"


def test_the_agent_rootfs_gets_the_recipes_suite_mirror_and_packages(tmp_path: Path) -> None:
    recipe = _recipe()
    argv = cilium_images.agent_rootfs_argv(
        recipe, cilium_images.RECIPE_DIR, tmp_path / "rootfs", tmp_path / "module", tmp_path / "bin"
    )
    assert argv[:2] == ["bash", str(cilium_images.RECIPE_DIR / "agent" / "rootfs.sh")]
    assert argv[2:5] == [str(tmp_path / "rootfs"), "bookworm", "http://deb.debian.org/debian"]
    assert argv[5].split(",") == list(recipe.agent.packages)
    assert argv[6:] == [str(tmp_path / "module"), str(tmp_path / "bin"), "bpftool"]


def test_backports_are_optional_and_then_an_empty_argument() -> None:
    raw = _set(_raw(), ("agent", "backports"), _DELETE)
    recipe = parse_recipe(raw)
    assert recipe.agent.backports == ()
    argv = cilium_images.agent_rootfs_argv(recipe, Path("/r"), Path("/t"), Path("/m"), Path("/b"))
    assert argv[-1] == "" and len(argv) == 9


_FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$FAKE_DOCKER_LOG"
if [ "$1 $2" = "image inspect" ]; then
  grep -qxF -- "$5" "$FAKE_DOCKER_HAS" && { echo sha256:0123; exit 0; }
  exit 1
fi
"""


@pytest.mark.parametrize(
    ("has", "wanted"),
    [
        (["agent", "operator"], []),
        (["agent"], ["load --input {done}/operator.tar"]),
        (["operator"], ["import --change"]),
        ([], ["import --change", "load --input {done}/operator.tar"]),
    ],
)
def test_a_built_key_imports_only_the_images_the_engine_lacks(
    tmp_path: Path, has: list[str], wanted: list[str]
) -> None:
    recipe, key, done = _recipe(), "0123456789abcdef", tmp_path / "key"
    done.mkdir()
    tags = {
        "agent": cilium_images.agent_tag(recipe, key),
        "operator": cilium_images.operator_tag(recipe, key),
    }
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(_FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "has").write_text("".join(f"{tags[h]}\n" for h in has))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_DOCKER_LOG": str(tmp_path / "log"),
        "FAKE_DOCKER_HAS": str(tmp_path / "has"),
    }
    cilium_images.ensure_imported(recipe, key, done, env)
    calls = [c for c in (tmp_path / "log").read_text().splitlines() if not c.startswith("image inspect")]
    assert len(calls) == len(wanted), calls
    for call, start in zip(calls, wanted, strict=True):
        assert call.startswith(start.format(done=done)), call
    if "import --change" in wanted:
        [imported] = [c for c in calls if c.startswith("import")]
        assert imported.endswith(f"{done}/agent-rootfs.tar {tags['agent']}")


@pytest.mark.parametrize("problem", ["target-not-empty", "not-the-module"])
def test_the_agent_rootfs_script_refuses_a_wrong_target_or_module(tmp_path: Path, problem: str) -> None:
    """Checked before debootstrap runs: a wrong directory must not be filled or read."""
    target, module = tmp_path / "rootfs", tmp_path / "module"
    target.mkdir()
    (module / "bpf").mkdir(parents=True)
    (module / "images" / "cilium").mkdir(parents=True)
    if problem == "target-not-empty":
        (target / "keep").write_text("x")
        (module / "images" / "cilium" / "init-container.sh").write_text("")
        wanted = "is not an empty directory"
    else:
        wanted = "is not the Cilium module"
    script = cilium_images.RECIPE_DIR / "agent" / "rootfs.sh"
    argv = ["bash", str(script), str(target), "bookworm", "http://x", "bash", str(module), str(tmp_path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 1 and wanted in out.stderr, out.stderr
    assert [p.name for p in target.iterdir()] == (["keep"] if problem == "target-not-empty" else [])


_FAKE_DEBOOTSTRAP = """#!/bin/sh
echo "debootstrap $*" >> "$FAKE_LOG"
mkdir -p "$4/etc/apt/sources.list.d" "$4/usr/bin" "$4/var/lib/apt/lists" "$4/var/cache/apt/archives" "$4/usr/share/doc/bash"
touch "$4/var/cache/apt/pkgcache.bin" "$4/var/cache/apt/srcpkgcache.bin" "$4/var/lib/apt/lists/x_Packages"
"""
# Records each chroot call and, for apt-get update, the sources it would read.
_FAKE_CHROOT = """#!/bin/sh
root=$1; shift
echo "chroot $*" >> "$FAKE_LOG"
if [ "$2" = update ]; then cat "$root"/etc/apt/sources.list.d/* >> "$FAKE_LOG"; fi
"""


@pytest.mark.parametrize("backports", ["bpftool", "bpftool,iproute2", ""])
def test_the_agent_rootfs_takes_backports_from_the_suites_backports(tmp_path: Path, backports: str) -> None:
    """The script with fake debootstrap and chroot: backports come from `<suite>-backports` with the
    rootfs's own apt, the extra source is gone afterwards, and without backports apt is not run."""
    fakes, target, module, bin_dir = (tmp_path / d for d in ("fakes", "rootfs", "module", "bin"))
    for d in (
        fakes,
        target,
        module / "bpf",
        module / "images" / "cilium",
        module / "plugins" / "cilium-cni",
        bin_dir,
    ):
        d.mkdir(parents=True)
    for f in (
        "images/cilium/init-container.sh",
        "plugins/cilium-cni/install-plugin.sh",
        "plugins/cilium-cni/cni-uninstall.sh",
    ):
        (module / f).write_text("#!/bin/sh\n")
    (bin_dir / "cilium-agent").write_text("agent")
    for name, text in (("debootstrap", _FAKE_DEBOOTSTRAP), ("chroot", _FAKE_CHROOT)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    log = tmp_path / "log"
    script = cilium_images.RECIPE_DIR / "agent" / "rootfs.sh"
    argv = [
        "bash",
        str(script),
        str(target),
        "bookworm",
        "http://m/debian",
        "bash",
        str(module),
        str(bin_dir),
        backports,
    ]
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "FAKE_LOG": str(log)}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env)
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == f"debootstrap --variant=minbase --include=bash bookworm {target} http://m/debian"
    if backports:
        assert calls[1:] == [
            "chroot apt-get update -qq",
            "deb http://m/debian bookworm-backports main",
            "chroot apt-get install -y -qq --no-install-recommends -t bookworm-backports "
            + " ".join(backports.split(",")),
        ]
    else:
        assert calls[1:] == []
    assert list((target / "etc" / "apt" / "sources.list.d").iterdir()) == []
    assert (target / "usr" / "bin" / "cilium-agent").read_text() == "agent"
    # apt's caches and lists, and the documentation, stay out of the image.
    assert [p.name for p in (target / "var" / "cache" / "apt").iterdir()] == ["archives"]
    assert list((target / "var" / "lib" / "apt" / "lists").iterdir()) == []
    assert not (target / "usr" / "share" / "doc").exists()


def _fake_binary(tmp_path: Path, prints: str) -> Path:
    path = tmp_path / "fake"
    path.write_text(f"#!/bin/sh\necho '{prints}' >&2\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_version_check_wants_the_stamped_version_on_either_stream(tmp_path: Path) -> None:
    recipe = _recipe()
    agent = recipe.binaries[0]
    good = _fake_binary(
        tmp_path, "cilium-agent 1.20.2 v1.20.2 2026-09-15T20:03:11Z go version go1.26.8 linux/amd64"
    )
    cilium_images.check_version(recipe, agent, good, os.environ)
    bad = _fake_binary(
        tmp_path, "cilium-agent 1.20.1 v1.20.1 2026-09-15T20:03:11Z go version go1.26.8 linux/amd64"
    )
    with pytest.raises(
        CiliumBuildError, match=re.escape("cilium-agent --version does not report '1.20.2 v1.20.2")
    ):
        cilium_images.check_version(recipe, agent, bad, os.environ)


def _cilium_module() -> Path | None:
    """The pinned Cilium module in Go's module cache, if some build already downloaded it."""
    try:
        cache = subprocess.run(
            [go_command(), "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (ToolchainError, subprocess.CalledProcessError):
        return None
    found = Path(cache) / f"github.com/cilium/cilium@v{chart.CILIUM_VERSION}"
    return found if found.is_dir() else None


_MCS_IMPORT = re.compile(r'^\s*(\w+)\s+"sigs\.k8s\.io/mcs-api/controllers"', re.MULTILINE)


def test_the_mcs_api_stand_in_defines_exactly_what_cilium_uses_with_ciliums_value() -> None:
    module = _cilium_module()
    if module is None:
        pytest.skip("the Cilium module is not in Go's module cache: run `make cilium-images` or `make chart`")
    used: set[str] = set()
    for source in module.rglob("*.go"):
        if source.name.endswith("_test.go"):
            continue
        text = source.read_text(errors="replace")
        for alias in _MCS_IMPORT.findall(text):
            used |= set(re.findall(rf"\b{alias}\.(\w+)", text))
    stand_in = (cilium_images.RECIPE_DIR / "mcs-api-controllers" / "annotations.go").read_text()
    defined = dict(re.findall(r'^const (\w+) = "([^"]+)"$', stand_in, re.MULTILINE))
    assert used == set(defined) == {"DerivedServiceAnnotation"}
    docs = (module / "Documentation" / "network" / "clustermesh" / "mcsapi.rst").read_text()
    assert f"the annotation ``{defined['DerivedServiceAnnotation']}`` on ServiceImport" in docs


def _built_bin() -> Path | None:
    try:
        found = cilium_images.current_dir(os.environ)
    except ToolchainError:
        return None
    return found / "bin" if found is not None else None


# What each prints: `cilium-agent 1.20.2 ...`, `Cilium-Operator 1.20.2 ...`, `Client: 1.20.2 ...` (and
# `Daemon: Not responding`), and the CNI plugin its about line when run without CNI_COMMAND.
@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("cilium-agent", ["--version"]),
        ("cilium-operator-generic", ["--version"]),
        ("cilium-dbg", ["version"]),
        ("cilium-cni", []),
    ],
)
def test_the_built_binaries_report_the_pinned_release(name: str, argv: list[str]) -> None:
    bin_dir = _built_bin()
    if bin_dir is None:
        pytest.skip("Cilium's binaries are not built: run `make cilium-images`")
    for binary in _recipe().binaries:
        assert os.access(bin_dir / binary.name, os.X_OK), binary.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    out = subprocess.run(
        [str(bin_dir / name), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert " 1.20.2 v1.20.2 2026-09-15T20:03:11Z go version go1." in out.stdout + out.stderr


def test_dir_says_how_to_build_when_nothing_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        go_version(go_command())
    except ToolchainError:
        pytest.skip("no Go toolchain: the key hashes `go version`")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cilium_images.main(["dir"]) == 1
    assert "run `make cilium-images`" in capsys.readouterr().err
    assert cilium_images.main(["key"]) == 0
    assert re.fullmatch(r"[0-9a-f]{16}\n", capsys.readouterr().out)


# --- The built images in the Docker engine (skipped unless built and an engine answers).


def _built_tags() -> tuple[str, str]:
    try:
        tags = cilium_images.current_tags(os.environ)
    except ToolchainError:
        tags = None
    if tags is None:
        pytest.skip("Cilium's images are not built: run `make cilium-images`")
    if shutil.which("docker") is None or images.engine_image_id(tags[0], os.environ) is None:
        pytest.skip("no Docker engine with the built images (make dockerd; make cilium-images imports them)")
    return tags


def _in_image(tag: str, entrypoint: str, *argv: str) -> str:
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", entrypoint, tag, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return out.stdout + out.stderr


def test_the_agent_image_runs_the_pinned_agent_and_clang_19() -> None:
    agent, _ = _built_tags()
    assert "cilium-agent 1.20.2 v1.20.2 2026-09-15T20:03:11Z" in _in_image(agent, "cilium-agent", "--version")
    assert re.search(r"clang version 19\.1\.7\b", _in_image(agent, "clang", "--version"))
    listing = _in_image(
        agent,
        "ls",
        "/opt/cni/bin/cilium-cni",
        "/init-container.sh",
        "/install-plugin.sh",
        "/cni-uninstall.sh",
        "/var/lib/cilium/bpf/bpf_lxc.c",
        "/usr/bin/cilium-dbg",
        "/usr/bin/cilium-mount",
        "/usr/sbin/bpftool",
        "/usr/sbin/ipset",
    )
    assert "No such file" not in listing, listing
    assert "No such file" in _in_image(agent, "ls", "/var/lib/cilium/bpf/tests")


def test_the_operator_image_holds_the_generic_operator_alone() -> None:
    _, operator = _built_tags()
    said = _in_image(operator, "cilium-operator-generic", "--version")
    assert "Cilium-Operator 1.20.2 v1.20.2 2026-09-15T20:03:11Z" in said, said
    assert "executable file not found" in _in_image(operator, "sh", "-c", "true")


# --- The offline Helm values bench/cilium_smoke.py installs the chart with.


def _smoke() -> Any:
    """bench/cilium_smoke.py as a module (bench/ is not a package); registered, as its dataclass needs."""
    if "cilium_smoke" in sys.modules:
        return sys.modules["cilium_smoke"]
    spec = importlib.util.spec_from_file_location("cilium_smoke", REPO / "bench" / "cilium_smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cilium_smoke"] = module
    spec.loader.exec_module(module)
    return module


def test_the_offline_values_name_the_built_images_and_switch_off_what_is_not_built() -> None:
    values = _smoke().offline_values("cdl/cilium:1.20.2-k", "cdl/operator-generic:1.20.2-k")
    assert values["image"] == {
        "repository": "cdl/cilium",
        "tag": "1.20.2-k",
        "useDigest": False,
        "pullPolicy": "Never",
    }
    # The chart appends `-generic` to operator.image.repository itself.
    assert values["operator"]["image"] == {
        "repository": "cdl/operator",
        "tag": "1.20.2-k",
        "useDigest": False,
        "pullPolicy": "Never",
    }
    assert values["envoy"]["enabled"] is False and values["l7Proxy"] is False
    assert values["hubble"]["relay"]["enabled"] is False and values["hubble"]["ui"]["enabled"] is False
    with pytest.raises(ValueError, match="-generic"):
        _smoke().offline_values("cdl/cilium:1.20.2-k", "cdl/operator:1.20.2-k")


def _leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in values.items():
        out += _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def test_every_offline_value_is_a_key_of_the_real_chart_and_passes_its_schema() -> None:
    """Helm ignores an unknown key: a misspelt `pullPolicy` would pull from a registry here."""
    tarball = os.environ.get("CILIUM_CHART") or chart.current_path(os.environ)
    if not tarball:
        pytest.skip("run `make chart` (or set CILIUM_CHART) to check the values against the real chart")
    with tarfile.open(tarball) as tar:
        defaults = yaml.safe_load(tar.extractfile("cilium/values.yaml").read())  # type: ignore[union-attr]
        schema = json.loads(tar.extractfile("cilium/values.schema.json").read())  # type: ignore[union-attr]
    values = _smoke().offline_values("cdl/cilium:1.20.2-k", "cdl/operator-generic:1.20.2-k")
    missing = []
    for leaf in _leaves(values):
        node: Any = defaults
        for part in leaf.split("."):
            node = node.get(part, _DELETE) if isinstance(node, dict) else _DELETE
        if node is _DELETE:
            missing.append(leaf)
    assert missing == []
    config = parse_config({"mode": "overlay"}, "overlay")
    merged = cilium._deep_merge(cilium.helm_values(config, plan(config)), values)
    jsonschema.validate(merged, schema)


@pytest.mark.parametrize("mode", ["overlay", "geneve", "native-auto", "static", "bgp"])
def test_the_lab_values_under_the_offline_switch_pass_the_real_chart_schema(mode: str) -> None:
    """What a stack gives Helm on a machine with no registry (lab/offline.py), key for key."""
    tarball = os.environ.get("CILIUM_CHART") or chart.current_path(os.environ)
    if not tarball:
        pytest.skip("run `make chart` (or set CILIUM_CHART) to check the values against the real chart")
    with tarfile.open(tarball) as tar:
        defaults = yaml.safe_load(tar.extractfile("cilium/values.yaml").read())  # type: ignore[union-attr]
        schema = json.loads(tar.extractfile("cilium/values.schema.json").read())  # type: ignore[union-attr]
    supply = lab_offline.parse(
        {
            "nodeImage": "cdl/kind-node:v1.36.1-k",
            "ciliumVersion": "1.20.2",
            "ciliumChart": str(tarball),
            "ciliumAgent": "cdl/cilium:1.20.2-k",
            "ciliumOperator": "cdl/operator-generic:1.20.2-k",
            "tools": "cdl/tools:bookworm-k",
            "frr": "cdl/frr:bookworm-k",
        },
        "test",
    )
    config = with_offline_supply(parse_config({"mode": mode}, mode), supply)
    values = cilium.helm_values(config, plan(config))
    unknown = []
    for leaf in [
        *_leaves(yaml.safe_load(cilium.OFFLINE_VALUES.read_text())),
        "image.tag",
        "operator.image.tag",
    ]:
        node: Any = defaults
        for part in leaf.split("."):
            node = node.get(part, _DELETE) if isinstance(node, dict) else _DELETE
        if node is _DELETE:
            unknown.append(leaf)
    assert unknown == []
    jsonschema.validate(values, schema)
    assert values["image"]["pullPolicy"] == "Never" and values["operator"]["image"]["useDigest"] is False
