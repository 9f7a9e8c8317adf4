"""bench/mutation/run.py's bookkeeping: what counts as killed, explained, unexplained or stale."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "mutation"))
import run

RESULTS = """\
    lab.routes.x_route_line__mutmut_1: killed
    lab.routes.x_route_line__mutmut_2: survived
    lab.routes.xǁRouteTableǁdeclared__mutmut_3: survived
    lab.routes.x_bgp_routes__mutmut_4: timeout
    lab.routes.x_bgp_routes__mutmut_5: no tests
    lab.routesx.x_other__mutmut_1: survived
    verify.parsers.x__json__mutmut_1: survived
"""


def test_results_are_read_for_the_module_only() -> None:
    got = run.parse_results(RESULTS, run.module_prefix("lab/routes.py"))
    assert got == {
        "lab.routes.x_route_line__mutmut_1": "killed",
        "lab.routes.x_route_line__mutmut_2": "survived",
        "lab.routes.xǁRouteTableǁdeclared__mutmut_3": "survived",
        "lab.routes.x_bgp_routes__mutmut_4": "timeout",
        "lab.routes.x_bgp_routes__mutmut_5": "no tests",
    }


def test_the_score_leaves_out_listed_equivalents_and_counts_untested_as_survived() -> None:
    statuses = run.parse_results(RESULTS, "lab.routes")
    listed = run.load_equivalent(
        "- `lab.routes.x_route_line__mutmut_2`: why.\n- `lab.routes.x_route_line__mutmut_1`: stale.\n"
    )
    score = run.Score("lab/routes.py", statuses, listed, 1.0)
    assert (score.total, score.killed) == (5, 2)  # killed and timeout
    assert score.listed == ["lab.routes.x_route_line__mutmut_2"]
    assert score.unexplained == [
        "lab.routes.x_bgp_routes__mutmut_5",
        "lab.routes.xǁRouteTableǁdeclared__mutmut_3",
    ]
    assert score.stale == ["lab.routes.x_route_line__mutmut_1"]  # listed, but a test kills it now
    assert score.score == pytest.approx(2 / 4)


def test_every_name_in_backquotes_of_equivalent_md_is_read() -> None:
    text = "- `a.b.x_f__mutmut_1`, `a.b.x_f__mutmut_2`: why\n  see `not_a_mutant` and `a.b.xǁCǁm__mutmut_9`."
    assert run.load_equivalent(text) == {"a.b.x_f__mutmut_1", "a.b.x_f__mutmut_2", "a.b.xǁCǁm__mutmut_9"}


def test_the_listed_equivalents_are_mutants_of_the_mutated_modules() -> None:
    _, modules = run.load_modules()
    prefixes = tuple(run.module_prefix(m) + "." for m in modules)
    assert all(name.startswith(prefixes) for name in run.load_equivalent(run.EQUIVALENT_FILE.read_text()))


def test_the_mutmut_table_is_toml_for_one_module() -> None:
    table = tomllib.loads(run.mutmut_table("lab/routes.py", ["tests/test_static_routes.py"]))["tool"][
        "mutmut"
    ]
    assert table["only_mutate"] == ["lab/routes.py"]
    assert table["pytest_add_cli_args_test_selection"] == ["tests/test_static_routes.py"]
    assert table["process_isolation"] == "forkserver"
    assert table["pytest_add_cli_args"][:2] == ["-p", "bench.mutation.fast_tier"]
    with pytest.raises(ValueError, match="unexpected character"):
        run.mutmut_table('lab/"x".py', [])


def test_the_copy_sees_the_shared_captures_where_the_tests_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "shared" / "testdata" / "pcaps").mkdir(parents=True)
    monkeypatch.setattr(run, "ROOT", workspace / "project")
    copy = tmp_path / "work" / "verify.pcap"
    (copy / "mutants" / "tests").mkdir(parents=True)
    run.link_shared(copy)
    # tests/test_pcap.py's SHARED, seen from the copy mutmut runs: <test file>.parent.parent.parent
    test_file = copy / "mutants" / "tests" / "test_pcap.py"
    assert (test_file.parent.parent.parent / "shared" / "testdata" / "pcaps").is_dir()


def test_without_a_shared_folder_nothing_is_linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "ROOT", tmp_path / "project")
    run.link_shared(tmp_path)
    assert not (tmp_path / "shared").exists()


def _fake_copy(tmp_path: Path) -> Path:
    """A copy as mutmut leaves it: `mutants/` with the fast-tier plugin and one test that fails only
    under the mutant `m.x__f__mutmut_1`, and only when run in a subprocess (the case mutmut misses)."""
    copy = tmp_path / "copy"
    plugin = copy / "mutants" / "bench" / "mutation"
    plugin.mkdir(parents=True)
    for part in (copy / "mutants" / "bench", plugin):
        (part / "__init__.py").write_text("")
    (plugin / "fast_tier.py").write_text((Path(run.__file__).parent / "fast_tier.py").read_text())
    tests = copy / "mutants" / "tests"
    tests.mkdir()
    (tests / "test_cli.py").write_text(
        "import os, subprocess, sys\n"
        "def test_cli():\n"
        '    code = \'import os, sys; sys.exit(os.environ.get("MUTANT_UNDER_TEST") == "m.x__f__mutmut_1")\'\n'
        "    assert subprocess.run([sys.executable, '-c', code]).returncode == 0\n"
    )
    return copy


def test_recheck_catches_what_only_a_subprocess_test_sees(tmp_path: Path) -> None:
    copy = _fake_copy(tmp_path)
    assert run.recheck(copy, ["tests/test_cli.py"], "m.x__f__mutmut_1") is True
    assert run.recheck(copy, ["tests/test_cli.py"], "m.x__f__mutmut_2") is False


def test_recheck_with_no_test_collected_proves_nothing(tmp_path: Path) -> None:
    copy = _fake_copy(tmp_path)
    (copy / "mutants" / "tests" / "test_none.py").write_text("x = 1\n")
    assert run.recheck(copy, ["tests/test_none.py"], "m.x__f__mutmut_1") is False


def test_a_rechecked_kill_counts_as_killed() -> None:
    score = run.Score(
        "m.py", {"m.x__f__mutmut_1": run.RECHECK_KILLED, "m.x__f__mutmut_2": "survived"}, set(), 1.0
    )
    assert score.killed == 1 and score.survivors == ["m.x__f__mutmut_2"]


def test_refreshing_tests_needs_the_mutated_source_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, copy = tmp_path / "root", tmp_path / "copy"
    for base in (root, copy, copy / "mutants"):
        (base / "tests").mkdir(parents=True)
    (root / "m.py").write_text("x = 1\n")
    (copy / "m.py").write_text("x = 1\n")
    (root / "tests" / "test_new.py").write_text("def test_new(): pass\n")
    monkeypatch.setattr(run, "ROOT", root)
    run.refresh_tests(copy, "m.py")
    assert (copy / "mutants" / "tests" / "test_new.py").is_file() and (
        copy / "tests" / "test_new.py"
    ).is_file()
    (root / "m.py").write_text("x = 2\n")
    with pytest.raises(SystemExit, match="changed since"):
        run.refresh_tests(copy, "m.py")


def test_every_package_of_the_project_is_a_source_path_and_every_module_lies_in_one() -> None:
    """mutmut mutates and imports only its source_paths: with lab and verify alone, host.preflight
    (which imports lab), supply.chart (supply.toolchain) and engine/ could not be mutated."""
    packages = run.source_packages()
    assert packages == ["compare", "components", "engine", "host", "lab", "supply", "verify"]
    on_disk = sorted(p.parent.name for p in run.ROOT.glob("*/__init__.py"))
    assert packages == on_disk  # a package pyproject.toml forgot would be missing from `mutants/`
    assert not set(packages) & set(run.ALSO_COPY)
    _, modules = run.load_modules()
    for module in modules:
        table = tomllib.loads(run.mutmut_table(module, ["tests/test_x.py"]))["tool"]["mutmut"]
        assert table["source_paths"] == packages and table["only_mutate"] == [module]


def test_the_source_paths_are_read_from_the_copys_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.setuptools]\npackages = ["lab", "verify", "verify.remote", "supply"]\n')
    assert run.source_packages(pyproject) == ["lab", "supply", "verify"]
    table = tomllib.loads(run.mutmut_table("supply/chart.py", [], run.source_packages(pyproject)))
    assert table["tool"]["mutmut"]["source_paths"] == ["lab", "supply", "verify"]
    with pytest.raises(SystemExit, match="in none of the project's packages"):
        run.mutmut_table("host/preflight.py", [], run.source_packages(pyproject))


def test_a_selection_deselects_tests_by_id_and_refuses_an_id_that_names_nothing(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_runs_as_a_script():\n    pass\n")
    (tmp_path / "tests" / "test_b.py").write_text("def test_other():\n    pass\n")
    selection = run.Selection(("tests/test_*.py",), ("tests/test_a.py::test_runs_as_a_script",))
    assert run.expand_tests(tmp_path, selection) == [
        "tests/test_a.py",
        "tests/test_b.py",
        "--deselect=tests/test_a.py::test_runs_as_a_script",
    ]
    parametrized = run.Selection(("tests/test_a.py",), ("tests/test_a.py::test_runs_as_a_script[x]",))
    assert (
        run.expand_tests(tmp_path, parametrized)[-1] == "--deselect=tests/test_a.py::test_runs_as_a_script[x]"
    )
    for stale in ("tests/test_a.py::test_renamed", "tests/test_c.py::test_runs_as_a_script"):
        with pytest.raises(SystemExit, match="no such test in the selection"):
            run.expand_tests(tmp_path, run.Selection(("tests/test_*.py",), (stale,)))
    table = tomllib.loads(run.mutmut_table("lab/routes.py", run.expand_tests(tmp_path, selection)))
    assert table["tool"]["mutmut"]["pytest_add_cli_args_test_selection"][-1].startswith("--deselect=")


def test_a_deselected_test_is_left_out_of_the_recheck(tmp_path: Path) -> None:
    """test_cli fails under this mutant (test_recheck_catches_what_only_a_subprocess_test_sees);
    deselected, only test_kept runs, and it passes."""
    copy = _fake_copy(tmp_path)
    (copy / "mutants" / "tests" / "test_kept.py").write_text("def test_kept():\n    pass\n")
    tests = ["tests/test_cli.py", "tests/test_kept.py", "--deselect=tests/test_cli.py::test_cli"]
    assert run.recheck(copy, tests, "m.x__f__mutmut_1") is False


def test_every_deselected_test_of_modules_toml_exists() -> None:
    _, modules = run.load_modules()
    for selection in modules.values():
        if selection.deselect:
            args = run.expand_tests(run.ROOT, selection)
            assert len([a for a in args if a.startswith("--deselect=")]) == len(selection.deselect)


# --- bench/mutation/shell.py: hand mutants of the shell scripts ------------------------------------

import shell  # noqa: E402 (bench/mutation is on sys.path above)

SHELL_DATA = """
goal = 0.9
[[script]]
path = "s.sh"
tests = ["tests/test_s.py"]
[[mutant]]
id = "s-boundary"
script = "s.sh"
old = "((n < 108)) || exit 1"
new = "((n <= 108)) || exit 1"
why = "boundary"
"""


def test_a_shell_mutant_replaces_exactly_the_one_line_it_names_at_its_indentation() -> None:
    _, [script] = shell.load(SHELL_DATA)
    [mutant] = script.mutants
    source = "f() {\n    ((n < 108)) || exit 1\n}\n"
    assert shell.apply(source, mutant) == "f() {\n    ((n <= 108)) || exit 1\n}\n"
    for count in (0, 2):
        with pytest.raises(ValueError, match=f"{count} lines of s.sh read"):
            shell.apply("((n < 108)) || exit 1\n" * count, mutant)
    second = shell.Mutant("s-2", "s.sh", "x=1", "x=2", "why", occurrence=2)
    assert shell.apply("x=1\n  x=1\n", second) == "x=1\n  x=2\n"
    with pytest.raises(ValueError, match="1 lines"):
        shell.apply("x=1\n", second)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('new = "((n <= 108)) || exit 1"', 'new = "((n < 108)) || exit 1"'), "a changed line"),
        (('why = "boundary"', 'why = " "'), "a reason"),
        (('id = "s-boundary"', 'id = "S boundary"'), "a plain id"),
        (('script = "s.sh"\nold', 'script = "t.sh"\nold'), "no \\[\\[script\\]\\] table"),
    ],
)
def test_the_shell_mutant_data_is_refused_when_a_mutant_is_not_one(
    change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        shell.load(SHELL_DATA.replace(*change))
    with pytest.raises(ValueError, match="used twice"):
        shell.load(SHELL_DATA + SHELL_DATA[SHELL_DATA.index("[[mutant]]") :])


def test_every_shell_mutant_lands_on_one_line_of_its_script_and_still_parses(tmp_path: Path) -> None:
    """The scripts change: a mutant whose line moved or went must be noticed here, not at run time."""
    _, scripts = shell.load(shell.MUTANTS_FILE.read_text())
    assert {s.path for s in scripts} == {
        "engine/dockerd.sh",
        "supply/images/kind-node/files/kind/bin/docker-dns.sh",
    }
    for script in scripts:
        assert script.mutants and all((run.ROOT / t).is_file() for t in script.tests)
        source = (run.ROOT / script.path).read_text()
        for mutant in script.mutants:
            mutated = tmp_path / f"{mutant.id}.sh"
            mutated.write_text(shell.apply(source, mutant))
            assert mutated.read_text() != source
            parsed = subprocess.run(["bash", "-n", str(mutated)], capture_output=True, text=True, check=False)
            assert parsed.returncode == 0, (mutant.id, parsed.stderr)


def test_the_listed_shell_equivalents_are_shell_mutants() -> None:
    _, scripts = shell.load(shell.MUTANTS_FILE.read_text())
    ids = {m.id for s in scripts for m in s.mutants}
    listed = shell.load_equivalent(run.EQUIVALENT_FILE.read_text())
    assert listed <= ids
    assert shell.load_equivalent("- `shell:dns-apply-flush`, `shell:x`: why; not `lab.x__mutmut_1`") == {
        "dns-apply-flush",
        "x",
    }


def test_a_test_run_that_leaves_a_process_behind_has_it_reported_and_ended(tmp_path: Path) -> None:
    """What a mutant of dockerd.sh's stop would leave: a process started by the tests, outliving them."""
    if not shell._can_unshare():
        pytest.skip("needs root and unshare (a mount namespace of the run's own)")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_leaves.py").write_text(
        "import subprocess\n"
        "def test_leaves():\n"
        "    subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
    )
    outcome = shell.run_tests(tmp_path, ["tests/test_leaves.py"], tmp_path / "home", timeout=120)
    assert (outcome.status, outcome.summary) == ("survived", "1 passed")
    [left] = outcome.leftovers
    pid = int(left.split()[0])
    assert left.endswith("sleep 300 ")
    assert (
        not Path(f"/proc/{pid}").exists()
        or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    )


def test_a_selection_that_fails_with_no_mutant_stops_the_judging(tmp_path: Path) -> None:
    """Else every survivor's recheck fails too, and counts as a kill."""
    copy = _fake_copy(tmp_path)
    run.check_unmutated(copy, ["tests/test_cli.py"], "m.py", "before the rechecks")  # passes unmutated
    (copy / "mutants" / "tests" / "test_broken.py").write_text("def test_broken():\n    assert False\n")
    with pytest.raises(
        SystemExit, match=r"m\.py: the selection fails in .* with no mutant \(after the rechecks\)"
    ):
        run.check_unmutated(copy, ["tests/test_broken.py"], "m.py", "after the rechecks")


def test_each_fast_tier_session_has_a_home_of_its_own_removed_after(tmp_path: Path) -> None:
    """A mutant that writes under HOME (a build falling back to the process's environment) must not
    leave anything the next run finds."""
    copy = _fake_copy(tmp_path)
    seen = tmp_path / "seen"
    (copy / "mutants" / "tests" / "test_home.py").write_text(
        "import os\n"
        "from pathlib import Path\n"
        "def test_home():\n"
        "    home = Path(os.environ['HOME'])\n"
        "    assert os.environ['XDG_CACHE_HOME'] == str(home / '.cache')\n"
        "    (home / '.cache').mkdir()\n"
        "    (home / '.cache' / 'left').write_text('by a mutant')\n"
        f"    Path({str(seen)!r}).open('a').write(str(home) + '\\n')\n"
    )
    for _ in range(2):
        assert run.recheck(copy, ["tests/test_home.py"], "m.x__f__mutmut_9") is False
    homes = seen.read_text().split()
    assert len(set(homes)) == 2 and str(copy) not in homes
    assert not any(Path(h).exists() for h in homes)
