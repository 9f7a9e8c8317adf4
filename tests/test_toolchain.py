"""The toolchain recipe: its cache key, its validation, and its agreement with the Python pins."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from supply import toolchain
from supply.buildcache import recipe_key
from supply.toolchain import (
    Binary,
    ModuleFile,
    Recipe,
    ToolchainError,
    installed_plugin_version,
    load_recipe,
    parse_recipe,
    pin_problems,
    pyproject_pins,
    toolchain_env,
)

ROOT = Path(__file__).resolve().parent.parent


def _copy_recipe(tmp_path: Path) -> tuple[Path, Path]:
    recipe_dir = tmp_path / "toolchain"
    shutil.copytree(ROOT / "supply" / "toolchain", recipe_dir)
    script = tmp_path / "toolchain.py"
    shutil.copyfile(ROOT / "supply" / "toolchain.py", script)
    return recipe_dir, script


def test_key_is_stable_and_covers_every_recipe_file_the_script_and_go(tmp_path: Path) -> None:
    recipe_dir, script = _copy_recipe(tmp_path)
    key = recipe_key(recipe_dir, script, "go version go1.26.8 linux/amd64")
    assert key == recipe_key(recipe_dir, script, "go version go1.26.8 linux/amd64")
    assert key != recipe_key(recipe_dir, script, "go version go1.26.9 linux/amd64")
    for changed in [recipe_dir / "recipe.toml", recipe_dir / "kubernetes" / "go.sum", script]:
        original = changed.read_bytes()
        changed.write_bytes(original + b"\n")
        assert recipe_key(recipe_dir, script, "go version go1.26.8 linux/amd64") != key, changed
        changed.write_bytes(original)
    (recipe_dir / "new-wrapper").mkdir()
    (recipe_dir / "new-wrapper" / "go.mod").write_text("module x\n")
    assert recipe_key(recipe_dir, script, "go version go1.26.8 linux/amd64") != key


def test_the_recipe_agrees_with_pyproject_and_the_installed_packages() -> None:
    venv = ROOT / ".venv"
    problems = pin_problems(load_recipe(), pyproject_pins(ROOT / "pyproject.toml"), venv)
    assert problems == []


def test_each_wrapper_module_says_why_it_exists() -> None:
    recipe = load_recipe()
    for b in recipe.binaries:
        if b.module_dir:
            go_mod = (ROOT / "supply" / "toolchain" / b.module_dir / "go.mod").read_text()
            assert go_mod.startswith("// Why this module exists:"), b.module_dir
            assert (ROOT / "supply" / "toolchain" / b.module_dir / "go.sum").is_file(), b.module_dir


def _recipe(cli: str = "v3.274.1", k8s: str = "4.25.0", exec_version: str = "v3.272.0") -> Recipe:
    return Recipe(
        binaries=(
            Binary(name="pulumi", version=cli, module_dir="pulumi", package="x/cmd/pulumi"),
            Binary(
                name="pulumi-resource-kubernetes",
                version=k8s,
                module_dir="kubernetes",
                package=".",
                plugin="kubernetes",
                python_package="pulumi-kubernetes",
            ),
        ),
        files=(
            ModuleFile("pulumi-language-python-exec", "github.com/pulumi/pulumi/sdk/v3", exec_version, "p"),
        ),
    )


def test_pin_problems_name_each_disagreement(tmp_path: Path) -> None:
    pins = {"pulumi": "3.272.0", "pulumi-kubernetes": "4.25.0"}
    assert pin_problems(_recipe(), pins, None) == []
    assert "older than the Python SDK" in " ".join(pin_problems(_recipe(cli="v3.271.0"), pins, None))
    assert "pyproject.toml pins pulumi-kubernetes==4.25.0" in " ".join(
        pin_problems(_recipe(k8s="4.34.2"), pins, None)
    )
    assert "Python SDK pin is 3.272.0" in " ".join(pin_problems(_recipe(exec_version="v3.274.1"), pins, None))
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "pulumi_kubernetes"
    site.mkdir(parents=True)
    (site / "pulumi-plugin.json").write_text(
        json.dumps({"resource": True, "name": "kubernetes", "version": "4.34.2"})
    )
    assert installed_plugin_version(tmp_path, "pulumi-kubernetes") == "4.34.2"
    assert "installed pulumi-kubernetes asks for 4.34.2" in " ".join(pin_problems(_recipe(), pins, tmp_path))


def test_pyproject_pins_reads_exact_pins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["pulumi==3.272.0", "Pulumi_Docker==5.2.0", "loose>=1"]\n'
    )
    assert pyproject_pins(tmp_path / "pyproject.toml") == {"pulumi": "3.272.0", "pulumi-docker": "5.2.0"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"name": "a", "version": "v1.0.0", "module_dir": "a", "package": "x", "typo": "1"},
            "unknown recipe keys",
        ),
        (
            {"name": "a", "version": "v1.0.0", "module_dir": "a", "install": "x", "package": "x"},
            "exactly one",
        ),
        ({"name": "a", "version": "v1.0.0"}, "exactly one"),
        ({"name": "a", "version": "v1.0.0; rm -rf /", "install": "x"}, "not a plain"),
        ({"name": "a", "version": "v1.0.0", "module_dir": "../../etc", "package": "x"}, "not a plain"),
        ({"name": "a", "version": "v1", "module_dir": "a", "package": "x", "plugin": "a"}, "both plugin"),
        ({"name": "a", "version": "v1", "install": "x", "embed_json": {"a.json": "b.json"}}, "embed_module"),
        (
            {"name": "a", "version": "v1", "module_dir": "a", "package": ".", "generator": "gen"},
            "both generator",
        ),
        (
            {"name": "a", "version": "v1", "module_dir": "a", "package": ".", "generates": "s.json"},
            "both generator",
        ),
        (
            {"name": "a", "version": "v1", "install": "x", "generator": "gen", "generates": "s.json"},
            "wrapper module",
        ),
        (
            {
                "name": "a",
                "version": "v1",
                "module_dir": "a",
                "package": ".",
                "generator": "../gen",
                "generates": "s",
            },
            "recipe generator '../gen' is not a plain",
        ),
        (
            {
                "name": "a",
                "version": "v1",
                "module_dir": "a",
                "package": ".",
                "generator": "g",
                "generates": "/s",
            },
            "recipe generates '/s' is not a plain",
        ),
        ({"name": "a", "version": "v1", "install": "x", "tags": "no_compose -race"}, "Go build tags"),
        ({"name": "a", "version": "v1", "install": "x", "tags": "a,,b"}, "Go build tags"),
        ({"name": "a", "version": "v1", "install": "x", "tags": ["no_compose"]}, "tags must be a string"),
    ],
)
def test_parse_recipe_rejects_bad_tables(table: dict[str, object], message: str) -> None:
    with pytest.raises(ToolchainError, match=message):
        parse_recipe({"binary": [table]})


def test_env_puts_bin_first_and_keeps_the_engine_offline(tmp_path: Path) -> None:
    env = toolchain_env(tmp_path, ROOT, "/usr/bin")
    assert env["PATH"].split(os.pathsep) == [str(tmp_path / "bin"), "/usr/bin"]
    assert env["PULUMI_HOME"] == str(tmp_path / "pulumi-home")
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PULUMI_PYTHON_CMD"] == str(ROOT / ".venv" / "bin" / "python")


def test_cache_root_honours_xdg_cache_home(tmp_path: Path) -> None:
    assert (
        toolchain.cache_root({"XDG_CACHE_HOME": str(tmp_path)})
        == tmp_path / "cilium-datapath-lab" / "toolchain"
    )
    assert (
        toolchain.cache_root({"HOME": str(tmp_path)})
        == tmp_path / ".cache" / "cilium-datapath-lab" / "toolchain"
    )


def test_a_built_toolchain_is_complete() -> None:
    """Where `make toolchain` has run: the CLI's version and every provider plugin, offline."""
    found = (
        toolchain.current_dir(os.environ)
        if shutil.which("go") or Path("/usr/local/go/bin/go").exists()
        else None
    )
    if found is None:
        pytest.skip("the toolchain is not built here (make toolchain)")
    toolchain.check_built(load_recipe(), found, dict(os.environ))


def _file_proxy(root: Path) -> Path:
    """A Go module proxy on disk serving one tiny module, example.com/tiny v1.0.0, with a JSON file."""
    import zipfile  # noqa: PLC0415

    at_v = root / "example.com" / "tiny" / "@v"
    at_v.mkdir(parents=True)
    (at_v / "list").write_text("v1.0.0\n")
    (at_v / "v1.0.0.info").write_text('{"Version":"v1.0.0","Time":"2026-01-01T00:00:00Z"}\n')
    (at_v / "v1.0.0.mod").write_text("module example.com/tiny\n")
    with zipfile.ZipFile(at_v / "v1.0.0.zip", "w") as z:
        z.writestr("example.com/tiny@v1.0.0/go.mod", "module example.com/tiny\n")
        z.writestr("example.com/tiny@v1.0.0/tiny.go", "package tiny\n")
        z.writestr("example.com/tiny@v1.0.0/data.json", '{ "a": 1 }\n')
    return root


def _cold_go_env(tmp_path: Path) -> dict[str, str]:
    """A Go environment whose module cache is empty and whose only proxy is the one on disk."""
    return {
        **os.environ,
        "GOPROXY": (_file_proxy(tmp_path / "proxy")).as_uri(),
        "GOMODCACHE": str(tmp_path / "empty-modcache"),
        "GOPATH": str(tmp_path / "gopath"),
        "GOCACHE": str(tmp_path / "gocache"),
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }


@pytest.mark.skipif(
    not (shutil.which("go") or Path("/usr/local/go/bin/go").exists()), reason="no go toolchain here"
)
def test_module_folders_are_found_in_an_empty_module_cache(tmp_path: Path) -> None:
    """A fresh machine: the module an embed comes from is not yet downloaded (was KeyError: 'Dir')."""
    go = toolchain.go_command()
    env = _cold_go_env(tmp_path)
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    (wrapper / "go.mod").write_text("module wrapper\n\ngo 1.22\n\nrequire example.com/tiny v1.0.0\n")
    listed = json.loads(toolchain._run([go, "list", "-m", "-json", "example.com/tiny"], wrapper, env))
    assert "Dir" not in listed  # what the old lookup read, and why it failed on a fresh machine

    by_go_mod = toolchain._module_dir(go, "example.com/tiny", wrapper, env)
    assert by_go_mod == tmp_path / "empty-modcache" / "example.com" / "tiny@v1.0.0"
    assert (by_go_mod / "tiny.go").is_file()
    assert toolchain._module_dir(go, "example.com/tiny@v1.0.0", wrapper, env) == by_go_mod

    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(wrapper / "go.mod", src / "go.mod")
    b = Binary(
        name="x", version="v1.2.3", embed_module="example.com/tiny", embed_json={"out.json": "data.json"}
    )
    toolchain._write_embeds(go, b, src, env)
    assert (src / "out.json").read_text() == '{"a":1}'


@pytest.mark.skipif(
    not (shutil.which("go") or Path("/usr/local/go/bin/go").exists()), reason="no go toolchain here"
)
def test_a_module_the_proxy_lacks_is_named_in_the_error(tmp_path: Path) -> None:
    go = toolchain.go_command()
    env = _cold_go_env(tmp_path)
    with pytest.raises(ToolchainError, match=r"example\.com/absent"):
        toolchain._module_dir(go, "example.com/absent@v1.0.0", tmp_path, env)


def test_a_generator_table_parses() -> None:
    """The control for the refusals above: a wrapper with a generator, its file and build tags."""
    table = {
        "name": "a",
        "version": "5.2.0",
        "module_dir": "a",
        "package": ".",
        "generator": "tfgen",
        "generates": "schema-embed.json",
        "tags": "no_compose,netgo",
    }
    [b] = parse_recipe({"binary": [table]}).binaries
    assert (b.generator, b.generates, b.tags) == ("tfgen", "schema-embed.json", "no_compose,netgo")


def _generator_module(root: Path, generator_writes: bool = True) -> Path:
    """A wrapper module with no dependencies: gen/ writes the file main.go embeds; tagged.go needs `-tags lab`."""
    root.mkdir()
    (root / "go.mod").write_text("module wrapper\n\ngo 1.22\n")
    (root / "gen").mkdir()
    body = 'os.WriteFile(os.Args[1], []byte("made by gen "+version.V), 0o644)' if generator_writes else ""
    (root / "gen" / "main.go").write_text(
        'package main\n\nimport (\n\t"os"\n\n\t"wrapper/version"\n)\n\n'
        f"var _ = version.V\nvar _ = os.Args\n\nfunc main() {{ {body} }}\n"
    )
    (root / "version").mkdir()
    (root / "version" / "version.go").write_text('package version\n\nvar V = "dev"\n')
    (root / "main.go").write_text(
        'package main\n\nimport (\n\t_ "embed"\n\t"fmt"\n)\n\n'
        '//go:embed generated.txt\nvar generated string\n\nvar tag = "untagged"\n\n'
        "func main() { fmt.Println(generated, tag) }\n"
    )
    (root / "tagged.go").write_text('//go:build lab\n\npackage main\n\nfunc init() { tag = "tagged" }\n')
    return root


@pytest.mark.skipif(
    not (shutil.which("go") or Path("/usr/local/go/bin/go").exists()), reason="no go toolchain here"
)
def test_the_generator_runs_before_the_build_with_the_binarys_version_and_tags(tmp_path: Path) -> None:
    """The file the binary embeds is written at build time by the generator, built with the same
    -X version and -tags; the wrapper module in the recipe stays untouched."""
    go = toolchain.go_command()
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    _generator_module(recipe_dir / "wrapper")
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    b = Binary(
        name="w",
        version="1.2.3",
        module_dir="wrapper",
        package=".",
        version_var="wrapper/version.V",
        generator="gen",
        generates="generated.txt",
        tags="lab",
    )
    work = tmp_path / "work"
    work.mkdir()
    toolchain.build_binary(go, b, recipe_dir, work, tmp_path / "w", env)
    ran = toolchain._run([str(tmp_path / "w")], tmp_path, env)
    assert ran.strip() == "made by gen 1.2.3 tagged"
    assert not (recipe_dir / "wrapper" / "generated.txt").exists()


@pytest.mark.skipif(
    not (shutil.which("go") or Path("/usr/local/go/bin/go").exists()), reason="no go toolchain here"
)
def test_a_generator_that_writes_nothing_stops_the_build(tmp_path: Path) -> None:
    go = toolchain.go_command()
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    _generator_module(recipe_dir / "wrapper", generator_writes=False)
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    b = Binary(
        name="w", version="1", module_dir="wrapper", package=".", generator="gen", generates="generated.txt"
    )
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ToolchainError, match=r"generator gen wrote no generated\.txt"):
        toolchain.build_binary(go, b, recipe_dir, work, tmp_path / "w", env)


def test_only_a_plugin_can_be_an_own_build() -> None:
    table = {"name": "a", "version": "v1", "install": "x", "own_build": "ours"}
    with pytest.raises(ToolchainError, match="own_build is a sentence about a provider plugin"):
        parse_recipe({"binary": [table]})


def test_make_toolchain_says_which_plugins_are_the_projects_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = load_recipe()
    own = {b.plugin: b.own_build for b in recipe.binaries if b.own_build}
    assert set(own) == {"command", "docker"} and all(
        "not Pulumi's official binary" in t for t in own.values()
    )
    toolchain.say_own_builds(recipe, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"[toolchain] plugin command 1.2.1 in {tmp_path / 'pulumi-home'}: {own['command']}",
        f"[toolchain] plugin docker 5.2.0 in {tmp_path / 'pulumi-home'}: {own['docker']}",
    ]
