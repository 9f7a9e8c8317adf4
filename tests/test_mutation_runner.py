"""bench/mutation/run.py's bookkeeping: what counts as killed, explained, unexplained or stale."""

from __future__ import annotations

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
