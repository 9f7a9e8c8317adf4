"""The full comparison of the routing modes: `make compare` over every runnable mode (geneve where
the kernel has it), then its report, charts and JSON published under docs/compare/ for README.

A benchmark, not a test: it takes most of an hour on 2 cores (each mode's lab is brought up,
measured and destroyed, ROUNDS times). tests/test_real_compare.py runs a short one in CI.

    .venv/bin/python bench/compare_modes.py [--rounds 2] [--samples 5] [--modes overlay ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.report import CHARTS  # noqa: E402

OUT = ROOT / "artifacts" / "compare"
PUBLISHED = ROOT / "docs" / "compare"
KEPT = ("report.md", "compare.json", *CHARTS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["overlay", "geneve", "native-auto", "static", "bgp"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--no-publish", action="store_true", help="leave docs/compare/ as it is")
    args = parser.parse_args()
    argv = ["make", "--no-print-directory", "compare", f"MODES={' '.join(args.modes)}"]
    argv += [f"ROUNDS={args.rounds}", f"SAMPLES={args.samples}", f"COMPARE_FLAGS=--out {OUT}"]
    done = subprocess.run(argv, cwd=ROOT, check=False)
    if done.returncode != 0:
        print(f"bench: make compare exited {done.returncode}; docs/compare/ left as it was", file=sys.stderr)
        return done.returncode
    if not args.no_publish:
        PUBLISHED.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            shutil.copy2(OUT / name, PUBLISHED / name)
        print(f"bench: published {', '.join(KEPT)} in {PUBLISHED}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
