"""`python -m verify`: list, run against a replica, pcap on the replica's own captures, and the report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from labsupport import needs_replica
from readme_checks import checks_of

from verify import catalogue, checks, report
from verify.__main__ import main
from verify.checks import Evidence, Status, Verdict
from verify.replica import Replica

# `verify list` against README's checks table: tests/fast/test_catalogue.py.


@needs_replica
def test_run_against_a_replica_writes_report_and_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--replica", "static", "--prefix", "cdltcli-", "--artifacts", str(tmp_path)])
    said = capsys.readouterr()
    summary = json.loads(said.out.strip().splitlines()[-1])
    assert code == 0 and summary["failed"] == []
    # every check of the stack but Cilium's trace points, which need a real lab's agent, and say so
    assert summary["passed"] == len(checks_of("static")) - 1
    assert "[verify] datapath.trace: left out, the replica runs no Cilium agent" in said.err
    assert not (tmp_path / "checks" / "datapath.trace.json").exists()
    text = (tmp_path / "report.md").read_text()
    assert "```mermaid" in text and "`static.fails-without-routes` | ✅ PASS" in text
    assert json.loads((tmp_path / "checks" / "static.ping.json").read_text())["status"] == "PASS"


def test_run_refuses_a_check_of_another_stack() -> None:
    with pytest.raises(SystemExit, match="do not apply to overlay"):
        main(["run", "--replica", "overlay", "--check", "native.routes", "--prefix", "cdltx-"])


@needs_replica
@pytest.mark.parametrize(("mode", "expected"), [("overlay", "vxlan"), ("native-auto", "none")])
def test_pcap_classifies_the_replicas_own_captures(
    mode: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Replica(mode, prefix=f"cdltp{mode[:2]}-", bpf_hooks=False) as rep:
        a, c = rep.topology.pod("pod-a"), rep.topology.pod("pod-c")
        path, _ = rep.capture(
            a.node,
            "eth0",
            f"udp port 8472 or (host {a.ip} and host {c.ip})",
            lambda: rep.pod_exec("pod-a", ["ping", "-c", "2", "-i", "0.2", str(c.ip)]),
            tmp_path / "cap.pcap",
        )
    assert main(["pcap", str(path)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    pod_packets = [r for r in records if {r["inner_src"], r["inner_dst"]} == {str(a.ip), str(c.ip)}]
    assert len(pod_packets) >= 4  # two requests, two replies
    assert {r["encapsulation"] for r in pod_packets} == {expected}
    if expected == "vxlan":
        assert all(r["vni"] and r["udp_dport"] == 8472 for r in pod_packets)


def test_report_shows_failures_with_their_evidence(tmp_path: Path) -> None:
    check = catalogue.by_id("static.ping")
    verdict = Verdict("static.ping")
    verdict.expect(True, "2/2 answered (0% loss)")
    verdict.expect(False, "TTL [63] (want 62: two routed hops)")
    verdict.evidence.append(
        Evidence("ping pod-a -> pod-c", "[pod pod-a] $ ping -c 2 10.10.0.74", "64 bytes ... ttl=63")
    )
    assert verdict.status is Status.FAIL
    report.write_verdict(tmp_path, check, verdict, "static")
    text = report.write_report(tmp_path, "static", "static").read_text()
    assert "0 of 1 checks passed" in text and "**Failed: static.ping.**" in text
    assert "`FAIL` TTL [63]" in text and "ttl=63" in text
    failure = report.describe_failure("static.ping", verdict)
    assert "pass rule: 0% loss, TTL 62" in failure and "[pod pod-a] $ ping -c 2 10.10.0.74" in failure


def test_a_check_retries_within_its_settle_budget_then_passes(tmp_path: Path) -> None:
    """A lab still converging (here: the claim holds from the third look on) passes in time."""
    looks: list[int] = []

    def converging(probe: object, ctx: checks.Context, v: Verdict) -> None:
        looks.append(1)
        v.expect(len(looks) >= 3, f"look {len(looks)}")

    check = checks.Check(
        "demo.converge", ("overlay",), "converges", "third look holds", converging, settle_seconds=5
    )
    ctx = checks.Context(artifacts=tmp_path, mode="overlay")
    verdict = check.run(object(), ctx, settle_seconds=5, pause=0.01)  # type: ignore[arg-type]
    assert verdict.passed and len(looks) == 3
    assert "note 3 attempts" in verdict.findings[-1]


def test_a_check_fails_when_the_budget_runs_out(tmp_path: Path) -> None:
    def never(probe: object, ctx: checks.Context, v: Verdict) -> None:
        v.expect(False, "never holds")

    check = checks.Check("demo.never", ("overlay",), "never", "never", never)
    ctx = checks.Context(artifacts=tmp_path, mode="overlay")
    assert not check.run(object(), ctx, settle_seconds=0.05, pause=0.01).passed  # type: ignore[arg-type]
    assert not check.run(object(), ctx).passed  # type: ignore[arg-type]  # no budget: one look


def test_the_absence_claim_never_retries() -> None:
    assert catalogue.by_id("static.fails-without-routes").settle_seconds == 0


def _write_one(args: tuple[str, str]) -> None:
    artifacts, check_id = args
    verdict = Verdict(check_id)
    verdict.expect(True, "holds")
    report.write_verdict(Path(artifacts), catalogue.by_id(check_id), verdict, "static")
    report.write_report(Path(artifacts), "static", "static")


def test_parallel_checks_leave_a_complete_report(tmp_path: Path) -> None:
    """Checks run as parallel resources; the last report written must show every verdict."""
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    ids = checks_of("static")
    with ProcessPoolExecutor(max_workers=4) as pool:
        list(pool.map(_write_one, [(str(tmp_path), i) for i in ids * 3]))
    text = (tmp_path / "report.md").read_text()
    assert f"{len(ids)} of {len(ids)} checks passed" in text
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_run_against_a_stack_that_is_not_up_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docker = tmp_path / "docker"
    docker.write_text('#!/bin/sh\necho "Error: No such network: $5" >&2\nexit 1\n')
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)
    assert main(["run", "--stack", "overlay"]) == 2
    err = capsys.readouterr().err
    assert (
        "cannot reach the overlay lab" in err and "is stack overlay up?" in err and "cdl-lab-overlay" in err
    )


@pytest.mark.parametrize(("flags", "settle"), [([], True), (["--no-settle"], False)])
def test_a_real_lab_is_judged_with_its_settle_budget_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], settle: bool
) -> None:
    from verify import kind, runner  # noqa: PLC0415

    seen: list[bool] = []
    probe = type("P", (), {"topology": type("T", (), {"mode": "overlay"})()})()
    monkeypatch.setattr(kind, "spec_from_host", lambda config, plan: "{}")
    monkeypatch.setattr(kind, "connect", lambda control_plane, topology: probe)

    def run_checks(p: object, stack: str, selected: object, artifacts: Path, settle: bool) -> list[object]:
        seen.append(settle)
        return []

    monkeypatch.setattr(runner, "run_checks", run_checks)
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)
    argv = ["run", "--stack", "overlay", "--check", "path.mtu", "--artifacts", str(tmp_path), *flags]
    assert main(argv) == 0
    assert seen == [settle]
