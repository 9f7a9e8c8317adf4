"""supply/cilium_images.py cases a mutation run (`make mutation`) found no test for.

As for the node image (tests/test_mutants_supply_node_image.py), the build runs against a stand-in
for each step: `go build` writes a script that prints the version the flags would stamp, and the
rootfs, tar and docker steps are recorded. What is checked is the build's own part.
"""

from __future__ import annotations

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

from supply import cilium_images
from supply import node_image as images
from supply.buildcache import STAMP
from supply.cilium_images import CiliumBuildError, CiliumRecipe


def _buffered() -> dict[str, str]:
    """This process's environment (read when called: a mutant under test is named in it), with
    stdout buffered as on a pipe by default: a PYTHONUNBUFFERED in the shell would hide a missing flush."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


GO = "/opt/go/bin/go"
GO_VERSION = "go version go1.26.8 linux/amd64"
MODULE_DIR = "/mod/github.com/cilium/cilium@v1.20.2"
PLAIN = "is not a plain module path, version or name"
_DELETE_KEY = object()


class Steps:
    """Stands in for supply.toolchain._run: records (argv, cwd, env); `go build -o X` makes X a
    script printing `prints` (the stamped version, unless a test says otherwise)."""

    def __init__(self, prints: str) -> None:
        self.calls: list[tuple[list[str], Path, dict[str, str]]] = []
        self.prints = prints

    def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
        argv = list(argv)
        self.calls.append((argv, cwd, dict(env)))
        if argv[:3] == [GO, "env", "GOARCH"]:
            return "arm64\n"
        if argv[:2] == [GO, "build"]:
            out = Path(argv[argv.index("-o") + 1])
            out.write_text(f"#!/bin/sh\necho '{out.name} {self.prints}'\n")
            out.chmod(0o755)
            return ""
        if argv[:3] == [GO, "list", "-m"]:
            return MODULE_DIR + "\n"
        if argv[0] == "bash":
            (Path(argv[2]) / "usr").mkdir()
            return ""
        if argv[0] == "tar":
            Path(argv[argv.index("-cf") + 1]).write_bytes(b"agent rootfs")
            return ""
        if argv[0] == "docker":
            return ""
        raise AssertionError(f"unexpected step {argv}")

    def argvs(self) -> list[list[str]]:
        return [argv for argv, _, _ in self.calls]


def _recipe() -> CiliumRecipe:
    return cilium_images.load_recipe()


def go_version(go: str) -> str:
    """`go version` of the one Go the build was given."""
    assert go == GO, go
    return GO_VERSION


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    made = Steps(cilium_images.version_string(_recipe()))
    monkeypatch.setattr(cilium_images, "_run", made)
    monkeypatch.setattr(cilium_images, "go_version", go_version)
    monkeypatch.setattr(cilium_images, "go_command", lambda: GO)
    return made


def test_a_key_is_built_binary_by_binary_then_its_two_images(
    tmp_path: Path, steps: Steps, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, root, env = _recipe(), tmp_path / "cilium", {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    root.mkdir()
    final = cilium_images._build_key(GO, recipe, cilium_images.RECIPE_DIR, "k1", root, env)
    capsys_out = capsys.readouterr().out
    assert final == root / "k1"
    module = cilium_images.RECIPE_DIR / recipe.module_dir
    builds = [(argv, cwd, e) for argv, cwd, e in steps.calls if argv[:2] == [GO, "build"]]
    assert [Path(argv[argv.index("-o") + 1]).name for argv, _, _ in builds] == [
        b.name for b in recipe.binaries
    ]
    for (argv, cwd, build_env), binary in zip(builds, recipe.binaries, strict=True):
        binary_out = Path(argv[argv.index("-o") + 1])
        assert argv == cilium_images.build_argv(GO, recipe, binary, binary_out)
        assert (cwd, build_env) == (module, {**env, "CGO_ENABLED": "0"})
    others = [(argv, cwd, e) for argv, cwd, e in steps.calls if argv[:2] != [GO, "build"]]
    assert [(argv, e.get("CGO_ENABLED")) for argv, _, e in others[:2]] == [
        ([GO, "env", "GOARCH"], "0"),
        ([GO, "list", "-m", "-f", "{{.Dir}}", "github.com/cilium/cilium"], "0"),
    ]
    assert others[1][1] == module
    build_dir = final.parent / capsys_out.split(f" k1 in {final.parent}/", 1)[1].split(" ", 1)[0]
    assert [cwd for _, cwd, _ in [others[0], others[2], others[3]]] == [build_dir] * 3
    rootfs_argv, _, rootfs_env = others[2]
    rootfs = Path(rootfs_argv[2])
    assert rootfs_argv == cilium_images.agent_rootfs_argv(
        recipe, cilium_images.RECIPE_DIR, rootfs, Path(MODULE_DIR), rootfs.parent.parent / "bin"
    )
    assert rootfs_env == env
    tar_argv = others[3][0]
    assert tar_argv[:5] == ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs)] and tar_argv[-1] == "."
    assert len(others) == 4
    # The key's folder: every binary, the agent rootfs tar, the operator image; no work folder.
    assert sorted(p.name for p in (final / "bin").iterdir()) == sorted(b.name for b in recipe.binaries)
    assert (final / "agent-rootfs.tar").read_bytes() == b"agent rootfs" and not (final / "work").exists()
    operator = cilium_images.operator_tag(recipe, "k1")
    with tarfile.open(final / "operator.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == [operator]
    assert config["config"]["Entrypoint"] == ["/usr/bin/cilium-operator-generic"]
    assert config["architecture"] == "arm64"
    with tarfile.open(final / "operator.tar") as tar:
        layer_tar = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer_tar)) as layer:
        operator_binary = layer.extractfile("usr/bin/cilium-operator-generic").read()  # type: ignore[union-attr]
    assert operator_binary == (final / "bin" / "cilium-operator-generic").read_bytes()
    stamp = json.loads((final / STAMP).read_text())
    assert set(stamp["built"]) == {*(b.name for b in recipe.binaries), "operator-image", "agent-rootfs"}
    assert stamp.pop("seconds") in range(0, 60)
    del stamp["built"]
    assert stamp == {
        "key": "k1",
        "go": GO_VERSION,
        "module": "github.com/cilium/cilium@v1.20.2",
        "version": cilium_images.version_string(recipe),
        "agent_image": cilium_images.agent_tag(recipe, "k1"),
        "operator_image": operator,
    }
    out = capsys_out
    assert out.startswith(
        f"[cilium-images] building Cilium 1.20.2 binaries and images k1 in {root}/.build-k1-"
    )
    assert out.splitlines()[0].endswith(f" ({GO_VERSION})")
    assert (
        "[cilium-images] building cilium-agent (github.com/cilium/cilium/daemon, tags osusergo) ...\n" in out
    )
    assert re.search(r"\[cilium-images\] built cilium-agent in \d+s\n", out)
    packages = len(recipe.agent.packages)
    assert (
        f"[cilium-images] debootstrap bookworm with {packages} packages for the agent image, "
        "then bpftool from bookworm-backports ...\n"
    ) in out
    assert re.search(r"\[cilium-images\] agent rootfs in \d+s\n", out)
    assert out.endswith(
        f"[cilium-images] Cilium 1.20.2 binaries and images k1 built in {json.loads((final / STAMP).read_text())['seconds']}s: {final}\n"
    )


def test_a_binary_that_reports_another_version_stops_the_build(
    tmp_path: Path, steps: Steps, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps.prints = "1.20.1 v1.20.1 2026-09-15T20:03:11Z"
    (tmp_path / "cilium").mkdir()
    with pytest.raises(
        CiliumBuildError, match=r"^cilium-agent --version does not report '1\.20\.2 v1\.20\.2"
    ):
        cilium_images._build_key(GO, _recipe(), cilium_images.RECIPE_DIR, "k1", tmp_path / "cilium", {})
    assert not (tmp_path / "cilium" / "k1").exists()
    assert len([a for a in steps.argvs() if a[:2] == [GO, "build"]]) == 1  # the first binary stops it


def test_a_binary_without_version_argv_is_not_run(tmp_path: Path) -> None:
    recipe = _recipe()
    [health] = [b for b in recipe.binaries if b.name == "cilium-health"]
    assert health.version_argv == ()
    cilium_images.check_version(recipe, health, tmp_path / "not-even-there", os.environ)


def test_the_version_check_gives_up_on_a_binary_that_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hangs = tmp_path / "hangs"
    hangs.write_text("#!/bin/sh\nexec sleep 30\n")
    hangs.chmod(0o755)
    monkeypatch.setattr(cilium_images, "_CHECK_TIMEOUT", 0.3)
    with pytest.raises(subprocess.TimeoutExpired):
        cilium_images.reported_version(hangs, ["--version"], dict(os.environ))


def test_the_version_check_runs_the_binary_with_the_environment_given(tmp_path: Path) -> None:
    says = tmp_path / "says"
    says.write_text('#!/bin/sh\necho "out $1 $CDL_X"; echo err >&2; exit 3\n')
    says.chmod(0o755)
    assert cilium_images.reported_version(says, ["--version"], {"CDL_X": "x"}) == "out --version x\nerr\n"


def test_build_builds_an_unbuilt_key_and_imports_both_images_once(
    tmp_path: Path, steps: Steps, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    in_engine: set[str] = set()
    monkeypatch.setattr(images, "engine_image_id", lambda tag, env: "0123" if tag in in_engine else None)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": os.environ["PATH"]}
    recipe, key = _recipe(), cilium_images.cilium_key(cilium_images.RECIPE_DIR, GO_VERSION)
    done = cilium_images.build(env=env)
    assert done == tmp_path / "cache" / "cilium-datapath-lab" / "cilium" / key
    agent, operator = cilium_images.agent_tag(recipe, key), cilium_images.operator_tag(recipe, key)
    docker = [(argv, cwd) for argv, cwd, _ in steps.calls if argv[0] == "docker"]
    assert docker == [
        (cilium_images.agent_import_argv(recipe, done / "agent-rootfs.tar", agent), done),
        (["docker", "load", "--input", str(done / "operator.tar")], done),
    ]
    assert capsys.readouterr().out.endswith(
        f"[cilium-images] imported {agent} into the engine\n[cilium-images] loaded {operator} into the engine\n"
        f"[cilium-images] images: {agent} and {operator}\n"
    )
    in_engine.update({agent, operator})
    calls = len(steps.calls)
    assert cilium_images.build(env=env) == done
    assert len(steps.calls) == calls  # built, and both images there: nothing runs
    assert capsys.readouterr().out == (
        f"[cilium-images] Cilium 1.20.2 binaries and images {key} are already built: {done}\n"
        f"[cilium-images] images: {agent} and {operator}\n"
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cilium_images.build() == done  # the process's environment when none is given
    assert cilium_images.current_dir(os.environ) == done
    assert cilium_images.current_tags(os.environ) == (agent, operator)


def test_nothing_is_current_until_built(tmp_path: Path, steps: Steps) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert cilium_images.current_dir(env) is None and cilium_images.current_tags(env) is None
    assert cilium_images.cilium_root(env) == tmp_path / "cilium-datapath-lab" / "cilium"


def test_the_cli_prints_key_dir_and_tags_or_how_to_build(
    tmp_path: Path, steps: Steps, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = cilium_images.cilium_key(cilium_images.RECIPE_DIR, GO_VERSION)
    assert cilium_images.main(["key"]) == 0
    assert capsys.readouterr() == (f"{key}\n", "")
    for command in ("dir", "tags"):
        assert cilium_images.main([command]) == 1
        _, err = capsys.readouterr()
        assert err.endswith("not built: run `make cilium-images`\n") and err.startswith("Cilium's ")
    done = tmp_path / "cilium-datapath-lab" / "cilium" / key
    done.mkdir(parents=True)
    (done / STAMP).write_text("{}")
    assert cilium_images.main(["dir"]) == 0
    assert capsys.readouterr() == (f"{done}\n", "")
    assert cilium_images.main(["tags"]) == 0
    assert capsys.readouterr() == (f"cdl/cilium:1.20.2-{key}\ncdl/operator-generic:1.20.2-{key}\n", "")
    built: list[bool] = []
    monkeypatch.setattr(cilium_images, "build", lambda: built.append(True))
    assert cilium_images.main(["build"]) == 0 and built == [True]


def test_the_cli_checks_the_recipe_before_printing_a_key(
    tmp_path: Path, steps: Steps, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse() -> CiliumRecipe:
        raise CiliumBuildError("recipe version 1.20.2 but wrapper/go.mod requires x")

    monkeypatch.setattr(cilium_images, "load_recipe", refuse)
    assert cilium_images.main(["key"]) == 1
    assert capsys.readouterr() == (
        "",
        "[cilium-images] error: recipe version 1.20.2 but wrapper/go.mod requires x\n",
    )


@pytest.mark.parametrize(
    "error",
    [
        CiliumBuildError("no"),
        subprocess.TimeoutExpired(["cilium-dbg"], 60),
        OSError(28, "No space left on device"),
    ],
)
def test_the_cli_reports_a_failed_build_in_one_line(
    error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failed_build(cilium_images, error, monkeypatch, capsys) == (
        "",
        f"[cilium-images] error: {error}\n",
    )


def test_the_cli_wants_a_command_and_says_what_each_does(capsys: pytest.CaptureFixture[str]) -> None:
    said = help_text(cilium_images.main, capsys)
    assert said.startswith("usage: python -m supply.cilium_images [-h] {build,key,dir,tags} ...")
    assert (
        "Build Cilium's own binaries for the pinned release offline (the Go module proxy), cached by a key."
        in said
    )
    assert "build build Cilium's binaries and images unless this key is built" in said
    assert "key print the cache key of the current recipe" in said
    assert "dir print the built key's directory (exit 1 if it is not built)" in said
    assert "tags print the built agent and operator image tags (exit 1 if not built)" in said


def test_progress_lines_are_flushed_before_what_a_step_prints_next() -> None:
    code = "import os; from supply.cilium_images import _say; _say('building'); os.write(1, b'go: downloading\\n')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**_buffered(), "PYTHONPATH": str(Path(cilium_images.__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == "[cilium-images] building\ngo: downloading\n"


def test_each_step_is_timed_to_a_tenth_of_a_second(
    tmp_path: Path, steps: Steps, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter(range(10_000))
    monkeypatch.setattr("supply.cilium_images.time.monotonic", lambda: next(ticks) * 0.26)
    (tmp_path / "cilium").mkdir()
    final = cilium_images._build_key(
        GO, _recipe(), cilium_images.RECIPE_DIR, "k1", tmp_path / "cilium", {"PATH": os.environ["PATH"]}
    )
    built = json.loads((final / STAMP).read_text())["built"]
    assert set(built) == {*(b.name for b in _recipe().binaries), "operator-image", "agent-rootfs"}
    for name, seconds in built.items():
        assert isinstance(seconds, float) and seconds == round(seconds, 1) and 0 < seconds < 2, (
            name,
            seconds,
        )
        assert round(seconds / 0.26) * 0.26 == pytest.approx(seconds, abs=0.051), (
            name,
            seconds,
        )  # whole ticks, to 0.1


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("binary", 0), "x", "recipe [[binary]] must be a list of tables"),
        (("binary", 0, "flavour"), "x", "binary 'cilium-agent': unknown recipe keys ['flavour']"),
        (("binary", 0, "package"), _DELETE_KEY, "binary 'cilium-agent': missing recipe keys ['package']"),
        (("binary", 0, "package"), "a b", f"recipe package 'a b' {PLAIN}"),
        (("binary", 0, "name"), "a b", f"recipe name 'a b' {PLAIN}"),
        (("agent",), _DELETE_KEY, "recipe has no [agent] table"),
        (("agent", "flavour"), "x", "[agent]: unknown recipe keys ['flavour']"),
        (
            ("agent", "repository"),
            "A",
            "recipe [agent] repository 'A' is not a local repository like cdl/cilium",
        ),
        (("agent", "suite"), "a b", f"recipe suite 'a b' {PLAIN}"),
        (
            ("agent", "mirror"),
            "ftp://x",
            "recipe [agent] mirror 'ftp://x' does not match ^https?://[A-Za-z0-9.-]+(/[A-Za-z0-9._-]+)*/?$",
        ),
        (("agent", "packages"), ["A"], "recipe [agent] packages 'A' does not match ^[a-z0-9][a-z0-9.+-]*$"),
        (("agent", "workdir"), "rel", "recipe [agent] workdir 'rel' does not match ^(/[A-Za-z0-9._-]+)+$"),
        (
            ("agent", "env"),
            ["x"],
            "recipe [agent] env 'x' does not match ^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_./:=+-]*$",
        ),
        (("operator",), _DELETE_KEY, "recipe has no [operator] table"),
        (("operator", "colour"), "x", "[operator]: unknown recipe keys ['colour']"),
        (("operator", "binary"), "a b", f"recipe [operator] binary 'a b' {PLAIN}"),
        (
            ("operator", "repository"),
            "A",
            "recipe [operator] repository 'A' is not a local repository like cdl/cilium",
        ),
        (("cilium",), _DELETE_KEY, "recipe has no [cilium] table"),
        (("cilium", "colour"), "x", "[cilium]: unknown recipe keys ['colour']"),
        (("cilium", "version"), "a b", f"recipe version 'a b' {PLAIN}"),
        (("cilium", "envoy_sha"), "a b", f"recipe envoy_sha 'a b' {PLAIN}"),
        (("binary",), "x", "recipe [[binary]] must be a non-empty list of tables"),
        (("cilium", "module_dir"), "a b", f"recipe module_dir 'a b' {PLAIN}"),
        (("cilium", "revision"), "a b", f"recipe revision 'a b' {PLAIN}"),
        (
            ("cilium", "tags"),
            ["a b"],
            "recipe [cilium] tags must be a list of plain tokens (^[A-Za-z0-9_]+$), not ['a b']",
        ),
    ],
)
def test_each_recipe_refusal_in_its_own_words(
    path: tuple[str | int, ...], value: object, message: str
) -> None:
    with (cilium_images.RECIPE_DIR / "recipe.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    target: Any = raw
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE_KEY:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(CiliumBuildError) as refused:
        cilium_images.parse_recipe(raw)
    assert str(refused.value) == message


def test_a_wrapper_that_requires_no_cilium_says_none(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module wrapper\n\ngo 1.26\n\nrequire golang.org/x/sys v0.30.0\n")
    assert cilium_images.wrapper_requires(tmp_path / "go.mod") is None


def test_a_wrong_version_is_said_with_the_whole_command_and_the_output(tmp_path: Path) -> None:
    says = tmp_path / "dbg"
    says.write_text("#!/bin/sh\necho 'Client: 1.20.1'\necho\n")
    says.chmod(0o755)
    binary = cilium_images.CiliumBinary(
        "cilium-dbg", "github.com/cilium/cilium/cilium-dbg", (), ("version", "--client")
    )
    with pytest.raises(CiliumBuildError) as refused:
        cilium_images.check_version(_recipe(), binary, says, dict(os.environ))
    assert str(refused.value) == (
        "cilium-dbg version --client does not report '1.20.2 v1.20.2 2026-09-15T20:03:11Z':\nClient: 1.20.1"
    )
