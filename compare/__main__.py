"""`python -m compare` (what `make compare` runs): see compare/run.py for what a run does.

.venv/bin/python -m compare [--modes overlay native-auto static bgp] [--rounds 2] [--samples 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from compare import report
from compare.run import MODES, run


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compare", description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--rounds", type=_positive, default=2, help="labs brought up per mode (default 2)")
    parser.add_argument("--samples", type=_positive, default=5, help="runs of each measurement per round")
    parser.add_argument("--iperf-seconds", type=_positive, default=3, help="length of one iperf3 run")
    parser.add_argument("--pings", type=_positive, default=20, help="echo requests in one ping run")
    parser.add_argument("--out", type=Path, default=Path("artifacts/compare"))
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="COMPARE_JSON",
        help="bring no lab up: draw the report and charts again from a run's compare.json, into --out",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        try:
            data = json.loads(args.report_from.read_text())
            results = report.results_from_json(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"error: --report-from {args.report_from}: not a compare.json ({exc!r})", file=sys.stderr)
            return 2
        path = report.write(results, data["settings"], args.out, data["machine"])
        print(f"[compare] report: {path}", file=sys.stderr)
        return 0
    modes = list(dict.fromkeys(args.modes))  # each mode once, in the order given
    settings = {
        "modes": modes,
        "rounds": args.rounds,
        "samples": args.samples,
        "iperf_seconds": args.iperf_seconds,
        "pings": args.pings,
    }
    try:
        results = run(modes, args.rounds, args.samples, args.iperf_seconds, args.pings, args.out)
    except KeyboardInterrupt:
        print("[compare] interrupted: every lab it brought up was destroyed", file=sys.stderr)
        return 130
    path = report.write(results, settings, args.out)
    print(f"[compare] report: {path} (and compare.json, {', '.join(report.CHARTS)})", file=sys.stderr)
    failed = [r.mode for r in results if r.failures]
    if failed:
        print(f"[compare] some steps failed for: {', '.join(failed)} (see the report)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
