"""Command line of `verify`: `python -m verify <command> ...`.

Commands live in one table, `COMMANDS`: each entry adds its own subparser and sets `func`, so a
new command (`list`, `run`, ...) is one function plus one line in the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from verify import replica, runner

if TYPE_CHECKING:  # generic only in typeshed; at runtime _SubParsersAction cannot be subscripted
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
Handler = Callable[[argparse.Namespace], int]

CLI_PREFIX = "cdlcli-"  # what `replica up/down` act on unless told otherwise


def _replica_up(args: argparse.Namespace) -> int:
    try:
        rep = replica.Replica(
            args.mode,
            prefix=args.prefix,
            cluster=args.cluster,
            underlay=args.underlay,
            static_routes=args.static_routes,
            bpf_hooks=not args.no_bpf_hooks,
            routers=args.routers,
        )
        rep.up()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except replica.ReplicaUnsupported as exc:
        print(f"unsupported here: {exc}", file=sys.stderr)
        return 3
    except replica.ReplicaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    places = {n.name: n.namespace for n in rep.nodes} | {p.name: p.namespace for p in rep.pods}
    if rep.has_router:
        places[replica.ROUTER_NAME] = rep.router_namespace
    places["underlay"] = rep.bridge_namespace
    report = {
        "topology": replica.topology_json(rep.topology),
        "namespaces": places,
        "build_seconds": round(rep.build_seconds or 0.0, 3),
        "enter": f"ip netns exec {rep.nodes[1].namespace} bash",
        "example": (
            f"ip netns exec {rep.pod('pod-a').namespace} ping -c 3 {rep.pod('pod-c').ip}; "
            f"ip netns exec {rep.nodes[1].namespace} tcpdump -ni eth0"
        ),
        "down": f"python -m verify replica down --prefix {rep.prefix}",
    }
    print(json.dumps(report, indent=2))
    return 0


def _replica_down(args: argparse.Namespace) -> int:
    try:
        removed = replica.remove_namespaces(args.prefix)
    except (ValueError, replica.ReplicaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"prefix": args.prefix, "removed": removed}))
    return 0


def _add_replica(sub: Subparsers) -> None:
    parser = sub.add_parser("replica", help="build or remove a network-namespace replica of a lab mode")
    actions = parser.add_subparsers(dest="replica_command", required=True, metavar="{up,down}")
    up = actions.add_parser("up", help="build a replica and leave it running; prints its topology")
    up.add_argument("--mode", required=True, choices=replica.MODES)
    up.add_argument("--prefix", default=CLI_PREFIX, help=f"namespace name prefix (default {CLI_PREFIX})")
    up.add_argument("--cluster", default="replica", help="node names are <cluster>-control-plane, ...")
    up.add_argument("--underlay", default=None, help="underlay subnet (default: one /24 per mode)")
    up.add_argument("--static-routes", action="store_true", help="static mode: install the routes now")
    up.add_argument("--no-bpf-hooks", action="store_true", help="skip compiling/attaching tc programs")
    up.add_argument("--routers", type=int, default=1, help="bgp mode: how many router namespaces (1-4)")
    up.set_defaults(func=_replica_up)
    down = actions.add_parser("down", help="remove every namespace with the prefix (idempotent)")
    down.add_argument("--prefix", default=CLI_PREFIX, help=f"namespace name prefix (default {CLI_PREFIX})")
    down.set_defaults(func=_replica_down)


def _pcap(args: argparse.Namespace) -> int:
    import os  # noqa: PLC0415 (only this command redirects stdout)

    from verify import pcap  # noqa: PLC0415 (only this command needs it)

    problem: str | None = None
    code = 0
    try:
        try:
            # Streamed: the records before a cut are printed, then the error about the cut.
            for packet in pcap.iter_packets(
                args.file, vxlan_port=args.vxlan_port, geneve_port=args.geneve_port
            ):
                print(json.dumps(pcap.to_json(packet)))
        except BrokenPipeError:
            raise
        except pcap.CaptureError as exc:
            problem, code = str(exc), exc.exit_code
        except ValueError as exc:  # the two ports are one
            problem, code = str(exc), 2
        except OSError as exc:  # missing, a directory, no permission
            problem, code = f"{args.file}: {exc.strerror or exc}", 3
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a filter killed by SIGPIPE does. Point
        # stdout at /dev/null so the interpreter's last flush does not fail all over again.
        try:
            stdout = sys.stdout.fileno()
        except (OSError, ValueError):  # not a real file (a test's stand-in): nothing is left to flush
            return 141
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout)
        os.close(devnull)
        return 141
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
    return code


def _add_pcap(sub: Subparsers) -> None:
    from verify import pcap  # noqa: PLC0415 (only this command needs it)

    def udp_port(text: str) -> int:
        try:
            port = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a UDP port (1-65535)") from None
        if not 1 <= port <= 65535:
            raise argparse.ArgumentTypeError(f"{port} is not a UDP port (1-65535)")
        return port

    codes = [
        (0, "every record decoded"),
        (2, "usage: a port outside 1-65535, or one port for both tunnels"),
        (3, "the file cannot be opened (missing, a directory, no permission)"),
        *((error.exit_code, error.summary) for error in pcap.CAPTURE_ERRORS),
        (141, "stdout was closed early (e.g. `| head`); nothing more is printed"),
    ]
    epilog = "exit codes (each broken file: one line on stderr naming it and the problem):\n"
    epilog += "".join(f"  {code:<4} {text}\n" for code, text in sorted(codes))
    parser = sub.add_parser(
        "pcap",
        help="decode a capture: one JSON object per packet",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="a pcap or pcapng capture")
    parser.add_argument("--vxlan-port", type=udp_port, default=8472, help="UDP port decoded as VXLAN (8472)")
    parser.add_argument(
        "--geneve-port", type=udp_port, default=6081, help="UDP port decoded as Geneve (6081)"
    )
    parser.set_defaults(func=_pcap)


# The command table: append a registrar to add a command.
COMMANDS: list[Callable[[Subparsers], None]] = [runner.add_list, runner.add_run, _add_replica, _add_pcap]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
