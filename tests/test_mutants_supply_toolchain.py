"""supply/toolchain.py cases a mutation run (`make mutation`) found no test for.

The recipe's every refusal in its own words; the pins; each build step's argv, working folder and
environment, against a stand-in for `_run` (no Go build, no network); check_built and the CLI
against a stand-in pulumi.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from clisupport import failed_build, help_text

from supply import toolchain
from supply.buildcache import STAMP, recipe_key
from supply.toolchain import Binary, ModuleFile, Recipe, ToolchainError, parse_recipe

GO = "/opt/go/bin/go"
GO_VERSION = "go version go1.26.8 linux/amd64"


def _buffered() -> dict[str, str]:
    """This process's environment (read when called: a mutant under test is named in it), with
    stdout buffered as on a pipe by default: a PYTHONUNBUFFERED in the shell would hide a missing flush."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _refused(data: Mapping[str, object]) -> str:
    with pytest.raises(ToolchainError) as refused:
        parse_recipe(data)
    return str(refused.value)


WRAPPER = {"name": "a", "version": "v1.0.0", "module_dir": "a", "package": "x/cmd/a"}
PLAIN = "is not a plain module path, version or name"


# --- the recipe ---------------------------------------------------------------------------------------


def test_the_shipped_recipe_parses_to_exactly_its_tables() -> None:
    with (toolchain.RECIPE_DIR / "recipe.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    assert toolchain.load_recipe() == Recipe(
        tuple(Binary(**b) for b in raw["binary"]), tuple(ModuleFile(**f) for f in raw["file"])
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"typo": "1"}, "binary 'a': unknown recipe keys ['typo']"),
        ({"name": "a b"}, f"recipe name 'a b' {PLAIN}"),
        ({"version": "v1;x"}, f"recipe version 'v1;x' {PLAIN}"),
        ({"install": "x"}, "binary 'a': set exactly one of module_dir (wrapper) or install"),
        ({"module_dir": ""}, "binary 'a': set exactly one of module_dir (wrapper) or install"),
        ({"package": ""}, "binary 'a': a wrapper build needs the package to build"),
        ({"module_dir": "../x"}, f"recipe value '../x' {PLAIN}"),
        ({"package": "x y"}, f"recipe value 'x y' {PLAIN}"),
        ({"version_var": "main.v x"}, f"recipe value 'main.v x' {PLAIN}"),
        ({"plugin": "a b", "python_package": "p"}, f"recipe value 'a b' {PLAIN}"),
        ({"embed_module": "-x", "embed_json": {"a.json": "b.json"}}, f"recipe value '-x' {PLAIN}"),
        (
            {"embed_module": "m", "embed_json": {"../a.json": "b.json"}},
            f"recipe embed target '../a.json' {PLAIN}",
        ),
        (
            {"embed_module": "m", "embed_schema": {"a.json": "b c.json"}},
            f"recipe embed source 'b c.json' {PLAIN}",
        ),
        ({"embed_schema": {"a.json": "b.json"}}, "binary 'a': embedded files need embed_module"),
        ({"plugin": "a"}, "binary 'a': a provider names both plugin and python_package"),
        ({"python_package": "pulumi-a"}, "binary 'a': a provider names both plugin and python_package"),
        ({"generator": 1}, "binary 'a': generator must be a string, not 1"),
        ({"generates": ["x"]}, "binary 'a': generates must be a string, not ['x']"),
        ({"tags": True}, "binary 'a': tags must be a string, not True"),
        ({"generator": "tfgen"}, "binary 'a': a generator names both generator and generates"),
        ({"generates": "schema.json"}, "binary 'a': a generator names both generator and generates"),
        ({"generator": "tf gen", "generates": "s.json"}, f"recipe generator 'tf gen' {PLAIN}"),
        ({"generator": "tfgen", "generates": "../s.json"}, f"recipe generates '../s.json' {PLAIN}"),
        (
            {"tags": "no_compose,a b"},
            "binary 'a': tags 'no_compose,a b' are not comma-separated Go build tags",
        ),
        ({"tags": "no_compose,"}, "binary 'a': tags 'no_compose,' are not comma-separated Go build tags"),
        ({"own_build": "ours"}, "binary 'a': own_build is a sentence about a provider plugin"),
        (
            {"own_build": ["ours"], "plugin": "a", "python_package": "p"},
            "binary 'a': own_build is a sentence about a provider plugin",
        ),
    ],
)
def test_each_binary_refusal_in_its_own_words(change: dict[str, object], message: str) -> None:
    assert _refused({"binary": [{**WRAPPER, **change}]}) == message


def test_a_generator_needs_a_wrapper_module() -> None:
    table = {"name": "a", "version": "v1", "install": "x", "generator": "tfgen", "generates": "s.json"}
    assert (
        _refused({"binary": [table]})
        == "binary 'a': a generator is a package of a wrapper module (module_dir)"
    )


def test_what_the_recipe_accepts() -> None:
    recipe = parse_recipe(
        {
            "binary": [
                {
                    **WRAPPER,
                    "package": ".",
                    "tags": "no_compose,osusergo",
                    "generator": "tfgen",
                    "generates": "s.json",
                },
                {
                    "name": "p",
                    "version": "1.2.1",
                    "install": "x",
                    "plugin": "p",
                    "python_package": "pulumi-p",
                    "own_build": "ours",
                },
            ],
            "file": [{"name": "f", "module": "m/x", "version": "v1.0.0", "path": "a/b"}],
        }
    )
    assert [b.name for b in recipe.binaries] == ["a", "p"] and recipe.binaries[
        0
    ].tags == "no_compose,osusergo"
    assert recipe.files == (ModuleFile("f", "m/x", "v1.0.0", "a/b"),)
    assert parse_recipe({}) == Recipe((), ())


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"name": "f", "module": "m", "version": "v1", "path": "p", "x": 1},
            "file 'f': unknown recipe keys ['x']",
        ),
        ({"name": "f g", "module": "m", "version": "v1", "path": "p"}, f"recipe name 'f g' {PLAIN}"),
        ({"name": "f", "module": "m m", "version": "v1", "path": "p"}, f"recipe module 'm m' {PLAIN}"),
        ({"name": "f", "module": "m", "version": "v 1", "path": "p"}, f"recipe version 'v 1' {PLAIN}"),
        ({"name": "f", "module": "m", "version": "v1", "path": "a/../b"}, f"recipe path 'a/../b' {PLAIN}"),
    ],
)
def test_each_file_refusal_in_its_own_words(table: dict[str, object], message: str) -> None:
    assert _refused({"file": [table]}) == message


def test_a_name_used_twice_is_refused_even_across_binaries_and_files() -> None:
    file = {"name": "a", "module": "m", "version": "v1", "path": "p"}
    assert _refused({"binary": [WRAPPER], "file": [file]}) == "recipe names a file twice: ['a', 'a']"
    assert _refused({"binary": [WRAPPER, WRAPPER]}) == "recipe names a file twice: ['a', 'a']"


@pytest.mark.parametrize("tables", [{"binary": {"name": "a"}}, {"binary": [WRAPPER, "x"]}, {"file": "x"}])
def test_tables_must_be_lists_of_tables(tables: dict[str, object]) -> None:
    key = next(iter(tables))
    assert _refused(tables) == f"recipe [[{key}]] must be a list of tables"


def test_a_binary_the_recipe_does_not_build_is_named() -> None:
    with pytest.raises(ToolchainError, match=r"^the recipe builds no binary named 'pulumi'$"):
        Recipe((), ()).binary("pulumi")


# --- where things are -------------------------------------------------------------------------------------


def test_the_cache_is_the_users(tmp_path: Path) -> None:
    tail = Path("cilium-datapath-lab") / "toolchain"
    assert toolchain.cache_root({"XDG_CACHE_HOME": "", "HOME": "/home/u"}) == Path("/home/u/.cache") / tail
    assert toolchain.cache_root({}) == Path.home() / ".cache" / tail


def test_go_is_found_on_path_or_where_its_tarball_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supply.toolchain.shutil.which", lambda name: f"/usr/bin/{name}")
    assert toolchain.go_command() == "/usr/bin/go"
    monkeypatch.setattr("supply.toolchain.shutil.which", lambda name: None)

    class NoGo(type(Path())):  # type: ignore[misc]
        def exists(self, *, follow_symlinks: bool = True) -> bool:
            return str(self) != "/usr/local/go/bin/go" and super().exists()

    class UsrLocalGo(type(Path())):  # type: ignore[misc]
        def exists(self, *, follow_symlinks: bool = True) -> bool:
            return str(self) == "/usr/local/go/bin/go" or super().exists()

    monkeypatch.setattr(toolchain, "Path", UsrLocalGo)
    assert toolchain.go_command() == "/usr/local/go/bin/go"
    monkeypatch.setattr(toolchain, "Path", NoGo)
    with pytest.raises(
        ToolchainError, match=r"^no `go` on PATH \(nor /usr/local/go/bin/go\): install Go 1\.26 first$"
    ):
        toolchain.go_command()


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_go_version_is_what_go_says_and_a_failing_go_raises(tmp_path: Path) -> None:
    assert (
        toolchain.go_version(_script(tmp_path / "go", 'echo " go version go1.26.8 linux/amd64 "\n'))
        == GO_VERSION
    )
    with pytest.raises(subprocess.CalledProcessError):
        toolchain.go_version(_script(tmp_path / "bad", "exit 3\n"))


# --- the Python-side pins ------------------------------------------------------------------------------------


def test_pins_are_exact_pins_with_normalised_names(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["  Pulumi_Kubernetes==4.25.0 ", "a.b==1.0.0+local", "c ==1", "d>=1"]\n'
    )
    assert toolchain.pyproject_pins(tmp_path / "pyproject.toml") == {
        "pulumi-kubernetes": "4.25.0",
        "a.b": "1.0.0+local",
    }


def test_the_installed_plugin_version_is_read_from_its_package(tmp_path: Path) -> None:
    for py, version in (("python3.10", "1.0.0"), ("python3.11", "2.0.0")):
        site = tmp_path / "lib" / py / "site-packages" / "pulumi_command"
        site.mkdir(parents=True)
        (site / "pulumi-plugin.json").write_text(json.dumps({"version": version}))
    assert toolchain.installed_plugin_version(tmp_path, "pulumi-command") == "1.0.0"  # the first, sorted
    (tmp_path / "lib" / "python3.10" / "site-packages" / "pulumi_command" / "pulumi-plugin.json").write_text(
        "{}"
    )
    assert toolchain.installed_plugin_version(tmp_path, "pulumi-command") is None
    assert toolchain.installed_plugin_version(tmp_path, "pulumi-other") is None


def test_a_version_that_is_not_semantic_is_refused() -> None:
    assert toolchain._semver("v3.274.1-rc.1") == (3, 274, 1)
    with pytest.raises(ToolchainError, match=r"^'3\.274' is not a semantic version$"):
        toolchain._semver("3.274")


def _recipe(cli: str = "v3.272.0", exec_version: str = "v3.272.0") -> Recipe:
    return Recipe(
        binaries=(
            Binary(name="pulumi", version=cli, module_dir="pulumi", package="x"),
            Binary(
                name="p-k8s",
                version="4.25.0",
                module_dir="k",
                package=".",
                plugin="kubernetes",
                python_package="pulumi-kubernetes",
            ),
        ),
        files=(
            ModuleFile("exec", "github.com/pulumi/pulumi/sdk/v3", exec_version, "p"),
            ModuleFile("other", "github.com/other/sdk", "v9.9.9", "p"),
        ),
    )


def test_pin_problems_each_in_its_own_words() -> None:
    pins = {"pulumi": "3.272.0", "pulumi-kubernetes": "4.25.0"}
    assert toolchain.pin_problems(_recipe(), pins, None) == []  # the CLI may equal the SDK pin
    assert toolchain.pin_problems(_recipe(cli="v3.271.9"), pins, None) == [
        "pulumi CLI v3.271.9 is older than the Python SDK pin pulumi==3.272.0"
    ]
    assert toolchain.pin_problems(_recipe(exec_version="v3.272.1"), pins, None) == [
        "exec comes from sdk/v3 v3.272.1, the Python SDK pin is 3.272.0"
    ]
    assert toolchain.pin_problems(_recipe(), {"pulumi-kubernetes": "4.25.0"}, None) == [
        "pyproject.toml pins no exact pulumi version"
    ]
    assert toolchain.pin_problems(_recipe(), {"pulumi": "3.272.0"}, None) == [
        "p-k8s builds 4.25.0, pyproject.toml pins pulumi-kubernetes==None"
    ]


def test_pin_problems_read_the_venv_given(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "pulumi_kubernetes"
    site.mkdir(parents=True)
    (site / "pulumi-plugin.json").write_text(json.dumps({"version": "4.25.0"}))
    pins = {"pulumi": "3.272.0", "pulumi-kubernetes": "4.25.0"}
    assert toolchain.pin_problems(_recipe(), pins, tmp_path) == []
    (site / "pulumi-plugin.json").write_text(json.dumps({"version": "4.26.0"}))
    assert toolchain.pin_problems(_recipe(), pins, tmp_path) == [
        "p-k8s builds 4.25.0, the installed pulumi-kubernetes asks for 4.26.0"
    ]


# --- running a step -------------------------------------------------------------------------------------------


def _fake_nice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], Path]:
    """A `nice` first on PATH that logs its arguments and runs the command after `-n 19`."""
    bin_dir = tmp_path / "nice-bin"
    bin_dir.mkdir()
    log = tmp_path / "nice.log"
    _script(bin_dir / "nice", f'echo "$*" >> "{log}"\nshift 2\nexec "$@"\n')
    path = f"{bin_dir}:{os.environ['PATH']}"
    monkeypatch.setenv("PATH", path)
    return {"PATH": path, "CDL_X": "x"}, log


def test_a_step_runs_at_the_lowest_priority_in_its_folder_with_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, log = _fake_nice(tmp_path, monkeypatch)
    out = toolchain._run(["sh", "-c", 'echo "$(pwd) $CDL_X"; echo err >&2'], tmp_path, env)
    assert out == f"{tmp_path} x\n"  # stdout only
    assert log.read_text() == '-n 19 sh -c echo "$(pwd) $CDL_X"; echo err >&2\n'


def test_a_failed_step_says_what_where_and_everything_it_printed(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError) as failed:
        toolchain._run(["sh", "-c", "echo out; echo err >&2; exit 3", "a b"], tmp_path, dict(os.environ))
    assert (
        str(failed.value)
        == f"`sh -c 'echo out; echo err >&2; exit 3' 'a b'` (in {tmp_path}) exited 3:\nout\nerr"
    )


def test_a_step_without_nice_on_path_runs_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, log = _fake_nice(tmp_path, monkeypatch)
    monkeypatch.setattr("supply.toolchain.shutil.which", lambda name: None)
    assert toolchain._run(["sh", "-c", "echo ran"], tmp_path, env) == "ran\n"
    assert not log.exists()


class Steps:
    """Stands in for _run: records (argv, cwd, env), answers from `answers` (first matching argv
    prefix), and makes the files a real step would (`go build -o X`, `go install` into GOBIN)."""

    def __init__(self, answers: Mapping[tuple[str, ...], str] | None = None) -> None:
        self.calls: list[tuple[list[str], Path, dict[str, str]]] = []
        self.answers = dict(answers or {})

    def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
        argv = list(argv)
        self.calls.append((argv, cwd, dict(env)))
        if argv[:2] == [GO, "build"]:
            _script(Path(argv[argv.index("-o") + 1]), "exit 0\n")
        elif argv[:2] == [GO, "install"]:
            name = argv[-1].split("@")[0].rsplit("/", 1)[-1]
            _script(Path(env["GOBIN"]) / name, "exit 0\n")
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return answer
        return ""


def test_a_module_folder_is_what_go_mod_download_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps({(GO, "mod", "download", "-json", "m@v1"): json.dumps({"Dir": "/mod/m@v1"})})
    monkeypatch.setattr(toolchain, "_run", steps)
    assert toolchain._module_dir(GO, "m@v1", tmp_path, {"A": "1"}) == Path("/mod/m@v1")
    assert steps.calls == [([GO, "mod", "download", "-json", "m@v1"], tmp_path, {"A": "1"})]
    for answer in ({"Dir": "/mod/m@v1", "Error": "checksum mismatch"}, {"Path": "m"}):
        steps.answers = {(GO,): json.dumps(answer)}
        with pytest.raises(ToolchainError) as refused:
            toolchain._module_dir(GO, "m@v1", tmp_path, {})
        assert str(refused.value) == f"`go mod download m@v1` (in {tmp_path}) gave no module folder: {answer}"


def test_embedded_files_are_the_modules_json_written_compact_the_schema_with_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "module"
    (module / "cmd").mkdir(parents=True)
    (module / "cmd" / "schema.json").write_text('{ "name": "kubernetes", "version": "0.0.0" }')
    (module / "cmd" / "mapping.json").write_text('{ "a": [1, 2] }')
    steps = Steps({(GO, "mod", "download"): json.dumps({"Dir": str(module)})})
    monkeypatch.setattr(toolchain, "_run", steps)
    src = tmp_path / "src"
    src.mkdir()
    b = Binary(
        name="k",
        version="v4.25.0",
        module_dir="k",
        package=".",
        embed_module="github.com/pulumi/pulumi-kubernetes/provider/v4",
        embed_schema={"schema-embed.json": "cmd/schema.json"},
        embed_json={"mapping-embed.json": "cmd/mapping.json"},
    )
    toolchain._write_embeds(GO, b, src, {"E": "1"})
    assert (src / "schema-embed.json").read_text() == '{"name":"kubernetes","version":"4.25.0"}'
    assert (src / "mapping-embed.json").read_text() == '{"a":[1,2]}'
    assert steps.calls == [([GO, "mod", "download", "-json", b.embed_module], src, {"E": "1"})]


DOCKER = Binary(
    name="pulumi-resource-docker",
    version="5.2.0",
    module_dir="docker",
    package=".",
    version_var="x/bridge.Version",
    plugin="docker",
    python_package="pulumi-docker",
    generator="tfgen",
    generates="schema-embed.json",
    tags="no_compose",
)


def _wrapper_recipe(tmp_path: Path) -> Path:
    recipe_dir = tmp_path / "recipe"
    (recipe_dir / "docker" / "tfgen").mkdir(parents=True)
    (recipe_dir / "docker" / "go.mod").write_text("module x\n")
    return recipe_dir


def test_a_wrapper_build_generates_first_then_builds_with_the_same_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe_dir, work, out = _wrapper_recipe(tmp_path), tmp_path / "work", tmp_path / "out" / "docker"
    work.mkdir()
    out.parent.mkdir()

    class Generating(Steps):
        def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
            if argv[0] == str(work / "generate-pulumi-resource-docker"):
                Path(argv[1]).write_text('{"name":"docker"}')
            return super().__call__(argv, cwd, env)

    steps = Generating()
    monkeypatch.setattr(toolchain, "_run", steps)
    toolchain.build_binary(GO, DOCKER, recipe_dir, work, out, {"E": "1"})
    src = work / "src-pulumi-resource-docker"
    flags = ["-trimpath", "-ldflags=-s -w -X x/bridge.Version=5.2.0", "-tags", "no_compose"]
    assert [(argv, cwd, env) for argv, cwd, env in steps.calls] == [
        (
            [GO, "build", *flags, "-o", str(work / "generate-pulumi-resource-docker"), "./tfgen"],
            src,
            {"E": "1"},
        ),
        ([str(work / "generate-pulumi-resource-docker"), str(src / "schema-embed.json")], src, {"E": "1"}),
        ([GO, "build", *flags, "-o", str(out), "."], src, {"E": "1"}),
    ]
    assert (src / "go.mod").read_text() == "module x\n"  # the wrapper, copied
    assert re.fullmatch(
        r"\[toolchain\] generated schema-embed\.json with tfgen in \d+s\n", capsys.readouterr().out
    )


@pytest.mark.parametrize("written", [None, ""])
def test_a_generator_that_writes_nothing_stops_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str | None
) -> None:
    recipe_dir, work = _wrapper_recipe(tmp_path), tmp_path / "work"
    work.mkdir()

    class Quiet(Steps):
        def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
            if argv[0].endswith("generate-pulumi-resource-docker") and written is not None:
                Path(argv[1]).write_text(written)
            return super().__call__(argv, cwd, env)

    monkeypatch.setattr(toolchain, "_run", Quiet())
    with pytest.raises(ToolchainError) as stopped:
        toolchain.build_binary(GO, DOCKER, recipe_dir, work, tmp_path / "docker", {})
    assert str(stopped.value) == "binary 'pulumi-resource-docker': generator tfgen wrote no schema-embed.json"


def test_an_install_build_goes_through_its_own_gobin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = Steps()
    monkeypatch.setattr(toolchain, "_run", steps)
    work, out = tmp_path / "work", tmp_path / "bin" / "kind"
    work.mkdir()
    out.parent.mkdir()
    kind = Binary(name="kind", version="v0.32.0", install="sigs.k8s.io/kind")
    toolchain.build_binary(GO, kind, tmp_path, work, out, {"E": "1"})
    gobin = work / "gobin-kind"
    assert steps.calls == [
        (
            [GO, "install", "-trimpath", "-ldflags=-s -w", "sigs.k8s.io/kind@v0.32.0"],
            work,
            {"E": "1", "GOBIN": str(gobin)},
        )
    ]
    assert out.is_file() and not (gobin / "kind").exists()


def test_a_plugin_is_installed_with_the_built_cli_into_the_toolchains_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps()
    monkeypatch.setattr(toolchain, "_run", steps)
    binary = tmp_path / "work" / "pulumi-resource-docker"
    toolchain._install_plugin(tmp_path / "bin", DOCKER, binary, tmp_path / "home", {"E": "1"})
    assert steps.calls == [
        (
            [
                str(tmp_path / "bin" / "pulumi"),
                "plugin",
                "install",
                "resource",
                "docker",
                "5.2.0",
                "--file",
                str(binary),
            ],
            tmp_path / "work",
            {"E": "1", "PULUMI_HOME": str(tmp_path / "home")},
        )
    ]


# --- checking a built toolchain, with a stand-in pulumi -------------------------------------------------------

FULL = Recipe(
    binaries=(
        Binary(name="pulumi", version="v3.274.1", module_dir="pulumi", package="x"),
        Binary(name="kind", version="v0.32.0", install="sigs.k8s.io/kind"),
        Binary(
            name="pulumi-resource-docker",
            version="v5.2.0",
            module_dir="docker",
            package=".",
            plugin="docker",
            python_package="pulumi-docker",
            own_build="ours",
        ),
    ),
    files=(
        ModuleFile(
            "pulumi-language-python-exec", "github.com/pulumi/pulumi/sdk/v3", "v3.272.0", "python/exec"
        ),
    ),
)


def _built(key_dir: Path, version: str = "v3.274.1", plugins: object = None) -> Path:
    bin_dir = key_dir / "bin"
    bin_dir.mkdir(parents=True)
    listed = json.dumps(
        [{"name": "docker", "kind": "resource", "version": "5.2.0"}] if plugins is None else plugins
    )
    _script(
        bin_dir / "pulumi",
        f'[ "$1" = version ] && {{ echo "{version}"; exit 0; }}\n'
        f'echo "$PULUMI_HOME $PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" > "{key_dir}/env"\n'
        f"echo '{listed}'\n",
    )
    for name in ("kind", "pulumi-language-python-exec"):
        _script(bin_dir / name, "exit 0\n")
    return key_dir


def test_a_complete_toolchain_passes_its_check_offline(tmp_path: Path) -> None:
    key_dir = _built(tmp_path / "k")
    toolchain.check_built(FULL, key_dir, {"PATH": os.environ["PATH"]})
    assert (key_dir / "env").read_text() == f"{key_dir / 'pulumi-home'} true\n"


@pytest.mark.parametrize(
    ("version", "plugins", "missing", "message"),
    [
        ("v3.274.0", None, None, "the built pulumi reports 'v3.274.0', the recipe builds v3.274.1"),
        (
            "v3.274.1",
            [{"name": "docker", "kind": "resource", "version": "5.1.0"}],
            None,
            "plugin docker v5.2.0 is not installed in {home}: [\"('docker', 'resource', '5.1.0')\"]",
        ),
        (
            "v3.274.1",
            [{"name": "docker", "kind": "language", "version": "5.2.0"}],
            None,
            "plugin docker v5.2.0 is not installed in {home}: [\"('docker', 'language', '5.2.0')\"]",
        ),
        ("v3.274.1", None, "kind", "{bin}/kind is missing or not executable"),
        (
            "v3.274.1",
            None,
            "pulumi-language-python-exec",
            "{bin}/pulumi-language-python-exec is missing or not executable",
        ),
    ],
)
def test_each_way_a_toolchain_is_incomplete(
    tmp_path: Path, version: str, plugins: object, missing: str | None, message: str
) -> None:
    key_dir = _built(tmp_path / "k", version, plugins)
    if missing:
        (key_dir / "bin" / missing).chmod(0o644)
    with pytest.raises(ToolchainError) as refused:
        toolchain.check_built(FULL, key_dir, {"PATH": os.environ["PATH"]})
    assert str(refused.value) == message.format(home=key_dir / "pulumi-home", bin=key_dir / "bin")


def test_the_toolchains_environment_is_offline_and_puts_it_first(tmp_path: Path) -> None:
    assert toolchain.toolchain_env(tmp_path, Path("/repo"), "/usr/bin:/bin") == {
        "PATH": f"{tmp_path}/bin:/usr/bin:/bin",
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_PYTHON_CMD": "/repo/.venv/bin/python",
    }


# --- build, with every step a stand-in ----------------------------------------------------------------------


@pytest.fixture
def recipe_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recipe of three binaries (the CLI listed last), a plugin and a file; go, its version and
    the venv's pins held fixed; the cache under tmp_path."""
    recipe_dir = tmp_path / "recipe"
    (recipe_dir / "pulumi").mkdir(parents=True)
    (recipe_dir / "docker").mkdir()
    (recipe_dir / "recipe.toml").write_text(
        '[[binary]]\nname = "kind"\ninstall = "sigs.k8s.io/kind"\nversion = "v0.32.0"\n\n'
        '[[binary]]\nname = "pulumi-resource-docker"\nmodule_dir = "docker"\npackage = "."\nversion = "5.2.0"\n'
        'plugin = "docker"\npython_package = "pulumi-docker"\nown_build = "the project\'s own"\n\n'
        '[[binary]]\nname = "pulumi"\nmodule_dir = "pulumi"\npackage = "x/cmd/pulumi"\nversion = "v3.274.1"\n\n'
        '[[file]]\nname = "pulumi-language-python-exec"\nmodule = "github.com/pulumi/pulumi/sdk/v3"\n'
        'version = "v3.272.0"\npath = "python/exec"\n'
    )
    module = tmp_path / "sdk"
    (module / "python").mkdir(parents=True)
    (module / "python" / "exec").write_text("#!/bin/sh\n")

    def go_version(go: str) -> str:
        assert go == GO, go
        return GO_VERSION

    monkeypatch.setattr(toolchain, "go_command", lambda: GO)
    monkeypatch.setattr(toolchain, "go_version", go_version)
    monkeypatch.setattr(toolchain, "pin_problems", lambda recipe, pins, venv: [])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return recipe_dir


def _build_steps(tmp_path: Path) -> Steps:
    return Steps(
        {
            (GO, "mod", "download", "-json"): json.dumps({"Dir": str(tmp_path / "sdk")}),
        }
    )


def test_a_build_builds_the_cli_first_installs_the_plugin_copies_the_file_and_stamps(
    tmp_path: Path, recipe_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = _build_steps(tmp_path)
    monkeypatch.setattr(toolchain, "_run", steps)
    checked: list[tuple[Recipe, Path, dict[str, str]]] = []
    monkeypatch.setattr(
        toolchain, "check_built", lambda recipe, key_dir, env: checked.append((recipe, key_dir, dict(env)))
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin"}
    key = recipe_key(recipe_dir, Path(toolchain.__file__).resolve(), GO_VERSION)
    done = toolchain.build(recipe_dir, env)
    assert done == tmp_path / "cache" / "cilium-datapath-lab" / "toolchain" / key
    build_env = {**env, "CGO_ENABLED": "0", "PULUMI_SKIP_UPDATE_CHECK": "true"}
    tmp = Path(capsys.readouterr().out.split(" in ", 1)[1].split(" (", 1)[0])
    argvs = [argv for argv, _, _ in steps.calls]
    assert [a[:2] for a in argvs] == [
        [GO, "build"],  # the CLI first
        [GO, "install"],
        [GO, "build"],
        [str(tmp / "bin" / "pulumi"), "plugin"],
        [GO, "mod"],
    ]
    assert argvs[0][-3:] == ["-o", str(tmp / "bin" / "pulumi"), "x/cmd/pulumi"]
    assert argvs[2][-3:] == ["-o", str(tmp / "work" / "pulumi-resource-docker"), "."]  # a plugin: into work/
    assert argvs[4] == [GO, "mod", "download", "-json", "github.com/pulumi/pulumi/sdk/v3@v3.272.0"]
    assert all(
        e == build_env
        or e == {**build_env, "GOBIN": str(tmp / "work" / "gobin-kind")}
        or e.get("PULUMI_HOME")
        for _, _, e in steps.calls
    )
    assert steps.calls[3][2] == {**build_env, "PULUMI_HOME": str(tmp / "pulumi-home")}
    assert steps.calls[4][1] == tmp / "work"
    assert (done / "bin" / "pulumi-language-python-exec").read_text() == "#!/bin/sh\n"
    assert ((done / "bin" / "pulumi-language-python-exec").stat().st_mode & 0o777) == 0o755
    assert sorted(p.name for p in done.iterdir()) == ["bin", "pulumi-home", STAMP]  # work/ removed
    [(checked_recipe, checked_dir, checked_env)] = checked
    assert checked_dir == tmp and checked_env == env and checked_recipe == toolchain.load_recipe(recipe_dir)
    stamp = json.loads((done / STAMP).read_text())
    assert stamp.pop("seconds") in range(0, 60)
    built = stamp.pop("built")
    assert stamp == {"key": key, "go": GO_VERSION}
    assert {name: b["version"] for name, b in built.items()} == {
        "pulumi": "v3.274.1",
        "kind": "v0.32.0",
        "pulumi-resource-docker": "5.2.0",
        "pulumi-language-python-exec": "v3.272.0",
    }
    assert built["pulumi-language-python-exec"]["seconds"] == 0
    assert all(b["seconds"] < 60 for b in built.values())


def test_a_builds_messages(
    tmp_path: Path, recipe_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(toolchain, "_run", _build_steps(tmp_path))
    monkeypatch.setattr(toolchain, "check_built", lambda recipe, key_dir, env: None)
    done = toolchain.build(recipe_dir)  # the process's environment
    key = done.name
    out = capsys.readouterr().out.splitlines()
    tmp = out[0].split(" in ", 1)[1].split(" (", 1)[0]
    assert out[0] == f"[toolchain] building toolchain {key} in {tmp} ({GO_VERSION})"
    assert out[1] == "[toolchain] building pulumi v3.274.1 (x/cmd/pulumi) ..."
    assert re.fullmatch(r"\[toolchain\] built pulumi v3\.274\.1 in \d+s", out[2])
    assert out[3] == "[toolchain] building kind v0.32.0 (sigs.k8s.io/kind) ..."
    assert out[5] == "[toolchain] building pulumi-resource-docker 5.2.0 (toolchain/docker) ..."
    assert (
        out[7]
        == "[toolchain] copied pulumi-language-python-exec from github.com/pulumi/pulumi/sdk/v3@v3.272.0"
    )
    assert re.fullmatch(rf"\[toolchain\] toolchain {key} built in \d+s: {re.escape(str(done))}", out[8])
    assert out[9] == f"[toolchain] plugin docker 5.2.0 in {done / 'pulumi-home'}: the project's own"
    assert len(out) == 10
    assert toolchain.build(recipe_dir) == done
    assert capsys.readouterr().out.splitlines() == [
        f"[toolchain] toolchain {key} is already built: {done}",
        f"[toolchain] plugin docker 5.2.0 in {done / 'pulumi-home'}: the project's own",
    ]


def test_a_build_is_refused_while_the_recipe_and_the_python_packages_disagree(
    tmp_path: Path, recipe_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[Recipe, Mapping[str, str], Path | None]] = []

    def problems(recipe: Recipe, pins: Mapping[str, str], venv: Path | None) -> list[str]:
        asked.append((recipe, pins, venv))
        return ["a", "b"]

    monkeypatch.setattr(toolchain, "pin_problems", problems)
    with pytest.raises(ToolchainError) as refused:
        toolchain.build(recipe_dir, {})
    assert str(refused.value) == "the recipe and the Python packages disagree:\n  a\n  b"
    [(_, pins, venv)] = asked
    assert (
        pins == toolchain.pyproject_pins(toolchain.REPO / "pyproject.toml")
        and venv == toolchain.REPO / ".venv"
    )
    assert not (tmp_path / "cache" / "cilium-datapath-lab" / "toolchain").exists()


def test_current_dir_and_the_cli(
    tmp_path: Path, recipe_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = recipe_key(toolchain.RECIPE_DIR, Path(toolchain.__file__).resolve(), GO_VERSION)
    assert toolchain.current_dir(os.environ) is None
    assert toolchain.main(["key"]) == 0
    assert capsys.readouterr() == (f"{key}\n", "")
    for command in ("dir", "env"):
        assert toolchain.main([command]) == 1
        assert capsys.readouterr() == ("", "the Pulumi toolchain is not built: run `make toolchain`\n")
    done = tmp_path / "cache" / "cilium-datapath-lab" / "toolchain" / key
    done.mkdir(parents=True)
    (done / STAMP).write_text("{}")
    assert toolchain.current_dir(os.environ) == done
    assert toolchain.main(["dir"]) == 0
    assert capsys.readouterr() == (f"{done}\n", "")
    assert toolchain.main(["env"]) == 0
    exports = capsys.readouterr().out.splitlines()
    assert exports[0] == f'export PATH={shlex.quote(str(done / "bin"))}:"$PATH"'
    assert exports[1:] == [
        f"export PULUMI_HOME={shlex.quote(str(done / 'pulumi-home'))}",
        "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        "export PULUMI_SKIP_UPDATE_CHECK=true",
        f"export PULUMI_PYTHON_CMD={shlex.quote(str(toolchain.REPO / '.venv' / 'bin' / 'python'))}",
    ]
    built: list[bool] = []
    monkeypatch.setattr(toolchain, "build", lambda: built.append(True))
    assert toolchain.main(["build"]) == 0 and built == [True]


@pytest.mark.parametrize(
    "error", [ToolchainError("no go"), subprocess.CalledProcessError(2, ["go", "version"])]
)
def test_the_cli_reports_an_error_in_one_line(
    error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failed_build(toolchain, error, monkeypatch, capsys) == ("", f"[toolchain] error: {error}\n")


def test_the_cli_wants_a_command_and_says_what_each_does(capsys: pytest.CaptureFixture[str]) -> None:
    said = help_text(toolchain.main, capsys)
    assert said.startswith("usage: python -m supply.toolchain [-h] {build,dir,env,key} ...")
    assert (
        "Build the real Pulumi toolchain from the Go module proxy into a cache outside the repository."
        in said
    )
    assert "build build the toolchain unless this key is already built" in said
    assert "dir print the built toolchain's directory (exit 1 if it is not built)" in said
    assert "env print shell exports that put the built toolchain to use" in said
    assert "key print the cache key of the current recipe" in said


def test_progress_lines_are_flushed_before_what_a_step_prints_next() -> None:
    code = (
        "import os; from supply.toolchain import _say; _say('building'); os.write(1, b'go: downloading\\n')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**_buffered(), "PYTHONPATH": str(Path(toolchain.__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == "[toolchain] building\ngo: downloading\n"


def _strict_built(key_dir: Path) -> Path:
    """A built key whose pulumi answers exactly `version` and `plugin ls --json`, and records each
    call with the folder it ran in and the PATH it was given."""
    bin_dir = key_dir / "bin"
    bin_dir.mkdir(parents=True)
    listed = json.dumps([{"name": "docker", "kind": "resource", "version": "5.2.0"}])
    _script(
        bin_dir / "pulumi",
        f'echo "$*|$PWD|$PATH" >> "{key_dir}/calls"\n'
        '[ "$*" = version ] && { echo v3.274.1; exit 0; }\n'
        f"[ \"$*\" = 'plugin ls --json' ] && {{ echo '{listed}'; exit 0; }}\n"
        "exit 2\n",
    )
    for name in ("kind", "pulumi-language-python-exec"):
        _script(bin_dir / name, "exit 0\n")
    return key_dir


@pytest.mark.parametrize(("env", "path"), [({"PATH": "/usr/bin:/bin"}, "/usr/bin:/bin"), ({}, "")])
def test_check_built_asks_pulumi_in_its_key_folder_with_the_toolchain_first_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], path: str
) -> None:
    monkeypatch.setattr("supply.toolchain.shutil.which", lambda name: None)  # no nice: PATH may be empty
    key_dir = _strict_built(tmp_path / "k")
    toolchain.check_built(FULL, key_dir, env)
    assert (key_dir / "calls").read_text().splitlines() == [
        f"version|{key_dir}|{key_dir}/bin:{path}",
        f"plugin ls --json|{key_dir}|{key_dir}/bin:{path}",
    ]


def test_a_binary_with_an_embedded_module_writes_its_embeds_into_its_own_source_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe_dir, work, out = _wrapper_recipe(tmp_path), tmp_path / "work", tmp_path / "out" / "k"
    work.mkdir()
    out.parent.mkdir()
    monkeypatch.setattr(toolchain, "_run", Steps())
    embeds: list[tuple[object, ...]] = []

    def write_embeds(go: str, b: Binary, src: Path, env: Mapping[str, str]) -> None:
        assert (src / "go.mod").is_file()  # after the wrapper is copied, before the build
        embeds.append((go, b, src, dict(env)))

    monkeypatch.setattr(toolchain, "_write_embeds", write_embeds)
    k = Binary(name="k", version="4.25.0", module_dir="docker", package=".", embed_module="m/provider/v4")
    toolchain.build_binary(GO, k, recipe_dir, work, out, {"E": "1"})
    assert embeds == [(GO, k, work / "src-k", {"E": "1"})]


def test_a_generators_time_is_the_time_it_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Clock:
        now = 5000.0

        def monotonic(self) -> float:
            self.now += 1.0
            return self.now

    recipe_dir, work = _wrapper_recipe(tmp_path), tmp_path / "work"
    work.mkdir()

    class Generating(Steps):
        def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
            if argv[0].endswith("generate-pulumi-resource-docker"):
                Path(argv[1]).write_text("{}")
            return super().__call__(argv, cwd, env)

    monkeypatch.setattr(toolchain, "_run", Generating())
    monkeypatch.setattr(toolchain, "time", Clock())
    toolchain.build_binary(GO, DOCKER, recipe_dir, work, tmp_path / "docker", {})
    said = capsys.readouterr().out
    assert "[toolchain] generated schema-embed.json with tfgen in 1s\n" in said, said


def test_a_build_checks_the_pins_of_its_own_recipe_and_stamps_tenths_of_seconds(
    tmp_path: Path, recipe_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            self.now += 0.123
            return self.now

    monkeypatch.setattr(toolchain, "_run", _build_steps(tmp_path))
    monkeypatch.setattr(toolchain, "check_built", lambda recipe, key_dir, env: None)
    monkeypatch.setattr(toolchain, "time", Clock())
    asked: list[tuple[object, ...]] = []

    def pin_problems(recipe: Recipe, pins: Mapping[str, str], venv: Path) -> list[str]:
        asked.append((recipe, pins, venv))
        return []

    monkeypatch.setattr(toolchain, "pin_problems", pin_problems)
    done = toolchain.build(recipe_dir, {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin"})
    assert asked == [
        (
            toolchain.load_recipe(recipe_dir),
            toolchain.pyproject_pins(toolchain.REPO / "pyproject.toml"),
            toolchain.REPO / ".venv",
        )
    ]
    built = json.loads((done / STAMP).read_text())["built"]
    for name in (b.name for b in toolchain.load_recipe(recipe_dir).binaries):  # the files are copies: 0
        seconds = built[name]["seconds"]
        assert isinstance(seconds, float) and seconds > 0 and seconds == round(seconds, 1), (name, seconds)
