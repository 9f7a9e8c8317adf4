"""Rewrite the FRR golden files from the templates — a deliberate act, never part of a test run.

    .venv/bin/python tests/golden/frr/regenerate.py && git diff tests/golden/frr/

After a template change the tests fail against the old goldens; run this, read the diff (it is
the change every FRR router will get), and commit it with the template change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from lab.config import parse_config  # noqa: E402
from lab.frr import frr_spec, render_frr_files  # noqa: E402
from lab.plan import plan  # noqa: E402

GOLDEN = Path(__file__).resolve().parent


def main() -> int:
    cases = json.loads((GOLDEN / "cases.json").read_text())
    for name, case in sorted(cases.items()):
        if name.startswith("_"):
            continue
        config = parse_config(case["config"], case["stack"])
        rendered = render_frr_files(frr_spec(config, plan(config), case["router"]))["frr.conf"]
        path = GOLDEN / f"{name}.conf"
        changed = not path.is_file() or path.read_text() != rendered
        path.write_text(rendered)
        print(f"{'rewrote' if changed else 'same   '} {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
