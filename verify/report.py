"""Verdicts as files: one JSON per check, and a report.md a person reads (with a Mermaid diagram).

Each check runs as its own Pulumi resource, so verdicts are written one by one under
`artifacts/<stack>/checks/` and the report is re-rendered from them after every check. Each
verdict is stamped with the mode it was judged under; the report shows only the current mode's
catalogue, and a verdict of another mode (the stack changed mode) or of a check that left the
catalogue is stale evidence of a lab that no longer exists, so it is removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2

from verify.catalogue import by_id, for_stack
from verify.checks import Check, Verdict

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,  # Markdown, not HTML  # noqa: S701
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def verdict_record(check: Check, verdict: Verdict, mode: str) -> dict[str, Any]:
    return {
        "check": verdict.check,
        "mode": mode,
        "status": verdict.status.value,
        "claim": check.claim,
        "pass_rule": check.pass_rule,
        "findings": verdict.findings,
        "evidence": [dataclasses.asdict(e) for e in verdict.evidence],
    }


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _report_lock(artifacts: Path) -> Iterator[None]:
    """Checks run as parallel Pulumi resources: one writer of report.md at a time."""
    artifacts.mkdir(parents=True, exist_ok=True)
    with (artifacts / ".report.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_verdict(artifacts: Path, check: Check, verdict: Verdict, mode: str) -> Path:
    path = artifacts / "checks" / f"{verdict.check}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(verdict_record(check, verdict, mode), indent=2) + "\n")
    return path


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def load_verdicts(artifacts: Path, mode: str) -> tuple[list[dict[str, Any]], list[Path]]:
    """(the mode's verdicts in catalogue order, the stale verdict files)."""
    order = {c.id: i for i, c in enumerate(for_stack(mode))}
    current: list[dict[str, Any]] = []
    stale: list[Path] = []
    for path in sorted((artifacts / "checks").glob("*.json")):
        record = _read_record(path)
        if record is not None and record.get("mode") == mode and record.get("check") in order:
            current.append(record)
        else:
            stale.append(path)
    return sorted(current, key=lambda r: order[r["check"]]), stale


def render_report(stack: str, mode: str, records: list[dict[str, Any]]) -> str:
    diagram = (TEMPLATES / "diagrams" / f"{mode}.mmd").read_text().rstrip()
    failed = [r["check"] for r in records if r["status"] != "PASS"]
    return _ENV.get_template("report.md.j2").render(
        stack=stack,
        mode=mode,
        verdicts=records,
        passed=len(records) - len(failed),
        failed=failed,
        diagram=diagram,
    )


def write_report(artifacts: Path, stack: str, mode: str) -> Path:
    """Re-render report.md from the mode's verdicts on disk and remove stale ones.

    Under a lock, so the last writer sees every verdict and no two writers remove the same file.
    """
    path = artifacts / "report.md"
    with _report_lock(artifacts):
        records, stale = load_verdicts(artifacts, mode)
        for old in stale:
            old.unlink(missing_ok=True)
        _atomic_write(path, render_report(stack, mode, records))
    return path


def describe_failure(check_id: str, verdict: Verdict) -> str:
    """What a failing `pulumi up` prints: the facts and every command with its output."""
    check = by_id(check_id)
    lines = [f"{check_id}: {verdict.status} — {check.claim}", f"pass rule: {check.pass_rule}", ""]
    lines += verdict.findings
    for e in verdict.evidence:
        lines += ["", f"## {e.label}", e.command, e.output.rstrip()] + (
            [f"(capture: {e.artifact})"] if e.artifact else []
        )
    return "\n".join(lines)
