"""report.md shows the current stack's checks only: no verdict left over from another mode or check."""

from __future__ import annotations

import json
from pathlib import Path

from verify import catalogue, report
from verify.checks import Verdict


def _passing(check_id: str) -> Verdict:
    verdict = Verdict(check_id)
    verdict.expect(True, "holds")
    return verdict


def _write(artifacts: Path, check_id: str, mode: str) -> Path:
    return report.write_verdict(artifacts, catalogue.by_id(check_id), _passing(check_id), mode)


def test_a_verdict_of_another_mode_leaves_the_report_and_the_disk(tmp_path: Path) -> None:
    """The stack ran as overlay, then as native-auto: overlay.capture is not a native-auto check."""
    stale = _write(tmp_path, "overlay.capture", "overlay")
    current = _write(tmp_path, "native.routes", "native-auto")
    text = report.write_report(tmp_path, "lab", "native-auto").read_text()
    assert "overlay.capture" not in text
    assert "`native.routes` | ✅ PASS" in text and "1 of 1 checks passed" in text
    assert not stale.exists() and current.exists()


def test_a_shared_check_judged_under_the_old_mode_is_stale(tmp_path: Path) -> None:
    """intranode.ping belongs to every mode, but a verdict from the overlay lab says nothing of geneve."""
    _write(tmp_path, "intranode.ping", "overlay")
    text = report.write_report(tmp_path, "lab", "geneve").read_text()
    assert "intranode.ping" not in text and "0 of 0 checks passed" in text
    _write(tmp_path, "intranode.ping", "geneve")
    assert "`intranode.ping` | ✅ PASS" in report.write_report(tmp_path, "lab", "geneve").read_text()


def test_a_check_that_left_the_catalogue_is_not_reported(tmp_path: Path) -> None:
    record: dict[str, object] = {"check": "overlay.retired", "mode": "overlay", "status": "FAIL"}
    record |= {"claim": "gone", "pass_rule": "gone", "findings": ["FAIL old"], "evidence": []}
    stale = tmp_path / "checks" / "overlay.retired.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps(record))
    _write(tmp_path, "overlay.routes", "overlay")
    text = report.write_report(tmp_path, "lab", "overlay").read_text()
    assert "overlay.retired" not in text and "Failed" not in text and "1 of 1 checks passed" in text
    assert not stale.exists()


def test_a_verdict_without_a_mode_predates_the_stamp_and_is_stale(tmp_path: Path) -> None:
    path = _write(tmp_path, "overlay.routes", "overlay")
    record = json.loads(path.read_text())
    del record["mode"]
    path.write_text(json.dumps(record))
    assert "overlay.routes" not in report.write_report(tmp_path, "lab", "overlay").read_text()


def test_an_unreadable_verdict_file_is_stale_not_a_crash(tmp_path: Path) -> None:
    broken = tmp_path / "checks" / "overlay.routes.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"check": "overlay.ro')  # damaged on disk
    assert "0 of 0 checks passed" in report.write_report(tmp_path, "lab", "overlay").read_text()
    assert not broken.exists()
