"""Mutation testing over the fast tier, one module at a time: `make mutation` (issue 10).

Why: a suite that passes says nothing about the bugs it would miss. mutmut (3.x) makes one
small change at a time in a module (a flipped comparison, a dropped condition, another
constant) and runs that module's fast tests (bench/mutation/modules.toml) against it; a change
no test notices is a surviving mutant. Each survivor is either killed by a new test or listed,
with why it cannot change behaviour, in bench/mutation/equivalent.md.

Every module is mutated in a copy of the project of its own (under --work), so the working
tree never sees `mutants/` and modules never share stale results. The score per module is
killed / (all mutants - listed equivalent ones); the run exits 1 when a module is under the
goal, when a survivor is not listed, or when a listed one no longer survives.

    python bench/mutation/run.py [MODULE ...] [--jobs N] [--rev REV] [--work DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MODULES_FILE = HERE / "modules.toml"
EQUIVALENT_FILE = HERE / "equivalent.md"
# Detected: a test failed, or the mutant made the tests hang or crash.
KILLED = (
    "killed",
    "timeout",
    "segfault",
    "caught by type check",
    RECHECK_KILLED := "killed by the full selection",
)
# A survivor's second chance to be caught: its module's whole test selection, in a fresh pytest.
RECHECK_TIMEOUT = 900
# Named in backquotes in equivalent.md: `lab.routes.x_route_line__mutmut_3`.
_EQUIVALENT_RE = re.compile(r"`([\w.ǁ]+__mutmut_\d+)`")
_RESULT_RE = re.compile(r"^\s+([\w.ǁ]+__mutmut_\d+): (.+)$")
PYPROJECT = ROOT / "pyproject.toml"
# What the tests read besides the project's packages (copied next to them in `mutants/`).
ALSO_COPY = (
    "__main__.py",
    "Pulumi.yaml",
    "README.md",
    "Makefile",
    "stacks",
    "cilium",
    "frr",
    "scripts",
    "bench",
    ".github",
    ".ci",
)


@dataclass
class Score:
    module: str
    statuses: dict[str, str]  # mutant name -> mutmut's status
    equivalent: set[str]
    seconds: float
    counts: Counter[str] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = Counter(self.statuses.values())

    @property
    def total(self) -> int:
        return len(self.statuses)

    @property
    def killed(self) -> int:
        return sum(1 for s in self.statuses.values() if s in KILLED)

    @property
    def survivors(self) -> list[str]:
        return sorted(name for name, s in self.statuses.items() if s not in KILLED)

    @property
    def listed(self) -> list[str]:
        """Survivors equivalent.md explains."""
        return [n for n in self.survivors if n in self.equivalent]

    @property
    def unexplained(self) -> list[str]:
        return [n for n in self.survivors if n not in self.equivalent]

    @property
    def stale(self) -> list[str]:
        """Listed as equivalent but killed now, or no longer a mutant of this module."""
        return sorted(n for n in self.equivalent if self.statuses.get(n, "killed") in KILLED)

    @property
    def score(self) -> float:
        counted = self.total - len(self.listed)
        return self.killed / counted if counted else 1.0


def module_prefix(module: str) -> str:
    """mutmut's name prefix for a module's mutants: lab/routes.py -> lab.routes."""
    return module.removesuffix(".py").replace("/", ".")


def source_packages(pyproject: Path = PYPROJECT) -> list[str]:
    """The project's top-level packages, as pyproject.toml's [tool.setuptools] lists them.

    mutmut copies its `source_paths` into `mutants/` and puts that copy first on the tests'
    sys.path, keeping the original out of it; a package left out of source_paths cannot be
    mutated (mutmut reports no mutants) and cannot be imported by the tests (host.preflight
    imports lab, supply.chart imports supply.toolchain). Read from the one list the project
    keeps, so a package added or moved (lab/ -> supply/, host/) is mutated and imported with no
    second list to update here."""
    data = tomllib.loads(pyproject.read_text())
    listed = data["tool"]["setuptools"]["packages"]
    return sorted({name.split(".", 1)[0] for name in listed})


@dataclass(frozen=True)
class Selection:
    """A module's tests: file globs, and test IDs left out of them (`deselect`, each with its
    reason in modules.toml: a test that can never see a mutant and fails on the mutated copy)."""

    patterns: tuple[str, ...]
    deselect: tuple[str, ...] = ()


def load_modules() -> tuple[float, dict[str, Selection]]:
    data = tomllib.loads(MODULES_FILE.read_text())
    return float(data["goal"]), {
        name: Selection(tuple(m["tests"]), tuple(m.get("deselect", ())))
        for name, m in data["modules"].items()
    }


def load_equivalent(text: str) -> set[str]:
    return set(_EQUIVALENT_RE.findall(text))


def parse_results(text: str, prefix: str) -> dict[str, str]:
    """`mutmut results --all` lines (`    name: status`) for one module's mutants."""
    out = {}
    for line in text.splitlines():
        m = _RESULT_RE.match(line)
        if m and m.group(1).startswith(prefix + "."):
            out[m.group(1)] = m.group(2).strip()
    return out


def copy_project(dest: Path, rev: str | None) -> None:
    """The project as committed at `rev`, or the working tree (tracked and new files) without it."""
    if rev is not None:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
        return
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def mutmut_table(module: str, tests: Sequence[str], packages: Sequence[str] | None = None) -> str:
    """[tool.mutmut] for one module: mutate only it, run only its tests, each test process on
    the fast tier (the plugin that makes root-only tests skip themselves). Every package of the
    project is a source path (source_packages); `module` must lie in one of them."""
    packages = list(source_packages() if packages is None else packages)
    if Path(module).parts[0] not in packages:
        raise SystemExit(f"{module} is in none of the project's packages {packages} (pyproject.toml)")
    lists = {
        "source_paths": packages,
        "only_mutate": [module],
        "also_copy": list(ALSO_COPY),
        "pytest_add_cli_args": ["-p", "bench.mutation.fast_tier", "-p", "no:cacheprovider"],
        "pytest_add_cli_args_test_selection": list(tests),
    }
    # forkserver: each mutant forks from a process that never ran a test; forked from one that
    # had, the Pulumi mock tests' gRPC threads deadlock the child (it waits with no CPU use,
    # so mutmut's CPU-time limit never fires).
    lines = ["", "[tool.mutmut]", "use_git_change_detection = false", 'process_isolation = "forkserver"']
    lines += [f"{key} = [{', '.join(_toml_str(v) for v in value)}]" for key, value in lists.items()]
    return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    if any(c in value for c in '"\\\n'):
        raise ValueError(f"unexpected character in {value!r}")
    return f'"{value}"'


def expand_tests(copy: Path, selection: Selection) -> list[str]:
    """pytest's arguments for a selection: the matching test files, then `--deselect=<id>` for each
    test left out (mutmut drops deselected IDs from its runs; the recheck passes them to pytest)."""
    patterns = selection.patterns
    found = sorted({str(p.relative_to(copy)) for pattern in patterns for p in copy.glob(pattern)})
    if not found:
        raise SystemExit(f"no test file matches {list(patterns)}")
    for test_id in selection.deselect:
        file, _, name = test_id.partition("::")
        # pytest ignores a --deselect that names nothing: a renamed test would silently run again.
        if file not in found or not re.search(
            rf"^def {re.escape(name.split('[')[0])}\(", (copy / file).read_text(), re.M
        ):
            raise SystemExit(f"deselect {test_id!r}: no such test in the selection {found}")
    return found + [f"--deselect={test_id}" for test_id in selection.deselect]


def link_shared(copy: Path) -> None:
    """The workspace's ../shared beside the copy mutmut runs the tests from (`<copy>/mutants`).

    Tests find the shared captures at ../shared from the project root, and mutmut runs them
    from `<copy>/mutants/tests`; without the link they skip, and every mutant only those
    captures would catch survives unnoticed."""
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (copy / "shared").symlink_to(shared, target_is_directory=True)


def run_module(
    module: str, selection: Selection, work: Path, jobs: int, rev: str | None, only: Sequence[str] = ()
) -> Score:
    """Mutate `module` in a fresh copy under `work`, then judge it; `only`: mutant name globs to run
    (the rest of the module's mutants are left out of the score)."""
    copy = work / module_prefix(module)
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    copy_project(copy, rev)
    link_shared(copy)
    tests = expand_tests(copy, selection)
    # The copy's own package list: with --rev, the packages of that commit.
    table = mutmut_table(module, tests, source_packages(copy / "pyproject.toml"))
    with (copy / "pyproject.toml").open("a") as handle:
        handle.write(table)
    log = copy / "mutmut-run.log"
    files = [t for t in tests if not t.startswith("-")]
    print(
        f"== {module}: {len(files)} test files, {len(tests) - len(files)} tests deselected, log {log}",
        flush=True,
    )
    started = time.monotonic()
    with log.open("wb") as out:
        ran = subprocess.run(
            ["nice", "-n", "19", str(MUTMUT), "run", "--max-children", str(jobs), *only],
            cwd=copy,
            env=_env(copy),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if ran.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"mutmut failed on {module} (exit {ran.returncode}):\n{tail}")
    return judge(module, copy, tests, only, started, jobs)


MUTMUT = Path(sys.executable).with_name("mutmut")


def _env(copy: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(copy)}


def judge(
    module: str, copy: Path, tests: Sequence[str], only: Sequence[str], started: float, jobs: int = 1
) -> Score:
    """The score of a mutated copy: mutmut's results, each survivor rechecked with the whole
    selection (recheck), the listed equivalents left out, and every survivor's diff written."""
    results = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        check=True,
        cwd=copy,
        env=_env(copy),
        capture_output=True,
        text=True,
    )
    statuses = parse_results(results.stdout, module_prefix(module))
    if only:
        statuses = {n: s for n, s in statuses.items() if any(fnmatch.fnmatchcase(n, g) for g in only)}
    if not statuses:
        raise SystemExit(f"mutmut reported no mutants for {module}:\n{results.stdout}{results.stderr}")
    survivors = sorted(n for n, status in statuses.items() if status not in KILLED)
    if survivors:
        print(f"   rechecking {len(survivors)} survivors with the whole selection", flush=True)
        check_unmutated(copy, tests, module, "before the rechecks")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        caught = pool.map(lambda name: recheck(copy, tests, name), survivors)
        for name, killed in zip(survivors, caught, strict=True):
            if killed:
                statuses[name] = RECHECK_KILLED
    if survivors:
        check_unmutated(copy, tests, module, "after the rechecks")
    listed = {
        n
        for n in load_equivalent(EQUIVALENT_FILE.read_text())
        if n.startswith(module_prefix(module) + ".") and (not only or n in statuses)
    }
    score = Score(module, statuses, listed, time.monotonic() - started)
    write_survivors(copy, MUTMUT, _env(copy), score)
    return score


def refresh_tests(copy: Path, module: str) -> None:
    """Give an already mutated copy the working tree's tests, for judging its survivors again
    after new tests were written. Only while the mutated module is unchanged: the mutants are of
    that source, and a test added since can only catch more of them."""
    if (copy / module).read_bytes() != (ROOT / module).read_bytes():
        raise SystemExit(f"{module} changed since {copy} was mutated: run the module again")
    for target in (copy / "tests", copy / "mutants" / "tests"):
        shutil.rmtree(target)
        shutil.copytree(ROOT / "tests", target, ignore=shutil.ignore_patterns("__pycache__"))


def check_unmutated(copy: Path, tests: Sequence[str], module: str, when: str) -> None:
    """The whole selection must pass with no mutant switched on, before the rechecks and after.

    Why: a recheck counts any failure as a kill. A selection that fails unmutated in the copy (a
    test that needs what the copy lacks), or that starts to fail because a mutant left state
    behind (a stand-in build in a cache a later test finds), would count every survivor as
    killed: 224 false kills of supply/node_image.py once, before fast_tier gave each run its own
    HOME."""
    if recheck(copy, tests, f"{module_prefix(module)}.x__no_such_function__mutmut_0"):
        raise SystemExit(
            f"{module}: the selection fails in {copy} with no mutant ({when}); no survivor can be judged"
        )


def recheck(copy: Path, tests: Sequence[str], name: str) -> bool:
    """Whether the mutant fails the module's whole test selection, run as a fresh pytest.

    Why: mutmut runs a mutant only against the tests it saw call the mutated function, and it
    misses callers it cannot see: a test that runs the code in a subprocess (the CLI) and code
    reached from inside a generator that another generator drives. Such a mutant counts as
    survived although a selected test fails on it. The recheck runs every selected test with the
    mutant switched on (mutmut's trampolines read MUTANT_UNDER_TEST), so a survivor is one no
    selected test catches. A hang counts as caught, as in mutmut."""
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    argv += ["-p", "bench.mutation.fast_tier", *tests]
    try:
        ran = subprocess.run(
            ["nice", "-n", "19", *argv],
            cwd=copy / "mutants",
            env={**_env(copy), "MUTANT_UNDER_TEST": name},
            capture_output=True,
            check=False,
            timeout=RECHECK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return True
    return ran.returncode not in (0, 5)  # 5: no test collected, which proves nothing


def write_survivors(copy: Path, mutmut: Path, env: dict[str, str], score: Score) -> None:
    """Each survivor's diff (`mutmut show`), for deciding: a new test, or equivalent.md."""
    with (copy / "survivors.diff").open("w") as out:
        for name in score.survivors:
            shown = subprocess.run(
                [str(mutmut), "show", name], check=False, cwd=copy, env=env, capture_output=True, text=True
            )
            tag = "listed equivalent" if name in score.equivalent else score.statuses[name]
            out.write(f"### {name} ({tag})\n{shown.stdout}\n")


def table(scores: Sequence[Score]) -> str:
    head = "| module | mutants | killed | equivalent | survived | score |\n|---|---:|---:|---:|---:|---:|"
    rows = [
        f"| `{s.module}` | {s.total} | {s.killed} | {len(s.listed)} | {len(s.unexplained)} | {s.score:.1%} |"
        for s in scores
    ]
    return "\n".join([head, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    goal, modules = load_modules()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"default: all, in order ({', '.join(modules)})")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--rev", help="mutate this commit (git archive) instead of the working tree")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cdl-mutation")
    parser.add_argument(
        "--mutants",
        nargs="+",
        default=[],
        metavar="GLOB",
        help="only these mutants (e.g. 'lab.config.x__as_asn*'): a quick recheck, not a score",
    )
    parser.add_argument(
        "--judge-only",
        action="store_true",
        help="no new mutmut run: judge the copies already under --work with the working tree's tests",
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        parser.error(f"not in {MODULES_FILE.name}: {unknown}")
    scores = []
    for module in args.modules or list(modules):
        if args.judge_only:
            copy = args.work / module_prefix(module)
            refresh_tests(copy, module)
            tests = expand_tests(copy, modules[module])
            score = judge(module, copy, tests, args.mutants, time.monotonic(), args.jobs)
        else:
            score = run_module(module, modules[module], args.work, args.jobs, args.rev, args.mutants)
        scores.append(score)
        print(
            f"   {module}: {score.killed}/{score.total} killed, {len(score.listed)} equivalent, "
            f"score {score.score:.1%} in {score.seconds:.0f}s {dict(score.counts)}",
            flush=True,
        )
        for name in score.unexplained:
            print(f"   survived, not in {EQUIVALENT_FILE.name}: {name}")
        for name in score.stale:
            print(f"   listed in {EQUIVALENT_FILE.name} but not surviving: {name}")
    print()
    print(table(scores))
    print(f"\ngoal: >= {goal:.0%} per module; survivors' diffs: {args.work}/<module>/survivors.diff")
    bad = [s for s in scores if s.score < goal or s.unexplained or s.stale]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
