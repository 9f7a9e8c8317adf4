"""`verify list` and `verify run`: the catalogue, and running a stack's checks against a lab.

`run --kind` is what each Verify resource executes during `pulumi up` (one check at a time);
`run --replica MODE` builds the network-namespace replica of a mode, runs the mode's checks
against it and tears it down, so anyone with a Linux machine can watch the checks work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from verify import checks, report
from verify.probe import Probe


def run_checks(
    probe: Probe, stack: str, selected: Sequence[checks.Check], artifacts: Path
) -> list[checks.Verdict]:
    """Run checks in catalogue order, keep each verdict and re-render the report after each."""
    ctx = checks.Context(artifacts=artifacts, mode=probe.topology.mode)
    verdicts = []
    for check in selected:
        print(f"[verify] {check.id}: {check.claim} ...", file=sys.stderr, flush=True)
        verdict = check.run(probe, ctx)
        report.write_verdict(artifacts, check, verdict)
        report.write_report(artifacts, stack, probe.topology.mode)
        print(f"[verify] {check.id}: {verdict.status}", file=sys.stderr, flush=True)
        if not verdict.passed:
            print(report.describe_failure(check.id, verdict), file=sys.stderr)
        verdicts.append(verdict)
    return verdicts


def _select(stack_mode: str, only: Sequence[str]) -> list[checks.Check]:
    selected = checks.for_stack(stack_mode)
    if only:
        wanted = [checks.by_id(c) for c in only]
        outside = [c.id for c in wanted if stack_mode not in c.stacks]
        if outside:
            raise SystemExit(f"error: {', '.join(outside)} do not apply to {stack_mode}")
        selected = wanted
    return selected


def _list(args: argparse.Namespace) -> int:
    rows = [c.describe() for c in checks.CATALOGUE if not args.stack or args.stack in c.stacks]
    print(json.dumps(rows, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.kind:
        from verify import kind  # noqa: PLC0415 (only the kind path needs Docker)

        topology_json = os.environ.get("LAB_TOPOLOGY")
        if not topology_json:
            print(
                "error: --kind needs LAB_TOPOLOGY (set by the Verify resource; see components/verify.py)",
                file=sys.stderr,
            )
            return 2
        probe: Probe = kind.connect(args.control_plane, topology_json)
        verdicts = run_checks(
            probe, args.stack, _select(probe.topology.mode, args.check), Path(args.artifacts)
        )
    else:
        from verify import replica  # noqa: PLC0415 (only the replica path needs root and iproute2)

        mode = args.replica
        artifacts = Path(args.artifacts or f"artifacts/replica-{mode}")
        selected = _select(mode, args.check)
        with replica.Replica(mode, prefix=args.prefix) as rep:
            # As in the real stack: checks that prove the failure run before the routes exist.
            verdicts = run_checks(rep, f"replica-{mode}", [c for c in selected if c.before_routes], artifacts)
            if mode == "static":
                rep.add_static_routes()
            verdicts += run_checks(
                rep, f"replica-{mode}", [c for c in selected if not c.before_routes], artifacts
            )
        print(f"[verify] report: {artifacts / 'report.md'}", file=sys.stderr)
    failed = [v.check for v in verdicts if not v.passed]
    print(json.dumps({"passed": len(verdicts) - len(failed), "failed": failed}))
    return 1 if failed else 0


def add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("list", help="print the checks catalogue (id, stacks, claim, pass rule) as JSON")
    parser.add_argument("--stack", help="only the checks of this stack/mode")
    parser.set_defaults(func=_list)


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("run", help="run a stack's checks against a running lab or a replica")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--kind", action="store_true", help="a running kind lab (LAB_TOPOLOGY from the Verify resource)"
    )
    where.add_argument(
        "--replica", metavar="MODE", choices=checks.ALL_STACKS, help="build a replica of MODE and check it"
    )
    parser.add_argument("--stack", default="", help="stack name (for the report; --kind)")
    parser.add_argument("--check", action="append", default=[], help="run only this check (repeatable)")
    parser.add_argument("--control-plane", default="", help="the control-plane node container (--kind)")
    parser.add_argument(
        "--artifacts", default="", help="where pcaps and report.md go (default artifacts/<stack>)"
    )
    parser.add_argument("--prefix", default="cdlrun-", help="namespace prefix of the replica (--replica)")
    parser.set_defaults(func=_run)
