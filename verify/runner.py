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
from contextlib import ExitStack
from pathlib import Path

from verify import catalogue, checks, report
from verify.probe import Probe


def run_checks(
    probe: Probe, stack: str, selected: Sequence[checks.Check], artifacts: Path, settle: bool = False
) -> list[checks.Verdict]:
    """Run checks in catalogue order, keep each verdict and re-render the report after each.

    settle: retry a FAIL within each check's settle budget (a real lab converging); the replica
    is built settled, so a FAIL there is final at once.
    """
    ctx = checks.Context(artifacts=artifacts, mode=probe.topology.mode)
    verdicts = []
    for check in selected:
        print(f"[verify] {check.id}: {check.claim} ...", file=sys.stderr, flush=True)
        verdict = check.run(probe, ctx, settle_seconds=check.settle_seconds if settle else 0.0)
        report.write_verdict(artifacts, check, verdict, probe.topology.mode)
        report.write_report(artifacts, stack, probe.topology.mode)
        print(f"[verify] {check.id}: {verdict.status}", file=sys.stderr, flush=True)
        if not verdict.passed:
            print(report.describe_failure(check.id, verdict), file=sys.stderr)
        verdicts.append(verdict)
    return verdicts


def _select(stack_mode: str, only: Sequence[str]) -> list[checks.Check]:
    selected = catalogue.for_stack(stack_mode)
    if only:
        wanted = [catalogue.by_id(c) for c in only]
        outside = [c.id for c in wanted if stack_mode not in c.stacks]
        if outside:
            raise SystemExit(f"error: {', '.join(outside)} do not apply to {stack_mode}")
        selected = wanted
    return selected


def _list(args: argparse.Namespace) -> int:
    rows = [c.describe() for c in catalogue.CATALOGUE if not args.stack or args.stack in c.stacks]
    print(json.dumps(rows, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    if not args.replica:
        from verify import kind  # noqa: PLC0415 (only the kind path needs Docker)

        if not args.stack:
            print("error: name the lab: --stack S (a running stack) or --replica MODE", file=sys.stderr)
            return 2
        # Under `pulumi up` the Verify resource hands over LAB_TOPOLOGY; by hand, read the host.
        try:
            kind_probe = kind.connect_stack(args.stack, args.control_plane, os.environ.get("LAB_TOPOLOGY"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot reach the {args.stack} lab: {exc}", file=sys.stderr)
            return 2
        selected = _select(kind_probe.topology.mode, args.check)
        artifacts = Path(args.artifacts or f"artifacts/{args.stack}")
        verdicts = run_checks(kind_probe, args.stack, selected, artifacts, settle=not args.no_settle)
    else:
        from verify import replica  # noqa: PLC0415 (only the replica path needs root and iproute2)

        mode = args.replica
        artifacts = Path(args.artifacts or f"artifacts/replica-{mode}")
        selected = _select(mode, args.check)
        for check in [c for c in selected if c.needs_agent]:
            print(f"[verify] {check.id}: left out, the replica runs no Cilium agent", file=sys.stderr)
        selected = [c for c in selected if not c.needs_agent]
        name = f"replica-{mode}"
        # bgp: the router learns the node routes from the real daemons, not from static routes.
        with (
            replica.Replica(
                mode, prefix=args.prefix, router_static_routes=mode != "bgp", routers=args.routers
            ) as rep,
            ExitStack() as stack,
        ):
            probe: Probe = rep
            if mode == "bgp":
                from verify.bgp_replica import BgpDaemons, replica_lab_config  # noqa: PLC0415

                print("[verify] starting FRR and a GoBGP speaker per node...", file=sys.stderr, flush=True)
                probe = stack.enter_context(BgpDaemons(rep, replica_lab_config(rep))).probe
            # As in the real stack: checks that prove the failure run before the routes exist.
            verdicts = run_checks(probe, name, [c for c in selected if c.before_routes], artifacts)
            if mode == "static":
                rep.add_static_routes()
            verdicts += run_checks(probe, name, [c for c in selected if not c.before_routes], artifacts)
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
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--kind", action="store_true", help="a running kind lab (the default; needs --stack)")
    where.add_argument(
        "--replica", metavar="MODE", choices=checks.ALL_STACKS, help="build a replica of MODE and check it"
    )
    parser.add_argument(
        "--stack", default="", help="the running stack to check (its stack file names the cluster)"
    )
    parser.add_argument("--check", action="append", default=[], help="run only this check (repeatable)")
    parser.add_argument(
        "--control-plane", default="", help="the control-plane container (default: from the stack)"
    )
    parser.add_argument(
        "--artifacts", default="", help="where pcaps and report.md go (default artifacts/<stack>)"
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="judge each check once, as the lab is now (a lab you changed by hand); by default a FAIL "
        "is retried within the check's settle budget while a real lab converges",
    )
    parser.add_argument("--prefix", default="cdlrun-", help="namespace prefix of the replica (--replica)")
    parser.add_argument("--routers", type=int, default=1, help="FRR routers in a bgp replica (1-4)")
    parser.set_defaults(func=_run)
