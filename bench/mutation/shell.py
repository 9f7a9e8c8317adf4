"""Hand mutation of the project's shell scripts, which mutmut cannot mutate (issue 19).

Why: engine/dockerd.sh and the node's docker-dns.sh guard what a Python test cannot reach (a PID
that is not ours, a path outside the engine's folder, a boundary of a unix socket path), and a
test suite that passes says nothing about which of those guards it would miss. Each mutant in
bench/mutation/shell_mutants.toml is one exact line substitution with the reason it is a plausible
bug (a boundary, a dropped guard, a wrong path, a missing `--` or quote). For each script the
project is copied once (as run.py copies it); every mutant is applied to the copy's script alone,
checked to still parse (`bash -n`), and the script's tests run against the copy (the tests find
the script beside themselves). A test failing or hanging kills the mutant; all passing, it
survives. A survivor is killed by a new test or listed, with why it cannot change behaviour, in
bench/mutation/equivalent.md (`shell:<id>`). Exit 1 on an unlisted survivor, on a listed one that
no longer survives, and on a script under the goal.

The tests of the real engine and of the node's DNS in network namespaces need root, and run as
root here: the harness refuses to score a script whose tests skipped (a mutant only those tests
catch would pass as a survivor). Each run is kept from the machine and from the next run: a fresh
copy of the project (a relative engine folder a mutant accepted lands there), HOME and
XDG_CACHE_HOME of its own (no mutant reaches the engine a user started under ~/.cache), and mount
and network namespaces of their own (unshare -m -n) with a tmpfs on /tmp, where the tests make
their engine folders: `/tmp/has space` (accepted by a mutant), the bridge and route of an engine a
broken `stop` left, vanish with the run. The processes a mutant leaves behind (that dockerd, its
containerd and containers) are found by the run's mount namespace, reported, and ended by PID.

    python bench/mutation/shell.py [SCRIPT ...] [--only ID ...] [--work DIR] [--rev REV]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402 (the project copy and the equivalents are run.py's)

MUTANTS_FILE = HERE / "shell_mutants.toml"
# Each test run gets a /tmp of its own (a tmpfs in its mount namespace), so the work dir lies
# elsewhere: under /tmp, the run's own /tmp would hide it.
MACHINE_TMP = Path("/tmp")  # noqa: S108 (the mount point replaced in each run, no file is made here)
DEFAULT_WORK = Path("/var/tmp/cdl-mutation-shell")  # noqa: S108 (the harness's own folder, made 0755 by root)
# One test run per mutant; the real engine's tests take a few minutes on a loaded machine.
TIMEOUT = 1800
# Named in backquotes in equivalent.md: `shell:dockerd-socket-boundary`.
_EQUIVALENT_RE = re.compile(r"`shell:([a-z0-9-]+)`")
_PYTEST_SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|error|errors|deselected)")


@dataclass(frozen=True)
class Mutant:
    id: str
    script: str
    old: str
    new: str
    why: str
    occurrence: int = 0  # which of several lines that read `old` (1 = the first); 0: it is the only one


@dataclass(frozen=True)
class Script:
    path: str
    tests: tuple[str, ...]
    mutants: tuple[Mutant, ...]


def load(text: str) -> tuple[float, list[Script]]:
    """shell_mutants.toml: a goal, [[script]] tables (path, tests) and [[mutant]] tables (id, script,
    old, new, why); every mutant names a listed script, ids are unique, old and new differ."""
    data = tomllib.loads(text)
    mutants = [Mutant(**m) for m in data.get("mutant", [])]
    ids = [m.id for m in mutants]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a mutant id is used twice: {sorted(i for i in ids if ids.count(i) > 1)}")
    scripts = []
    for table in data["script"]:
        mine = tuple(m for m in mutants if m.script == table["path"])
        scripts.append(Script(table["path"], tuple(table["tests"]), mine))
    orphans = {m.script for m in mutants} - {s.path for s in scripts}
    if orphans:
        raise ValueError(f"mutants of scripts with no [[script]] table: {sorted(orphans)}")
    for m in mutants:
        if not re.fullmatch(r"[a-z0-9-]+", m.id) or m.old.strip() == m.new.strip() or not m.why.strip():
            raise ValueError(f"mutant {m.id!r}: needs a plain id, a changed line and a reason")
    return float(data["goal"]), scripts


def apply(source: str, mutant: Mutant) -> str:
    """The script with the one line that reads `old` (leading whitespace aside) replaced by `new`,
    kept at that line's indentation. Exactly one line may match: the data names a line, not a
    pattern, and a script edited since must not have a mutant land somewhere else."""
    lines = source.split("\n")
    hits = [i for i, line in enumerate(lines) if line.strip() == mutant.old.strip()]
    wanted = 1 if mutant.occurrence == 0 else mutant.occurrence
    if (mutant.occurrence == 0 and len(hits) != 1) or len(hits) < wanted:
        raise ValueError(
            f"mutant {mutant.id}: {len(hits)} lines of {mutant.script} read {mutant.old.strip()!r}"
        )
    at = hits[wanted - 1]
    lines[at] = lines[at][: len(lines[at]) - len(lines[at].lstrip())] + mutant.new.strip()
    return "\n".join(lines)


def load_equivalent(text: str) -> set[str]:
    return set(_EQUIVALENT_RE.findall(text))


@dataclass
class Outcome:
    status: str  # killed, survived, timeout
    seconds: float
    summary: str
    leftovers: list[str]


def _sandbox_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_ENGINE", "DOCKER_", "MUTANT_"))}
    (home / "cache").mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}


def _in_namespace(ns: str) -> list[int]:
    """PIDs of the processes in mount namespace `ns` (what a test run started and left running),
    and their descendants in namespaces of their own (the containers a left dockerd's shims run)."""
    parents: dict[int, int] = {}
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if os.readlink(proc / "ns" / "mnt") == ns:
                found.add(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def _describe(pid: int) -> str:
    try:
        return f"{pid} " + (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160])
    except OSError:
        return f"{pid} (gone)"


def _end(ns: str, pids: list[int]) -> None:
    """SIGTERM, then SIGKILL after 20 s, the processes a test run left: each still in the run's own
    mount namespace when signalled, so a PID reused meanwhile by someone else's process is spared."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _in_namespace(ns):
            if pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and set(_in_namespace(ns)) & set(pids):
            time.sleep(0.2)


def run_tests(
    copy: Path,
    tests: Sequence[str],
    home: Path,
    timeout: float = TIMEOUT,
    output: Path | None = None,
    isolated: bool = False,
) -> Outcome:
    """pytest on `tests` in the copy, in a mount namespace of its own; what the run left running is
    ended. `isolated`: and in a network namespace of its own (sysfs mounted again to show it), with
    a tmpfs on /tmp, so the engine folders, bridges and routes the tests make, and whatever a mutant
    leaves of them, stay off the machine and vanish with the run."""
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    unshare = _can_unshare()
    setup = "readlink /proc/self/ns/mnt >&2"
    if unshare and isolated:
        setup += "; " + " && ".join(_ISOLATE) + " || exit 97"
    inner = ["sh", "-c", setup + '; exec "$@"', "sh", *pytest, *tests]
    namespaces = ["--mount", *(["--net"] if isolated else []), "--propagation", "private"]
    argv = ["nice", "-n", "19", *(["unshare", *namespaces] if unshare else []), *inner]
    env = _sandbox_env(home)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        status = "survived" if proc.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        status = "timeout"
    if output is not None:
        output.write_text(out + err)
    ns = err.split("\n", 1)[0].strip()
    left = _in_namespace(ns) if ns.startswith("mnt:") and ns != os.readlink("/proc/self/ns/mnt") else []
    described = [_describe(p) for p in left]
    _end(ns, left)
    summary = ", ".join(
        " ".join(m) for m in _PYTEST_SUMMARY.findall(out.strip().splitlines()[-1] if out.strip() else "")
    )
    if status != "timeout" and not summary:
        # No pytest summary: the harness failed (mount, unshare), which must never count as a kill.
        raise SystemExit(f"the test run did not get to pytest (exit {proc.returncode}):\n{err[-2000:]}")
    return Outcome(status, time.monotonic() - started, summary, described)


# Run first in the new namespaces: a tmpfs /tmp, sysfs mounted again so /sys/class/net shows the new
# network namespace (the cgroup hierarchies carried over onto it: dockerd needs them), loopback up.
_ISOLATE = (
    "mount -t tmpfs -o mode=1777 cdl-tmp /tmp",
    "mkdir /tmp/.cgroup",
    "mount --rbind /sys/fs/cgroup /tmp/.cgroup",
    "mount -t sysfs sysfs /sys",
    "mount --rbind /tmp/.cgroup /sys/fs/cgroup",
    "ip link set lo up",
)


def _can_unshare() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def _fresh(pristine: Path, at: Path, script: str, text: str | None) -> Path:
    """A copy of the pristine project at `at` (the last run's removed first), its script replaced
    by `text`: nothing a run wrote into the tree or its working directory (a relative engine folder
    a mutant accepted) reaches the next run."""
    _remove(at)
    shutil.copytree(pristine, at, symlinks=True)
    if text is not None:
        (at / script).write_text(text)
    return at


def _remove(tree: Path) -> None:
    """rmtree, but never into a mount a run left (a bind-mounted data root would be emptied)."""
    if tree.exists() and not [m for m in Path("/proc/mounts").read_text().splitlines() if f" {tree}/" in m]:
        shutil.rmtree(tree)
    if tree.exists():
        raise SystemExit(f"{tree} holds a mount a run left: see /proc/mounts")


def judge_script(
    script: Script, work: Path, rev: str | None, only: Sequence[str], log: Path
) -> dict[str, str]:
    """Every mutant of one script against its tests, each in a fresh copy of the project;
    {id: status}. Refuses when the unmutated script fails its tests or when any of them skipped
    (a mutant only they catch would survive)."""
    base = work / script.path.replace("/", ".")
    pristine, copy = base / "pristine", base / "run"
    _remove(base)
    pristine.mkdir(parents=True)
    run.copy_project(pristine, rev)
    original = (pristine / script.path).read_text()
    home = base / "home"  # each run's HOME and XDG_CACHE_HOME

    def clean_slate() -> None:
        _remove(home)

    with log.open("a") as out:
        clean_slate()
        _fresh(pristine, copy, script.path, None)
        run.link_shared(copy)
        baseline = run_tests(
            copy, script.tests, home, output=log.parent / f"{base.name}.unmutated.out", isolated=True
        )
        out.write(
            f"== {script.path} unmutated: {baseline.status} ({baseline.summary}) in {baseline.seconds:.0f}s\n"
        )
        print(f"== {script.path}: unmutated {baseline.summary} in {baseline.seconds:.0f}s", flush=True)
        if baseline.status != "survived":
            raise SystemExit(f"{script.path}: its tests fail unmutated ({baseline.summary}); see {log}")
        if "skipped" in baseline.summary:
            raise SystemExit(
                f"{script.path}: tests skipped unmutated ({baseline.summary}); run as root with the tools "
                "they name, or a mutant only they catch would count as a survivor"
            )
        statuses: dict[str, str] = {}
        for mutant in script.mutants:
            if only and mutant.id not in only:
                continue
            clean_slate()
            _fresh(pristine, copy, script.path, apply(original, mutant))
            run.link_shared(copy)
            target = copy / script.path
            parsed = subprocess.run(["bash", "-n", str(target)], capture_output=True, text=True, check=False)
            if parsed.returncode != 0:
                raise SystemExit(f"mutant {mutant.id} does not parse: {parsed.stderr.strip()}")
            outcome = run_tests(
                copy, script.tests, home, output=log.parent / f"{mutant.id}.out", isolated=True
            )
            statuses[mutant.id] = outcome.status
            line = f"   {mutant.id}: {outcome.status} ({outcome.summary}) in {outcome.seconds:.0f}s"
            print(line, flush=True)
            out.write(line + "\n")
            for left in outcome.leftovers:
                warning = f"      left running by the tests, now ended: {left}"
                print(warning, flush=True)
                out.write(warning + "\n")
            out.flush()
        _remove(copy)
        _remove(home)
    return statuses


def table(rows: Sequence[tuple[str, int, int, int, int]]) -> str:
    head = "| script | mutants | killed | equivalent | survived | score |\n|---|---:|---:|---:|---:|---:|"
    lines = []
    for path, total, killed, listed, survived in rows:
        score = killed / (total - listed) if total - listed else 1.0
        lines.append(f"| `{path}` | {total} | {killed} | {listed} | {survived} | {score:.1%} |")
    return "\n".join([head, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    goal, scripts = load(MUTANTS_FILE.read_text())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("scripts", nargs="*", help=f"default: all ({', '.join(s.path for s in scripts)})")
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="ID", help="only these mutants (not a score)"
    )
    parser.add_argument("--rev", help="the scripts and tests of this commit (git archive)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args(argv)
    unknown = [s for s in args.scripts if s not in {x.path for x in scripts}]
    if unknown:
        parser.error(f"not in {MUTANTS_FILE.name}: {unknown}")
    equivalent = load_equivalent(run.EQUIVALENT_FILE.read_text())
    work = args.work.resolve()
    if _can_unshare() and (work == MACHINE_TMP or MACHINE_TMP in work.parents):
        parser.error("--work must lie outside /tmp: each run gets a /tmp of its own, which would hide it")
    args.work = work
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "shell-mutation.log"
    rows, bad = [], False
    for script in scripts:
        if args.scripts and script.path not in args.scripts:
            continue
        statuses = judge_script(script, args.work, args.rev, args.only, log)
        survivors = sorted(i for i, s in statuses.items() if s == "survived")
        ids = {m.id for m in script.mutants}
        listed = [i for i in survivors if i in equivalent]
        stale = sorted(
            i for i in equivalent & ids if statuses.get(i, "killed") != "survived" and i in statuses
        )
        killed = len(statuses) - len(survivors)
        for i in survivors:
            if i not in equivalent:
                print(f"   survived, not in {run.EQUIVALENT_FILE.name}: shell:{i}")
        for i in stale:
            print(f"   listed in {run.EQUIVALENT_FILE.name} but not surviving: shell:{i}")
        rows.append((script.path, len(statuses), killed, len(listed), len(survivors) - len(listed)))
        counted = len(statuses) - len(listed)
        bad |= bool(stale) or len(survivors) > len(listed) or (counted > 0 and killed / counted < goal)
    print()
    print(table(rows))
    print(f"\ngoal: >= {goal:.0%} per script; log: {log}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
