"""The catalogue against README's checks table (tests/readme_checks.py), not against itself;
and every check of it has its conditions broken in the fast tier."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import test_rules_bgp
import test_rules_datapath
from readme_checks import README_CHECKS, STACKS, checks_of

from verify import catalogue
from verify.__main__ import main

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> dict[str, tuple[str, ...]]:
    """The rows of README's `| check | stacks | claim |` table."""
    text = README.read_text()
    start = text.index("| check | stacks | claim |")
    rows: dict[str, tuple[str, ...]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("| `"):
            break
        check, stacks = re.findall(r"\|\s*([^|]+?)\s*(?=\|)", line)[:2]
        rows[check.strip("`")] = STACKS if stacks == "all" else tuple(s.strip() for s in stacks.split(","))
    return rows


def test_the_pinned_table_is_the_readme_table() -> None:
    assert readme_table() == README_CHECKS


def test_the_catalogue_is_the_readme_table() -> None:
    assert [(c.id, c.stacks) for c in catalogue.CATALOGUE] == list(README_CHECKS.items())


def test_verify_list_prints_the_readme_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], tuple(r["stacks"])) for r in rows] == list(README_CHECKS.items())
    assert all(r["claim"] and r["pass_rule"] for r in rows)


@pytest.mark.parametrize("stack", STACKS)
def test_verify_list_for_one_stack(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--stack", stack]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == checks_of(stack)


def test_every_check_has_its_conditions_broken_in_the_fast_tier() -> None:
    broken = {b.check for b in [*test_rules_datapath.BREAKS, *test_rules_bgp.BREAKS] if b.names}
    assert sorted(broken) == sorted(README_CHECKS)
