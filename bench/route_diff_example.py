"""Print what a routing change does to the `static` stack, from two mock evaluations.

This is how the README's "Reading a routing change" example was produced: it evaluates the
stack file as it is and with one extra route, and shows which resources change and the changed
route lines, as `pulumi preview --diff` would list them. Run: `.venv/bin/python bench/route_diff_example.py`.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mockstack import changes, evaluate, stack_config, with_project_keys  # noqa: E402

EXTRA = {"node": "lab-static-worker", "dest": "192.168.50.0/24", "via": "172.30.4.4"}


def main() -> int:
    before = evaluate("static")
    after = evaluate("static", with_project_keys(stack_config("static"), staticRoutes=[EXTRA]))
    diff = changes(before, after)
    print(f"change: cilium-datapath-lab:staticRoutes += {EXTRA}\n")
    for (typ, name), op in sorted(diff.items(), key=lambda kv: (kv[0][1].startswith("verify-"), kv[0][1])):
        print(f"  {op:8} {typ} {name}")
    print()
    old = {r.name: r for r in before}
    for r in after:
        if (r.type, r.name) in diff and r.name.startswith("routes-"):
            a = old[r.name].inputs["environment"]["LAB_ROUTES"].splitlines()
            b = r.inputs["environment"]["LAB_ROUTES"].splitlines()
            print(f"{r.name}: environment.LAB_ROUTES")
            for line in difflib.unified_diff(a, b, lineterm="", n=5):
                if not line.startswith(("---", "+++", "@@")):
                    print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
