"""`make compare`: bring up each mode in turn, time it, measure it, and tear it down.

Each mode runs as a stack of its own, `compare-<mode>`, made from the shipped stack file with its
own cluster name and underlay subnet, so a lab the user has up (`overlay`, ...) is never touched.
A round brings every mode up once (`make up`, timed to verified: the checks run inside it),
measures it (compare.measure) and destroys it before the next mode starts, even when a step
failed or the run is interrupted; the stack itself is removed at the end of its turn. Rounds go
mode by mode, one round after the other, so a slow minute of the machine falls on one sample of
each mode rather than on every sample of one.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import yaml

from compare.measure import Progress, Round, measure_round
from lab.config import PROJECT
from lab.modes import Mode
from verify.kind import KindProbe, connect_stack

ROOT = Path(__file__).resolve().parent.parent
MODES = tuple(m.value for m in Mode)  # every mode has a stack; geneve runs where the kernel has it
# The compare stacks' underlays: apart from the shipped stacks' (172.30.1-5.0/24) and each other's.
SUBNETS = {mode: f"172.30.{240 + i}.0/24" for i, mode in enumerate(MODES)}


def stack_name(mode: str) -> str:
    return f"compare-{mode}"


def cluster_name(mode: str) -> str:
    return f"cmp-{mode}"


class Say:
    """Progress on stderr: the time since the run began, the mode and round, and the step."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[compare {elapsed // 60:02d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)

    def about(self, mode: str) -> Progress:
        """Progress of one mode's steps, each line naming the mode."""
        return lambda text: self(f"{mode}: {text}")


@dataclass
class ModeResult:
    mode: str
    up_seconds: list[float] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # steps that failed, with what they said
    turns: list[dict[str, float]] = field(default_factory=list)  # per round: seconds of each phase
    skipped: str = ""  # why the mode did not run at all (geneve on a kernel without it)


def kernel_has_geneve() -> bool:
    """Whether this kernel can make a Geneve device: tried in a network namespace of its own
    (nothing is left behind), else read from /sys/module when that is not allowed."""
    if shutil.which("unshare") and shutil.which("ip"):
        tried = subprocess.run(
            [
                "unshare",
                "--net",
                "ip",
                "link",
                "add",
                "cdlgeneve",
                "type",
                "geneve",
                "id",
                "1",
                "remote",
                "192.0.2.1",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if tried.returncode == 0:
            return True
        if "Operation not permitted" not in tried.stderr:
            return False
    return Path("/sys/module/geneve").exists()


def write_stack_file(mode: str, stacks_dir: Path) -> Path:
    """stacks/Pulumi.compare-<mode>.yaml: the shipped stack file with the compare lab's own cluster
    name and underlay, everything else (the mode's own settings) as shipped."""
    shipped = yaml.safe_load((stacks_dir / f"Pulumi.{mode}.yaml").read_text())
    config = shipped["config"]
    config[f"{PROJECT}:clusterName"] = cluster_name(mode)
    config[f"{PROJECT}:underlaySubnet"] = SUBNETS[mode]
    path = stacks_dir / f"Pulumi.{stack_name(mode)}.yaml"
    header = f"# Written by `make compare` for its {mode} lab; removed with the stack when its turn ends.\n"
    path.write_text(header + yaml.safe_dump(shipped, sort_keys=False))
    return path


class Runner:
    """Runs make and pulumi in the project, each step's output into a log under artifacts/compare."""

    def __init__(self, root: Path, out: Path, say: Say) -> None:
        self.root = root
        self.logs = out / "logs"
        self.say = say

    def step(self, what: str, log: str, argv: Sequence[str], timeout: float = 1800) -> tuple[bool, float]:
        """Run argv, its output into logs/<log>.log; (succeeded, seconds)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        path = self.logs / f"{log}.log"
        self.say(f"{what} ...")
        started = time.monotonic()
        with path.open("w") as sink:
            try:
                done = subprocess.run(
                    list(argv),
                    cwd=self.root,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
                ok = done.returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
                sink.write(f"\n[compare] stopped after {timeout:g} s\n")
            except OSError as exc:  # no such program: `make compare` puts the toolchain on PATH
                ok = False
                sink.write(f"[compare] cannot run {argv[0]}: {exc}\n")
        seconds = time.monotonic() - started
        self.say(
            f"{what}: {'done' if ok else 'FAILED'} in {seconds:.0f} s" + ("" if ok else f" (log: {path})")
        )
        if not ok:
            tail = path.read_text(errors="replace").splitlines()[-15:]
            for line in tail:
                print(f"    {line}", file=sys.stderr)
        return ok, seconds

    def make(self, what: str, log: str, target: str, stack: str) -> tuple[bool, float]:
        return self.step(what, log, ["make", "--no-print-directory", target, f"STACK={stack}"])

    def tear_down(self, mode: str, tag: str) -> list[str]:
        """Destroy the lab, sweep what a failed step may have left by label, forget the stack."""
        stack = stack_name(mode)
        failed = []
        if not self.make(f"{mode}: destroy", f"{tag}-destroy", "destroy", stack)[0]:
            failed.append("destroy")
        if not self.make(f"{mode}: sweep by label", f"{tag}-clean", "clean", stack)[0]:
            failed.append("sweep")
        return failed

    def forget(self, mode: str) -> None:
        stack = stack_name(mode)
        self.step(
            f"{mode}: remove the stack",
            f"{mode}-stack-rm",
            ["pulumi", "stack", "rm", "--yes", "--stack", stack],
        )
        (self.root / "stacks" / f"Pulumi.{stack}.yaml").unlink(missing_ok=True)


def _probe(mode: str) -> KindProbe:
    return connect_stack(stack_name(mode))


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(
    modes: Sequence[str],
    rounds: int,
    samples: int,
    iperf_seconds: int,
    pings: int,
    out: Path,
    root: Path = ROOT,
) -> list[ModeResult]:
    """Every round of every mode; each lab gone before the next starts, and at the end."""
    say = Say()
    runner = Runner(root, out, say)
    results = {m: ModeResult(m) for m in modes}
    if "geneve" in results and not kernel_has_geneve():
        results["geneve"].skipped = "this kernel cannot make a Geneve device (no geneve module)"
        say("geneve: skipped, this kernel has no geneve module")
    runnable = [m for m in modes if not results[m].skipped]
    signal.signal(signal.SIGTERM, _on_sigterm)
    total = len(runnable) * rounds
    turn = 0
    for r in range(1, rounds + 1):
        for mode in runnable:
            turn += 1
            result = results[mode]
            tag = f"{mode}-round{r}"
            say(f"=== {mode}, round {r}/{rounds} (lab {turn} of {total}) ===")
            write_stack_file(mode, root / "stacks")
            turn_took = {"round": float(r)}
            try:
                ok, up_seconds = runner.make(
                    f"{mode}: make up (to verified)", f"{tag}-up", "up", stack_name(mode)
                )
                turn_took["make up"] = up_seconds
                if not ok:
                    result.failures.append(f"round {r}: make up failed (logs/{tag}-up.log)")
                    continue
                result.up_seconds.append(up_seconds)
                started = time.monotonic()
                measured = measure_round(
                    _probe(mode),
                    out / mode / f"round{r}",
                    samples,
                    iperf_seconds,
                    pings,
                    say.about(mode),
                )
                turn_took["measure"] = time.monotonic() - started
                result.rounds.append(measured)
                result.failures += [f"round {r}: {e}" for e in measured.errors]
            finally:
                started = time.monotonic()
                for step in runner.tear_down(mode, tag):
                    result.failures.append(f"round {r}: {step} failed (logs/{tag}-{step}.log)")
                runner.forget(mode)
                turn_took["tear down"] = time.monotonic() - started
                result.turns.append(turn_took)
    for result in results.values():
        for took in result.turns:
            phases = ", ".join(f"{k} {v:.0f} s" for k, v in took.items() if k != "round")
            say(f"took: {result.mode}, round {int(took['round'])}: {phases}")
    return list(results.values())
