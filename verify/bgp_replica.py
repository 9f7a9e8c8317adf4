"""Real BGP daemons on a bgp replica: the project's rendered FRR config in Debian's FRR, GoBGP on every node.

Why: the BGP checks must be proven against real routing software, not canned JSON (LAB.md §4).
Every router namespace (`rtr`, and `rtr2`, ... with `bgp.routers` > 1) runs its own zebra and
bgpd from the project's own rendered `frr.conf` and `daemons` file for that router
(`lab.frr.frr_spec(config, plan, index)`, loaded the way FRR's images load it: daemons first,
then `vtysh -b`); each node namespace runs one `gobgpd` (Cilium's BGP control plane embeds
GoBGP) that dials every router, as Cilium does, and advertises the node's pod CIDR and the shared
Service VIP with `gobgp global rib add`. Zebra installs what bgpd selects into its router's
kernel, ECMP included.

Nothing touches a system FRR or GoBGP: every daemon gets explicit per-instance paths (config,
pid file, zserv socket, vty socket directory) inside a private runtime directory, GoBGP's gRPC API
listens on 127.0.0.1 inside its node's namespace on a port of its own, and gobgpd does not listen
for BGP at all (port -1). `BgpDaemons` stops every process it started (whole process groups) and
removes its runtime directory, whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from lab.config import LabConfig, parse_config
from lab.frr import FrrRouterSpec, frr_spec, render_frr_files
from lab.plan import AddressPlan, plan
from verify import parsers
from verify.bgp_checks import frr_peer_states, frr_route_nexthops, kernel_nexthops
from verify.probe import CommandResult, Topology
from verify.replica import ROUTER_NAME, Replica, ReplicaError

T = TypeVar("T")

FRR_BIN = Path("/usr/lib/frr")
FRR_USER = "frr"
# FRR's init starts zebra and staticd (and mgmtd from FRR 9 on) whatever `daemons` says; this runner
# starts zebra and what the file enables among the daemons it knows. staticd is left out: the lab
# configures no static routes.
ALWAYS_STARTED = ("zebra",)
STARTABLE = ("zebra", "bgpd")
GOBGP_API_BASE_PORT = 50051
CONVERGE_TIMEOUT = 30.0
POLL_INTERVAL = 0.2
STOP_GRACE = 3.0
ROUTER_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.fib_multipath_hash_policy", "1"),  # hash on L4 ports: flows spread across nexthops
    ("net.ipv4.conf.all.send_redirects", "0"),  # it forwards back onto the network it heard from
    ("net.ipv4.conf.default.send_redirects", "0"),
    ("net.ipv4.conf.eth0.send_redirects", "0"),
)


class BgpDaemonError(ReplicaError):
    """Starting, converging or stopping the BGP daemons failed; the message carries their logs."""


def tools_missing() -> list[str]:
    """What this host lacks to run the daemons (empty when everything is there)."""
    missing = [str(FRR_BIN / d) for d in STARTABLE if not os.access(FRR_BIN / d, os.X_OK)]
    missing += [t for t in ("vtysh", "gobgpd", "gobgp", "python3", "tcpdump") if shutil.which(t) is None]
    return missing


def replica_lab_config(replica: Replica, **bgp: Any) -> LabConfig:
    """A bgp LabConfig describing this replica (same cluster, underlay, pod plan and router count),
    with `bgp` keys as a stack file spells them (routerAsn, nodeAsn, routers, maximumPaths, vipCidr).

    `routers` defaults to the replica's; passing another count yields a config that BgpDaemons
    refuses for this replica."""
    raw = {
        "mode": "bgp",
        "clusterName": replica.cluster,
        "workers": len(replica.nodes) - 1,
        "underlaySubnet": str(replica.underlay),
        "podCidr": str(replica.pod_cidr),
        "podCidrMaskSize": replica.pod_mask,
        "bgp": {"routers": max(1, len(replica.routers)), **bgp},
    }
    return parse_config(raw, f"replica-{replica.cluster}")


@dataclass(frozen=True)
class Speaker:
    """One node's GoBGP, standing in for Cilium's BGP control plane on that node."""

    node: str
    namespace: str
    ip: ipaddress.IPv4Address
    asn: int
    api_port: int
    prefixes: tuple[ipaddress.IPv4Network, ...]  # the node's pod CIDR and the VIP /32


@dataclass(frozen=True)
class Router:
    """One FRR instance: a replica router namespace and the spec its config is rendered from."""

    name: str  # the replica's name for it: rtr, rtr2, ...
    namespace: str
    spec: FrrRouterSpec
    files: dict[str, str]  # rendered frr.conf, daemons, vtysh.conf
    runtime_subdir: str  # its directory in the runtime: frr (first router), frr-rtr2, ...

    @property
    def ip(self) -> ipaddress.IPv4Address:
        return self.spec.router_id


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def parse_daemons_file(text: str) -> dict[str, str]:
    """The shell assignments of an FRR `daemons` file (`bgpd=yes`, `bgpd_options="-A ..."`)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        if len(words) == 1 and "=" in words[0]:
            name, _, value = words[0].partition("=")
            values[name] = value
    return values


def daemons_to_start(daemons: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """(daemon, options) in start order, as FRR's init reads the `daemons` file."""
    enabled = [
        d for d in STARTABLE if d in ALWAYS_STARTED or daemons.get(d, "no").lower() not in ("no", "0", "")
    ]
    return [(d, shlex.split(daemons.get(f"{d}_options", ""))) for d in enabled]


class BgpDaemons:
    """FRR in every router namespace of the replica and GoBGP on every node, converged, as a context manager.

    `with BgpDaemons(replica, config) as bgp:` starts everything, waits (bounded) until every
    session on every router is Established and the routes are where they belong, and always stops
    every daemon it started. `bgp.probe` is the replica seen by the checks: its topology carries
    the VIP and its vtysh calls on any router reach that router's FRR instance.
    """

    def __init__(
        self,
        replica: Replica,
        config: LabConfig,
        *,
        spec: FrrRouterSpec | None = None,
        specs: Sequence[FrrRouterSpec] | None = None,
        vip: ipaddress.IPv4Address | None = None,
        timeout: float = CONVERGE_TIMEOUT,
        log_dir: Path | None = None,
    ) -> None:
        """Validate that config describes this replica before anything starts.

        spec: with one router, its spec (default: `frr_spec(config, plan, 0)`); replace fields on
            it to run a variant, e.g. `ebgp_requires_policy=True`.
        specs: the same for any router count, one spec per router in plan order (default:
            `frr_spec(config, plan, i)` for each). Give spec or specs, not both.
        vip: the Service VIP every node advertises (default: the first host of bgp.vipCidr).
        log_dir: where the daemons' logs and configs are copied on stop (default: not kept).
        """
        if config.bgp is None:
            raise ValueError(f"config of stack {config.stack!r} is mode {config.mode}, not bgp")
        if not replica.has_router:
            raise ValueError(f"a {replica.mode!r} replica has no router namespace; build mode 'bgp'")
        if replica.router_static_routes:
            raise ValueError(
                "build the replica with router_static_routes=False: static routes to the pod CIDRs would "
                "outrank (kernel routes) what BGP installs"
            )
        if spec is not None and specs is not None:
            raise ValueError("give spec (one router) or specs (one per router), not both")
        self.replica = replica
        self.config = config
        self.plan: AddressPlan = plan(config)
        self._match_replica()
        if spec is not None:
            if len(self.plan.router_ips) != 1:
                raise ValueError(
                    f"spec= describes one router; this lab has {len(self.plan.router_ips)}: use specs="
                )
            specs = [spec]
        if specs is None:
            specs = [frr_spec(config, self.plan, i) for i in range(len(self.plan.router_ips))]
        self.routers: tuple[Router, ...] = self._plan_routers(list(specs))
        self.vip = vip if vip is not None else next(iter(config.bgp.vip_cidr.hosts()))
        if vip is not None and vip not in config.bgp.vip_cidr:
            raise ValueError(f"VIP {vip} is outside bgp.vipCidr {config.bgp.vip_cidr}")
        self.timeout = timeout
        self.log_dir = log_dir
        self.speakers = tuple(self._plan_speakers())
        self.runtime: Path | None = None
        self.converge_seconds: float | None = None
        self._processes: dict[str, _Process] = {}
        self._vip_nodes: list[str] = []

    # --- the plan --------------------------------------------------------------------------------

    def _match_replica(self) -> None:
        rep, planned = self.replica, self.plan
        problems = []
        if [n.name for n in planned.nodes] != [n.name for n in rep.nodes]:
            problems.append(f"nodes {[n.name for n in planned.nodes]} vs {[n.name for n in rep.nodes]}")
        if planned.underlay != rep.underlay:
            problems.append(f"underlay {planned.underlay} vs {rep.underlay}")
        if [n.pod_cidr for n in planned.nodes] != [n.pod_cidr for n in rep.nodes]:
            problems.append("pod CIDRs differ")
        if list(planned.router_ips) != list(rep.router_ips):
            problems.append(
                f"the config's {len(planned.router_ips)} router(s) (bgp.routers) are at "
                f"{[str(ip) for ip in planned.router_ips]}, the replica's {len(rep.routers)} "
                f"({', '.join(rep.router_names)}) at {[str(ip) for ip in rep.router_ips]}"
            )
        if problems:
            raise ValueError(
                "the lab config does not describe this replica (build it with replica_lab_config, "
                "and the replica with as many routers as bgp.routers): " + "; ".join(problems)
            )

    def _plan_routers(self, specs: list[FrrRouterSpec]) -> tuple[Router, ...]:
        rep = self.replica
        if len(specs) != len(rep.routers):
            raise ValueError(f"{len(specs)} router specs for the replica's {len(rep.routers)} routers")
        routers = []
        for replica_router, router_spec in zip(rep.routers, specs, strict=True):
            if router_spec.router_id != replica_router.ip:
                raise ValueError(
                    f"the spec for {replica_router.name} has router-id {router_spec.router_id}, but "
                    f"{replica_router.name} is at {replica_router.ip}: the lab config does not describe "
                    "this replica"
                )
            routers.append(
                Router(
                    name=replica_router.name,
                    namespace=replica_router.namespace,
                    spec=router_spec,
                    files=render_frr_files(router_spec),
                    runtime_subdir="frr" if replica_router.index == 0 else f"frr-{replica_router.name}",
                )
            )
        return tuple(routers)

    @property
    def spec(self) -> FrrRouterSpec:
        """The first router's spec (every router shares ASN, timers and paths; only the id differs)."""
        return self.routers[0].spec

    @property
    def files(self) -> dict[str, str]:
        """The first router's rendered files; `router(name).files` for the others."""
        return self.routers[0].files

    @property
    def router_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.routers)

    def router(self, name: str = ROUTER_NAME) -> Router:
        for r in self.routers:
            if r.name == name:
                return r
        raise KeyError(f"no FRR router {name!r}; routers: {list(self.router_names)}")

    def _plan_speakers(self) -> list[Speaker]:
        speakers = []
        for planned, node in zip(self.plan.nodes, self.replica.nodes, strict=True):
            assert planned.asn is not None  # mode bgp: every node has one
            speakers.append(
                Speaker(
                    node=node.name,
                    namespace=node.namespace,
                    ip=node.ip,
                    asn=planned.asn,
                    api_port=GOBGP_API_BASE_PORT + node.index,
                    prefixes=(node.pod_cidr, ipaddress.IPv4Network(f"{self.vip}/32")),
                )
            )
        return speakers

    def speaker(self, node: str) -> Speaker:
        for s in self.speakers:
            if s.node == node:
                return s
        raise KeyError(f"no speaker on {node!r}; nodes: {[s.node for s in self.speakers]}")

    def gobgpd_config(self, speaker: Speaker) -> str:
        """gobgpd's TOML: dial every router (port 179) from the node IP, never listen (port -1)."""
        text = f'[global.config]\n  as = {speaker.asn}\n  router-id = "{speaker.ip}"\n  port = -1\n'
        for router in self.routers:
            spec = router.spec
            text += (
                "\n"
                "[[neighbors]]\n"
                "  [neighbors.config]\n"
                f'    neighbor-address = "{spec.router_id}"\n'
                f"    peer-as = {spec.asn}\n"
                "  [neighbors.timers.config]\n"
                "    connect-retry = 1\n"
                f"    hold-time = {spec.hold}\n"
                f"    keepalive-interval = {spec.keepalive}\n"
                "  [neighbors.transport.config]\n"
                f'    local-address = "{speaker.ip}"\n'
                "  [[neighbors.afi-safis]]\n"
                "    [neighbors.afi-safis.config]\n"
                '      afi-safi-name = "ipv4-unicast"\n'
            )
        return text

    @property
    def frr_dir(self) -> Path:
        """The first router's FRR directory (config, sockets, logs)."""
        return self.frr_dir_of(ROUTER_NAME)

    def frr_dir_of(self, router: str) -> Path:
        if self.runtime is None:
            raise BgpDaemonError("the daemons are not running")
        return self.runtime / self.router(router).runtime_subdir

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> BgpDaemons:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> BgpDaemons:
        """Start FRR on every router and every speaker, then wait until converged; on any failure,
        stop everything."""
        if os.geteuid() != 0:
            raise BgpDaemonError("the BGP daemons run in network namespaces: run as root")
        missing = tools_missing()
        if missing:
            raise BgpDaemonError(f"missing on this host: {', '.join(missing)} (Debian: frr, gobgpd, tcpdump)")
        if self.runtime is not None:
            raise BgpDaemonError("already started")
        started = time.monotonic()
        self.runtime = Path(tempfile.mkdtemp(prefix=f"{self.replica.prefix}bgp-"))
        try:
            self.runtime.chmod(0o711)  # FRR drops to user frr and must reach its own subdirectory
            self._prepare_routers()
            self._prepare_nodes()
            # Speakers first: GoBGP waits 5-9 s before its first dial, FRR boots meanwhile.
            for speaker in self.speakers:
                self._start_speaker(speaker)
            for router in self.routers:
                self._start_frr(router)
            for speaker in self.speakers:
                self._advertise(speaker)
            self._wait(self._converged, self.timeout, "the BGP lab to converge")
        except BaseException:
            self.stop()
            raise
        self.converge_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop every daemon this instance started and remove what it added; idempotent."""
        try:
            for name in reversed(list(self._processes)):
                self._end(self._processes.pop(name))
        finally:
            for router in self.routers:
                with contextlib.suppress(ReplicaError, OSError):
                    # zebra removes its routes when it exits cleanly; make sure no `proto bgp` is left.
                    self.replica.router_exec(["ip", "route", "flush", "proto", "bgp"], router=router.name)
            for node in self._vip_nodes:
                self.replica.node_exec(node, ["ip", "addr", "del", f"{self.vip}/32", "dev", "lo"])
            self._vip_nodes = []
            if self.runtime is not None:
                if self.log_dir is not None:
                    shutil.copytree(self.runtime, self.log_dir, dirs_exist_ok=True, ignore=_sockets)
                shutil.rmtree(self.runtime, ignore_errors=True)
                self.runtime = None

    def stop_speaker(self, node: str) -> float:
        """Stop one node's GoBGP (as if Cilium's agent died); returns seconds until every router
        dropped its session and withdrew its routes.

        Why both: FRR deletes a dynamic peer from its summary at once, but withdraws the peer's
        paths afterwards (bgpd's clearing queue, then zebra, then the kernel); a check run in
        between still finds the node's pod CIDR selected and installed.
        """
        speaker = self.speaker(node)
        process = self._processes.pop(f"gobgpd {node}", None)
        if process is None:
            raise BgpDaemonError(f"no running speaker on {node}")
        started = time.monotonic()
        self._end(process)

        def dropped() -> tuple[bool, str]:
            states = {r.name: self._peer_states(r.name).get(str(speaker.ip)) for r in self.routers}
            kept = sorted(name for name, state in states.items() if state == "Established")
            if kept:
                return False, f"{speaker.ip} still Established on {kept}"
            held = {r.name: held for r in self.routers if (held := self._still_routed_via(r, speaker))}
            return not held, f"routes via {speaker.ip} not yet withdrawn: {held}"

        self._wait(dropped, self.spec.hold + 5.0, f"FRR to drop {node}'s session and withdraw its routes")
        return time.monotonic() - started

    # --- the routers -----------------------------------------------------------------------------

    def _prepare_routers(self) -> None:
        settings = [f"{k}={v}" for k, v in ROUTER_SYSCTLS]
        for router in self.routers:
            self._must(self.replica.router_exec(["sysctl", "-q", "-w", *settings], router=router.name))

    def _prepare_nodes(self) -> None:
        """Every node holds the VIP on lo, so traffic ECMP sends it is consumed, as Cilium's LB does."""
        for speaker in self.speakers:
            self._must(
                self.replica.node_exec(speaker.node, ["ip", "addr", "replace", f"{self.vip}/32", "dev", "lo"])
            )
            self._vip_nodes.append(speaker.node)

    def _start_frr(self, router: Router) -> None:
        """Daemons from the router's rendered `daemons` file, then its frr.conf through `vtysh -b`."""
        frr = self.frr_dir_of(router.name)
        frr.mkdir(mode=0o750)
        for name, content in router.files.items():
            (frr / name).write_text(content)
        to_start = daemons_to_start(parse_daemons_file(router.files["daemons"]))
        for daemon, _ in to_start:
            (frr / f"{daemon}.conf").touch()  # its own file stays empty: frr.conf is loaded by vtysh -b
        for path in (frr, *frr.iterdir()):
            shutil.chown(path, FRR_USER, FRR_USER)
        for daemon, options in to_start:
            argv = [
                str(FRR_BIN / daemon),
                *options,
                "-u",
                FRR_USER,
                "-g",
                FRR_USER,
                "-f",
                str(frr / f"{daemon}.conf"),
                "-i",
                str(frr / f"{daemon}.pid"),
                "-z",
                str(frr / "zserv.api"),
                "--vty_socket",
                str(frr),
            ]
            self._spawn(f"{daemon} {router.name}", router.namespace, argv, frr / f"{daemon}.log")
            self._wait(
                _exists(frr / f"{daemon}.vty"), 10.0, f"{daemon} on {router.name} to open its vty socket"
            )
        booted = self.replica.router_exec(
            ["vtysh", "--config_dir", str(frr), "--vty_socket", str(frr), "-b"],
            timeout=30,
            router=router.name,
        )
        if not booted.ok:
            raise BgpDaemonError(
                f"vtysh -b on {router.name} rejected the rendered frr.conf: {booted.stdout}{booted.stderr}"
            )

    def router_vtysh(self, command: str, router: str = ROUTER_NAME) -> CommandResult:
        """`vtysh -c <command>` against one router's FRR instance (the first by default)."""
        return self.replica.router_exec(
            ["vtysh", "--vty_socket", str(self.frr_dir_of(router)), "-c", command], router=router
        )

    # --- the speakers ----------------------------------------------------------------------------

    def _start_speaker(self, speaker: Speaker) -> None:
        assert self.runtime is not None
        workdir = self.runtime / f"gobgp-{speaker.node}"
        workdir.mkdir(mode=0o700)
        conf = workdir / "gobgpd.toml"
        conf.write_text(self.gobgpd_config(speaker))
        argv = [
            "gobgpd",
            "-f",
            str(conf),
            "-t",
            "toml",
            "--api-hosts",
            f"127.0.0.1:{speaker.api_port}",
            "--pprof-disable",
            "--log-plain",
            "--log-level",
            "info",
        ]
        self._spawn(f"gobgpd {speaker.node}", speaker.namespace, argv, workdir / "gobgpd.log")

    def gobgp(self, node: str, argv: Sequence[str]) -> CommandResult:
        """The `gobgp` CLI against one node's gobgpd API."""
        speaker = self.speaker(node)
        return self.replica.node_exec(node, ["gobgp", "-p", str(speaker.api_port), *argv])

    def _advertise(self, speaker: Speaker) -> None:
        """The node's pod CIDR and the VIP, next hop = the node's IP, as Cilium advertises them."""

        def api_up() -> tuple[bool, str]:
            result = self.gobgp(speaker.node, ["global"])
            return result.ok, result.stderr.strip()

        self._wait(api_up, 10.0, f"gobgpd on {speaker.node} to answer on its API")
        for prefix in speaker.prefixes:
            add = ["global", "rib", "add", "-a", "ipv4", str(prefix), "nexthop", str(speaker.ip)]
            self._must(self.gobgp(speaker.node, add))

    # --- convergence -----------------------------------------------------------------------------

    def _peer_states(self, router: str = ROUTER_NAME) -> dict[str, str]:
        result = self.router_vtysh("show bgp summary json", router)
        if not result.ok:
            return {}
        try:
            return frr_peer_states(json.loads(result.stdout))
        except (json.JSONDecodeError, parsers.ParseError):
            return {}

    def _converged(self) -> tuple[bool, str]:
        """On every router: sessions up, every speaker's routes sent; and, when policy lets them in,
        where they belong."""
        for router in self.routers:
            states = self._peer_states(router.name)
            down = [
                f"{s.node} {states.get(str(s.ip), 'absent')}"
                for s in self.speakers
                if states.get(str(s.ip)) != "Established"
            ]
            if down:
                return False, f"sessions on {router.name} not Established: {down}"
        for router in self.routers:
            for s in self.speakers:
                sent = self.gobgp(s.node, ["neighbor", str(router.ip), "adj-out", "-a", "ipv4"])
                missing = [str(p) for p in s.prefixes if str(p) not in sent.stdout]
                if missing:
                    return False, f"{s.node} has not sent {missing} to {router.name} yet"
        for router in self.routers:
            check = self._updates_received if router.spec.ebgp_requires_policy else self._routes_in_place
            ok, why = check(router)
            if not ok:
                return False, f"{router.name}: {why}"
        return True, ""

    def _updates_received(self, router: Router) -> tuple[bool, str]:
        """With RFC 8212 on FRR drops what arrives; converged once every peer's UPDATEs have arrived."""
        result = self.router_vtysh("show bgp neighbors json", router.name)
        try:
            neighbors = json.loads(result.stdout) if result.ok else {}
        except json.JSONDecodeError:
            neighbors = {}
        waiting = [
            s.node
            for s in self.speakers
            if int(((neighbors.get(str(s.ip)) or {}).get("messageStats") or {}).get("updatesRecv", 0)) < 1
        ]
        return not waiting, f"no UPDATE received yet from {waiting}"

    def _routes_in_place(self, router: Router) -> tuple[bool, str]:
        """Each pod CIDR selected via its node and the VIP with its nexthops, all installed (the
        kernel acknowledged them), as bgp.pod-cidrs and bgp.ecmp require."""
        result = self.router_vtysh("show ip route json", router.name)
        if not result.ok:
            return False, f"show ip route json failed: {result.stderr.strip()}"
        routes = json.loads(result.stdout)
        for s in self.speakers:
            chosen, hops = frr_route_nexthops(routes, s.prefixes[0])
            if hops != [str(s.ip)]:
                return False, f"{s.prefixes[0]} via {hops}, not yet via {s.ip}"
            if not all(e.get("installed") for e in chosen):
                return False, f"{s.prefixes[0]} selected but not yet installed in the kernel"
        vip = ipaddress.IPv4Network(f"{self.vip}/32")
        want = min(len(self.speakers), router.spec.maximum_paths)
        chosen, hops = frr_route_nexthops(routes, vip)
        if len(hops) != want:
            return False, f"{vip} has {len(hops)} nexthops in FRR, waiting for {want}"
        if not all(e.get("installed") for e in chosen):
            return False, f"{vip} selected but not yet installed in the kernel"
        kernel = self.replica.router_exec(["ip", "-j", "route", "show", str(vip)], router=router.name)
        gateways = kernel_nexthops(kernel.stdout) if kernel.ok else []
        return len(gateways) == want, f"{vip} has {len(gateways)} kernel nexthops, waiting for {want}"

    def _still_routed_via(self, router: Router, speaker: Speaker) -> list[str]:
        """Where `router` still sends one of the speaker's prefixes to the speaker: any BGP entry
        in FRR's RIB (selected or not) with that nexthop, or a kernel route through it."""
        ip = str(speaker.ip)
        result = self.router_vtysh("show ip route json", router.name)
        try:
            routes = json.loads(result.stdout) if result.ok else None
        except json.JSONDecodeError:
            routes = None
        if not isinstance(routes, dict):
            return [f"FRR's RIB unreadable ({result.describe()})"]
        held = []
        for prefix in speaker.prefixes:
            entries = [e for e in routes.get(str(prefix)) or [] if e.get("protocol") == "bgp"]
            if any(nh.get("ip") == ip for e in entries for nh in e.get("nexthops", [])):
                held.append(f"{prefix} in FRR's RIB")
            kernel = self.replica.router_exec(["ip", "-j", "route", "show", str(prefix)], router=router.name)
            try:
                gateways = kernel_nexthops(kernel.stdout, self._nexthop_lookup(router)) if kernel.ok else [ip]
            except parsers.ParseError:
                gateways = [ip]
            if ip in gateways:
                held.append(f"{prefix} in the kernel")
        return held

    def _nexthop_lookup(self, router: Router) -> Callable[[int], str]:
        def lookup(nhid: int) -> str:
            shown = ["ip", "-j", "nexthop", "show", "id", str(nhid)]
            return self.replica.router_exec(shown, router=router.name).stdout

        return lookup

    # --- processes -------------------------------------------------------------------------------

    def _spawn(self, name: str, namespace: str, argv: Sequence[str], log: Path) -> None:
        """Start argv in a namespace, in its own process group (so stopping it takes all of it)."""
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", namespace, *argv],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[name] = _Process(name, proc, log)
        time.sleep(0.05)
        if proc.poll() is not None:
            raise BgpDaemonError(f"{name} exited at once ({proc.returncode}): {_tail(log)}")

    @staticmethod
    def _end(process: _Process) -> None:
        """SIGTERM to its process group, SIGKILL if it lingers; signalled only while not yet reaped,
        so the group id is still this daemon's."""
        proc = process.proc
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_GRACE)
        proc.wait()

    def _wait(self, done: Callable[[], tuple[bool, str]], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ok, why = done()
            if ok:
                return
            for process in self._processes.values():
                if process.proc.poll() is not None:
                    raise BgpDaemonError(
                        f"{process.name} died ({process.proc.returncode}): {_tail(process.log)}"
                    )
            if time.monotonic() >= deadline:
                logs = "\n".join(f"--- {p.name}:\n{_tail(p.log)}" for p in self._processes.values())
                raise BgpDaemonError(f"timed out after {timeout:g}s waiting for {what}: {why}\n{logs}")
            time.sleep(POLL_INTERVAL)

    def _must(self, result: CommandResult) -> CommandResult:
        if not result.ok:
            raise BgpDaemonError(f"{result.describe()}: {result.stderr.strip() or result.stdout.strip()}")
        return result

    # --- what the checks see ---------------------------------------------------------------------

    @property
    def probe(self) -> BgpProbe:
        return BgpProbe(self)


class BgpProbe:
    """The replica as the BGP checks see it: the VIP in the topology, vtysh reaching each router's FRR.

    In the kind lab a router name leads to its FRR container, whose vtysh finds its daemons on
    the default paths; here the same `vtysh -c ...` argv on any router name (`rtr`, `rtr2`, ...)
    gets that router's socket directory.
    """

    def __init__(self, daemons: BgpDaemons) -> None:
        self._daemons = daemons
        self._replica = daemons.replica
        base = self._replica.topology
        self.topology: Topology = dataclasses.replace(
            base,
            extra={**base.extra, "bgp.vip": str(daemons.vip)},
        )

    def node_exec(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        argv = list(argv)
        if node in self._daemons.router_names and argv[:1] == ["vtysh"]:
            argv = ["vtysh", "--vty_socket", str(self._daemons.frr_dir_of(node)), *argv[1:]]
        return self._replica.node_exec(node, argv, timeout)

    def pod_exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        return self._replica.pod_exec(pod, argv, timeout)

    def kube_get(self, resource: str) -> CommandResult:
        return self._replica.kube_get(resource)

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
        return self._replica.capture(node, interface, bpf_filter, traffic, out, count, timeout)

    def trace(self, node: str, traffic: Callable[[], T], timeout: float = 15.0) -> tuple[CommandResult, T]:
        return self._replica.trace(node, traffic, timeout)


def _exists(path: Path) -> Callable[[], tuple[bool, str]]:
    return lambda: (path.exists(), f"{path} does not exist yet")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _sockets(directory: str, names: list[str]) -> list[str]:
    """copytree filter: leave out sockets (vty, zserv), which cannot be copied."""
    return [n for n in names if Path(directory, n).is_socket()]
