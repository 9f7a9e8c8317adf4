"""Re-record the fast tier's worlds (tests/data/recorded/) from the replica and the BGP daemons.

Not run by the tests: run it by hand, as root, after a change to what a check asks a lab (a new
command, another capture filter), then read the diff of tests/data/recorded/ before committing:

    sudo .venv/bin/python tests/fast/record.py            # every world
    sudo .venv/bin/python tests/fast/record.py overlay    # one

`kind-overlay` and `kind-native-auto` are recorded from real labs that are up, and only when named
(see KIND_RECORDINGS): Cilium's trace points and `make compare`'s measurements.

Each world is one replica (overlay, native-auto, static before and after its routes, bgp with FRR
and GoBGP, bgp with two routers) against which every check of its stack ran once, every probe call
recorded. Two worlds are derived, not recorded, because this kernel cannot build them, and say
so in their `about`: `geneve` (the overlay world with its VXLAN device and packets rewritten as
Geneve on 6081, as `ip -j -d link` and tcpdump print them) and `overlay-tcx` (the overlay world
with bpftool's tc-filter entries rewritten in the tcx form bpftool >= 7.4 prints on Cilium 1.20).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakeprobe import RECORDED, Answer, World, command_key, load_world  # noqa: E402
from readme_checks import checks_of  # noqa: E402

from verify import catalogue  # noqa: E402
from verify.checks import Context, _df_ping_ok  # noqa: E402
from verify.probe import TRACE_ARGV, CommandResult, Probe, Topology  # noqa: E402
from verify.replica import topology_json  # noqa: E402

T = TypeVar("T")


class Recorder:
    """Wraps a probe and keeps the first answer to every distinct call (argv keyed as the fake
    looks it up), and every capture's pcap."""

    def __init__(self, inner: Probe, name: str) -> None:
        self.inner = inner
        self.topology: Topology = inner.topology
        self.world = World(name, inner.topology, {}, {})

    def _keep(self, call: str, target: str, argv: Sequence[str], result: CommandResult) -> CommandResult:
        self.world.commands.setdefault(
            command_key(call, target, argv), Answer(result.returncode, result.stdout, result.stderr)
        )
        return result

    def node_exec(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        return self._keep("node", node, argv, self.inner.node_exec(node, argv, timeout))

    def pod_exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        return self._keep("pod", pod, argv, self.inner.pod_exec(pod, argv, timeout))

    def kube_get(self, resource: str) -> CommandResult:
        argv = ("kubectl", "get", resource, "-o", "json")
        return self._keep("kube", "cluster", argv, self.inner.kube_get(resource))

    def capture(
        self,
        node: str,
        interface: str,
        bpf_filter: str,
        traffic: Callable[[], T],
        out: Path,
        count: int | None = None,
        timeout: float = 10.0,
    ) -> tuple[Path, T]:
        path, result = self.inner.capture(node, interface, bpf_filter, traffic, out, count, timeout)
        self.world.captures.setdefault((node, interface, bpf_filter), path.read_bytes())
        return path, result

    def trace(self, node: str, traffic: Callable[[], T], timeout: float = 15.0) -> tuple[CommandResult, T]:
        result, returned = self.inner.trace(node, traffic, timeout)
        return self._keep("trace", node, TRACE_ARGV, result), returned


def run_all(recorder: Recorder, checks: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(artifacts=Path(tmp), mode=recorder.topology.mode)
        for check_id in checks:
            verdict = catalogue.by_id(check_id).run(recorder, ctx)
            print(f"  {recorder.world.name}: {check_id} {verdict.status}", file=sys.stderr)
        if "path.mtu" in checks:
            # One DF ping just above the underlay MTU, which the check's search never sends: a
            # recorded answer for "too big", so a test can move the path MTU anywhere.
            topo = recorder.topology
            _df_ping_ok(recorder, "pod-a", topo.pod("pod-c").ip, topo.underlay_mtu + 1)


def stack_checks(stack: str) -> list[str]:
    """README's table: what each replica world must answer, but Cilium's own trace points,
    which only a real lab's agent has (the kind-* worlds)."""
    return [c for c in checks_of(stack) if not catalogue.by_id(c).needs_agent]


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "absent"
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0]


def host_facts() -> dict[str, str]:
    return {
        "kernel": platform.release(),
        "iproute2": _version(["ip", "-V"]),
        "bpftool": _version(["bpftool", "version"]),
        "tcpdump": _version(["tcpdump", "--version"]),
        "frr": _version(["dpkg-query", "-W", "-f", "frr ${Version}", "frr"]),
        "gobgpd": _version(["gobgpd", "--version"]),
    }


def save(world: World, about: str, source: str) -> None:
    folder = RECORDED / world.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    captures = []
    for i, ((node, iface, bpf), data) in enumerate(world.captures.items()):
        name = f"{i:02d}-{node}-{iface}.pcap"
        (folder / name).write_bytes(data)
        captures.append({"node": node, "interface": iface, "filter": bpf, "pcap": name})
    commands = [
        {"call": call, "target": target, "argv": list(argv), **vars(answer)}
        for (call, target, argv), answer in world.commands.items()
    ]
    body = {
        "about": {"what": about, "source": source, "host": host_facts(), "rerecord": "tests/fast/record.py"},
        "topology": topology_json(world.topology),
        "commands": commands,
        "captures": captures,
    }
    (folder / "world.json").write_text(json.dumps(body, indent=1, sort_keys=False) + "\n")
    print(f"wrote {folder} ({len(commands)} commands, {len(captures)} captures)", file=sys.stderr)


# --- the recorded worlds -------------------------------------------------------------------------


def record_replica(mode: str) -> None:
    from verify.replica import Replica  # noqa: PLC0415

    with Replica(mode, prefix=f"cdlrec{mode[:2]}-") as rep:
        recorder = Recorder(rep, mode)
        run_all(recorder, stack_checks(mode))
        save(recorder.world, f"a {mode} replica; every check of the stack passes", "recorded")


def record_static() -> None:
    from verify.replica import Replica  # noqa: PLC0415

    with Replica("static", prefix="cdlrecst-") as rep:
        bare = Recorder(rep, "static-bare")
        run_all(bare, stack_checks("static"))
        save(
            bare.world,
            "a static replica before its routes: only static.fails-without-routes passes",
            "recorded",
        )
        rep.add_static_routes()
        routed = Recorder(rep, "static")
        run_all(routed, [c for c in stack_checks("static") if c != "static.fails-without-routes"])
        save(
            routed.world,
            "a static replica with its routes; every check but the before-routes one passes",
            "recorded",
        )


def record_bgp(routers: int) -> None:
    from verify.bgp_replica import BgpDaemons, replica_lab_config  # noqa: PLC0415
    from verify.replica import Replica  # noqa: PLC0415

    name = "bgp" if routers == 1 else f"bgp-{routers}-routers"
    with (
        Replica("bgp", prefix=f"cdlrecb{routers}-", routers=routers, router_static_routes=False) as rep,
        BgpDaemons(rep, replica_lab_config(rep)) as daemons,
    ):
        recorder = Recorder(daemons.probe, name)
        run_all(recorder, stack_checks("bgp"))
        about = f"a bgp replica with {routers} FRR router(s) and a GoBGP speaker per node; every check passes"
        save(recorder.world, about, "recorded")


# --- the derived worlds ----------------------------------------------------------------------------


def _as_geneve(p: Any) -> Any:
    """A VXLAN frame rewritten as Geneve on 6081 with the same VNI and inner frame."""
    from scapy.contrib.geneve import GENEVE  # noqa: PLC0415
    from scapy.layers.inet import IP, UDP  # noqa: PLC0415
    from scapy.layers.l2 import Ether  # noqa: PLC0415
    from scapy.layers.vxlan import VXLAN  # noqa: PLC0415

    if not p.haslayer(VXLAN):
        return p
    vni, inner, udp = p[VXLAN].vni, p[VXLAN].payload, p[UDP]
    udp.sport, udp.dport = (6081 if port == 8472 else port for port in (udp.sport, udp.dport))
    udp.remove_payload()
    udp.add_payload(GENEVE(vni=vni, proto=0x6558) / inner)
    del udp.len, udp.chksum, p[IP].len, p[IP].chksum
    rebuilt = Ether(bytes(p))
    rebuilt.time = p.time  # keep the capture's timestamps: a re-derivation must give the same file
    return rebuilt


def derive_geneve() -> None:
    """The overlay world as a Geneve lab would answer it: this kernel has no geneve module."""
    base = load_world("overlay")
    world = World("geneve", dataclasses.replace(base.topology, mode="geneve"), {}, {})
    for key, answer in base.commands.items():
        new = copy_answer(answer)
        if key[2][:4] == ("ip", "-j", "-d", "link"):
            links = json.loads(answer.stdout)
            for link in links:
                if link["ifname"] == "cilium_vxlan":
                    # iproute2's geneve_print_opt prints `external` and `port` in JSON as vxlan does.
                    link["ifname"] = "cilium_geneve"
                    link["linkinfo"] = {"info_kind": "geneve", "info_data": {"external": True, "port": 6081}}
            new.stdout = json.dumps(links)
        world.commands[key] = new
    for (node, iface, bpf), data in base.captures.items():
        renamed = (
            node,
            "cilium_geneve" if iface == "cilium_vxlan" else iface,
            bpf.replace("udp port 8472 or (", "udp port 6081 or ("),
        )
        world.captures[renamed] = data
        world.set_packets(renamed, [_as_geneve(p) for p in world.packets(renamed)])
    save(
        world,
        "DERIVED from the overlay world: cilium_vxlan/8472 rewritten as cilium_geneve/6081 and every "
        "VXLAN packet as Geneve (same VNI); this kernel has no geneve module",
        "derived from overlay",
    )


def copy_answer(answer: Answer) -> Answer:
    return Answer(answer.returncode, answer.stdout, answer.stderr)


def derive_tcx() -> None:
    """The overlay world as bpftool >= 7.4 prints Cilium 1.20's tcx attachments."""
    base = load_world("overlay")
    world = World("overlay-tcx", base.topology, {}, dict(base.captures))
    for key, answer in base.commands.items():
        new = copy_answer(answer)
        if key[2] == ("bpftool", "-j", "net", "show"):
            sections = json.loads(answer.stdout)
            for section in sections:
                section["tc"] = [
                    {
                        "devname": e["devname"],
                        "ifindex": e["ifindex"],
                        "kind": e["kind"].replace("clsact/", "tcx/"),
                        "name": e["name"].split(":[", 1)[1].rstrip("]") if ":[" in e["name"] else e["name"],
                        "prog_id": e.get("id", e.get("prog_id")),
                    }
                    for e in section.get("tc", [])
                ]
            new.stdout = json.dumps(sections)
        world.commands[key] = new
    save(
        world,
        "DERIVED from the overlay world: bpftool's clsact entries `<object>:[<section>]` rewritten in the tcx form (kind tcx/<dir>, name = program name, prog_id) that bpftool >= 7.4 prints",
        "derived from overlay",
    )


def record_kind(stack: str) -> None:
    """A world from a real kind lab that is up (`make up STACK=<stack>`): Cilium's trace points
    (datapath.trace), which the replica has no agent for, and one round of `make compare`'s
    measurements (iperf3, ping, the wire capture, the DF search, the route tables)."""
    from compare.measure import measure_round  # noqa: PLC0415
    from lab.stack_file import stack_config  # noqa: PLC0415
    from verify import kind  # noqa: PLC0415

    config = stack_config(stack)
    probe = kind.connect_stack(stack)
    recorder = Recorder(probe, f"kind-{config.mode.value}")
    run_all(recorder, ["datapath.trace"])
    with tempfile.TemporaryDirectory() as tmp:
        measure_round(
            recorder, Path(tmp), samples=1, seconds=2, pings=5, say=lambda t: print(f"  {t}", file=sys.stderr)
        )
    about = (
        f"a real kind lab ({config.mode.value}, Cilium {config.cilium_version}): datapath.trace and one "
        "round of compare.measure"
    )
    save(recorder.world, about, "recorded from a real kind lab")


RECORDINGS: dict[str, Callable[[], None]] = {
    "overlay": lambda: record_replica("overlay"),
    "native-auto": lambda: record_replica("native-auto"),
    "static": record_static,
    "bgp": lambda: record_bgp(1),
    "bgp-2-routers": lambda: record_bgp(2),
    "geneve": derive_geneve,
    "overlay-tcx": derive_tcx,
}


# Recorded from real labs, only when named: `make up STACK=overlay` first, then
# `.venv/bin/python tests/fast/record.py kind-overlay` (with the Makefile's DOCKER_HOST).
KIND_RECORDINGS: dict[str, Callable[[], None]] = {
    "kind-overlay": lambda: record_kind("overlay"),
    "kind-native-auto": lambda: record_kind("native-auto"),
}


def main(argv: list[str]) -> int:
    names = argv or list(RECORDINGS)
    every = {**RECORDINGS, **KIND_RECORDINGS}
    unknown = [n for n in names if n not in every]
    if unknown:
        print(f"unknown: {unknown}; worlds: {list(every)}", file=sys.stderr)
        return 2
    for name in names:
        every[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
