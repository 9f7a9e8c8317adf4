"""`make compare`'s run loop (compare/run.py) against a fake `make` and `pulumi` on PATH: every
lab it brings up is torn down before the next one starts, whatever failed, and its stack and
stack file are gone at the end; the progress says which mode, which step and how long."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from compare import run as compare_run
from compare.measure import Round

FAKE_TOOL = """#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE_CALLS"
for failing in $FAKE_FAIL; do
  [[ " $* " == *" $failing "* ]] && { echo "fake: $* failed on purpose"; exit 2; }
done
echo "fake: $* ok"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the shipped stack files, and `make`/`pulumi` that only log their calls."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    for mode in compare_run.MODES:
        shipped = Path(compare_run.ROOT, "stacks", f"Pulumi.{mode}.yaml")
        (root / "stacks" / shipped.name).write_text(shipped.read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "pulumi"):
        (bin_dir / tool).write_text(FAKE_TOOL)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.log"))
    monkeypatch.setenv("FAKE_FAIL", "")
    monkeypatch.setattr(compare_run, "kernel_has_geneve", lambda: False)
    return root


def calls(project: Path) -> list[str]:
    path = project.parent / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def measured(monkeypatch: pytest.MonkeyPatch, fail_with: BaseException | None = None) -> list[str]:
    """Stand in for the probe and the measurements; the modes measured, in order."""
    seen: list[str] = []

    def fake_probe(mode: str) -> str:
        return mode

    def fake_measure(probe: Any, artifacts: Path, samples: int, seconds: int, pings: int, say: Any) -> Round:
        seen.append(probe)
        say("throughput ...")
        if fail_with is not None:
            raise fail_with
        got = Round()
        got.throughput_bps["same node"].append(9e9)
        return got

    monkeypatch.setattr(compare_run, "_probe", fake_probe)
    monkeypatch.setattr(compare_run, "measure_round", fake_measure)
    return seen


def test_each_mode_is_up_measured_and_gone_before_the_next(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = measured(monkeypatch)
    results = compare_run.run(["overlay", "native-auto"], 2, 1, 1, 1, project / "out", root=project)
    assert seen == ["overlay", "native-auto", "overlay", "native-auto"]  # round by round
    made = [c for c in calls(project) if c.startswith("make")]
    expected = []
    for _ in range(2):
        for mode in ("overlay", "native-auto"):
            stack = f"STACK=compare-{mode}"
            expected += [f"make --no-print-directory {t} {stack}" for t in ("up", "destroy", "clean")]
    assert made == expected
    assert calls(project).count("pulumi stack rm --yes --stack compare-overlay") == 2
    assert not list((project / "stacks").glob("Pulumi.compare-*.yaml"))
    assert [len(r.up_seconds) for r in results] == [2, 2] and all(not r.failures for r in results)
    assert [[set(t) for t in r.turns] for r in results] == [
        [{"round", "make up", "measure", "tear down"}] * 2
    ] * 2
    said = capsys.readouterr().err
    assert "=== overlay, round 1/2 (lab 1 of 4) ===" in said
    assert "overlay: make up (to verified): done in" in said and "native-auto: throughput ..." in said


def test_a_failed_up_is_torn_down_and_the_next_mode_still_runs(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = measured(monkeypatch)
    monkeypatch.setenv("FAKE_FAIL", "STACK=compare-overlay")  # overlay's steps fail: up, destroy, clean
    results = compare_run.run(["overlay", "static"], 1, 1, 1, 1, project / "out", root=project)
    assert seen == ["static"]
    made = [c for c in calls(project) if c.startswith("make")]
    assert "make --no-print-directory destroy STACK=compare-overlay" in made
    assert made.index("make --no-print-directory destroy STACK=compare-overlay") < made.index(
        "make --no-print-directory up STACK=compare-static"
    )
    overlay, static = results
    assert (
        overlay.up_seconds == []
        and overlay.failures[0] == "round 1: make up failed (logs/overlay-round1-up.log)"
    )
    assert "round 1: destroy failed (logs/overlay-round1-destroy.log)" in overlay.failures
    assert static.failures == [] and len(static.up_seconds) == 1
    assert set(overlay.turns[0]) == {"round", "make up", "tear down"}  # no measure: up failed
    said = capsys.readouterr().err
    assert "overlay: make up (to verified): FAILED" in said
    assert "fake: --no-print-directory up STACK=compare-overlay failed on purpose" in said  # the log's tail
    log = project / "out" / "logs" / "overlay-round1-up.log"
    assert "failed on purpose" in log.read_text()


def test_an_interrupted_measurement_still_tears_the_lab_down(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured(monkeypatch, fail_with=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        compare_run.run(["bgp", "static"], 1, 1, 1, 1, project / "out", root=project)
    made = [c for c in calls(project) if c.startswith("make")]
    assert made == [f"make --no-print-directory {t} STACK=compare-bgp" for t in ("up", "destroy", "clean")]
    assert "pulumi stack rm --yes --stack compare-bgp" in calls(project)
    assert not (project / "stacks" / "Pulumi.compare-bgp.yaml").exists()


def test_geneve_is_skipped_on_a_kernel_without_it(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measured(monkeypatch)
    results = compare_run.run(["geneve", "static"], 1, 1, 1, 1, project / "out", root=project)
    assert results[0].skipped.startswith("this kernel cannot make a Geneve device")
    assert not any("compare-geneve" in c for c in calls(project))


def test_a_compare_stack_is_the_shipped_one_on_its_own_cluster_and_underlay(project: Path) -> None:
    path = compare_run.write_stack_file("bgp", project / "stacks")
    written = yaml.safe_load(path.read_text())["config"]
    shipped = yaml.safe_load((project / "stacks" / "Pulumi.bgp.yaml").read_text())["config"]
    changed = {k for k in shipped if written[k] != shipped[k]}
    assert changed == {"cilium-datapath-lab:clusterName", "cilium-datapath-lab:underlaySubnet"}
    assert written["cilium-datapath-lab:clusterName"] == "cmp-bgp"
    subnets = set(compare_run.SUBNETS.values())
    shipped_subnets = {
        yaml.safe_load(p.read_text())["config"]["cilium-datapath-lab:underlaySubnet"]
        for p in (compare_run.ROOT / "stacks" / f"Pulumi.{mode}.yaml" for mode in compare_run.MODES)
    }
    assert len(subnets) == len(compare_run.MODES) and not subnets & shipped_subnets


def test_every_compare_stack_file_is_a_valid_lab(project: Path) -> None:
    from lab.stack_file import stack_config  # noqa: PLC0415

    for mode in compare_run.MODES:
        compare_run.write_stack_file(mode, project / "stacks")
        config = stack_config(compare_run.stack_name(mode), project / "stacks")
        assert config.mode.value == mode and config.cluster_name == f"cmp-{mode}"


@pytest.mark.parametrize(
    ("unshare", "expected"),
    [
        ("exit 0", True),  # the kernel made the device (in a namespace of its own)
        ('echo "Error: Unknown device type." >&2; exit 2', False),  # no geneve in this kernel
    ],
)
def test_geneve_is_asked_of_the_kernel(
    unshare: str, expected: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "unshare").write_text(f'#!/bin/bash\necho "$*" > "{tmp_path}/asked"\n{unshare}\n')
    (tmp_path / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert compare_run.kernel_has_geneve() is expected
    assert (tmp_path / "asked").read_text().split()[:6] == ["--net", "ip", "link", "add", "cdlgeneve", "type"]


def test_without_namespaces_geneve_is_read_from_sys_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "unshare").write_text(
        '#!/bin/bash\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n'
    )
    (tmp_path / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert compare_run.kernel_has_geneve() is Path("/sys/module/geneve").exists()


def test_the_cli_refuses_zero_rounds_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from compare.__main__ import main  # noqa: PLC0415

    with pytest.raises(SystemExit):
        main(["--rounds", "0"])
    assert "--rounds: must be 1 or more, not 0" in capsys.readouterr().err


def test_the_cli_writes_the_report_and_fails_when_a_step_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import compare.__main__ as cli  # noqa: PLC0415

    asked: list[tuple[Any, ...]] = []

    def fake_run(*args: Any) -> list[compare_run.ModeResult]:
        asked.append(args)
        ok = compare_run.ModeResult("static", up_seconds=[180.0], rounds=[Round()])
        failed = compare_run.ModeResult("bgp", failures=["round 1: make up failed (logs/bgp-round1-up.log)"])
        return [ok, failed]

    monkeypatch.setattr(cli, "run", fake_run)
    code = cli.main(["--modes", "static", "bgp", "static", "--rounds", "1", "--out", str(tmp_path)])
    assert code == 1 and asked == [(["static", "bgp"], 1, 5, 3, 20, tmp_path)]  # each mode once
    assert (tmp_path / "report.md").exists() and (tmp_path / "compare.json").exists()
    assert "some steps failed for: bgp" in capsys.readouterr().err


def test_the_cli_says_an_interrupted_run_left_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import compare.__main__ as cli  # noqa: PLC0415

    def interrupted(*args: Any) -> list[compare_run.ModeResult]:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    assert cli.main(["--modes", "static"]) == 130
