"""What every check shares: a verdict FAILs on any fact that does not hold, on evidence it could
not collect, and on no facts at all; evidence keeps what the command printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeprobe import FakeProbe, load_world

from verify import parsers
from verify.checks import Check, Context, Evidence, Status, Verdict
from verify.probe import CommandResult


def result(stdout: str, stderr: str, rc: int = 0) -> CommandResult:
    return CommandResult("node n", ("ip", "-j", "route", "show"), rc, stdout, stderr)


@pytest.mark.parametrize(
    ("stdout", "stderr", "kept"),
    [
        ("[]\n", "", "[]\n"),
        ("", "Error: no route\n", "Error: no route\n"),
        ("   \n", "Error: no route\n", "Error: no route\n"),
        ("[]\n", "warning: old kernel\n", "[]\n\n[stderr]\nwarning: old kernel\n"),
    ],
)
def test_evidence_keeps_stdout_stderr_or_both(stdout: str, stderr: str, kept: str) -> None:
    evidence = Evidence.of("routes", result(stdout, stderr))
    assert evidence.output == kept
    assert evidence.command == "[node n] $ ip -j route show  (exit 0)"


def test_evidence_is_cut_at_its_limit() -> None:
    assert Evidence.of("x", result("y" * 50, ""), limit=10).output == "y" * 10


def test_one_fact_that_does_not_hold_fails_the_verdict() -> None:
    v = Verdict("demo")
    assert v.expect(True, "holds") and v.passed
    assert not v.expect(False, "does not")
    assert v.expect(True, "holds again")
    assert v.status is Status.FAIL and v.findings == ["ok   holds", "FAIL does not", "ok   holds again"]


@pytest.mark.parametrize(
    "error", [parsers.ParseError("ping: no statistics"), LookupError("no pod-c"), OSError("tcpdump gone")]
)
def test_evidence_that_cannot_be_collected_is_a_fail(error: Exception, tmp_path: Path) -> None:
    def broken(probe: object, ctx: Context, v: Verdict) -> None:
        v.expect(True, "a first fact")
        raise error

    verdict = Check("demo.broken", ("overlay",), "c", "r", broken).run(
        FakeProbe(load_world("overlay")), Context(tmp_path, "overlay")
    )
    assert verdict.status is Status.FAIL
    assert verdict.findings[-1] == f"FAIL could not collect the evidence: {error}"


def test_a_check_that_collects_no_fact_fails(tmp_path: Path) -> None:
    verdict = Check("demo.silent", ("overlay",), "c", "r", lambda p, c, v: None).run(
        FakeProbe(load_world("overlay")), Context(tmp_path, "overlay")
    )
    assert (verdict.status, verdict.findings) == (Status.FAIL, ["FAIL the check collected no facts"])


def test_pcaps_go_under_the_artifacts_folder(tmp_path: Path) -> None:
    ctx = Context(tmp_path / "artifacts" / "overlay", "overlay")
    assert (
        ctx.pcap("overlay.capture", "-n-eth0")
        == tmp_path / "artifacts" / "overlay" / "overlay.capture-n-eth0.pcap"
    )
    assert ctx.artifacts.is_dir()
