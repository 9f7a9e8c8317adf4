"""A network-namespace replica of one lab mode: the same packet paths as a kind lab, on any Linux host.

Why it exists: the checks must be provable on a machine without Docker (LAB.md §4). The replica
builds, with nothing but iproute2, what Cilium builds on a kind node and what the mode installs:

- an underlay namespace with bridge `br0` (docker's network), one port per node (and router);
- three node namespaces named like kind's containers (`<cluster>-control-plane`, `-worker`,
  `-worker2`), each with `eth0` on the underlay and a `cilium_host`/`cilium_net` veth pair whose
  host end holds the node's router IP (/32) from its pod CIDR;
- pods in their own namespaces on veths whose host side is `lxc…` (pod side `eth0`), with a /32
  address, `<router IP> dev eth0` and `default via <router IP>` as Cilium sets them, and a
  `<pod IP> dev lxc… scope link` endpoint route on the node; pod-a and pod-b on the worker, pod-c
  on worker2; plus a health endpoint behind `lxc_health` on every node, as Cilium runs one;
- the routes each mode installs (overlay: every pod CIDR `via <router IP> dev cilium_host`, made to
  really encapsulate by an `ip rule` that sends what arrives on cilium_net to a table that routes
  over `cilium_vxlan` in external mode with `encap ip id <VNI> dst <node>`; native-auto:
  `<remote /27> via <node IP> dev eth0 proto kernel`; static: nothing until asked; bgp: the pod
  supernet via the router namespace, or with several routers one multipath route
  `<supernet> nexthop via R1 dev eth0 nexthop via R2 dev eth0` across all of them, as the lab's
  `lab.routes.bgp_routes` installs it);
- optionally, tc programs named like Cilium's on the same hooks, so `bpftool net show` reads alike.

Where it differs from Cilium, on purpose and visibly: forwarding is done by kernel routes, not by
the BPF programs (they only pass packets on), so overlay traffic takes one more routed hop through
cilium_host/cilium_net than a BPF redirect would (cross-node pod TTL 61: worker twice, worker2
once; native modes show the write-up's 62); neighbour entries are static
(Cilium answers ARP from BPF), so captures carry no pod ARP; IPv6 is off so captures carry no
IPv6 chatter. `kube_get` answers from the plan for the bits of the control plane checks read.

Every command is an argv list; nothing runs through a shell. Every namespace name starts with the
replica's prefix, so `down()` removes exactly what `up()` made and two replicas never meet.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from verify import parsers
from verify.probe import CommandResult, DeclaredRoute, NodeInfo, PodInfo, TcpdumpReadiness, Topology

T = TypeVar("T")

MODES = ("overlay", "geneve", "native-auto", "static", "bgp")
TUNNEL_MODES = ("overlay", "geneve")
NATIVE_MODES = ("native-auto", "static", "bgp")

VXLAN_PORT = 8472  # Cilium's default (pkg/defaults), not IANA's 4789
GENEVE_PORT = 6081
UNDERLAY_MTU = 1500
TUNNEL_OVERHEAD = 50  # outer Ethernet excluded: IPv4 20 + UDP 8 + VXLAN/Geneve 8 + inner Ethernet 14
CILIUM_HOST_MTU = 65520  # what Cilium gives cilium_host/cilium_net (seen in the write-up)
ENCAP_TABLE = 200  # where traffic arriving on cilium_net is routed into the tunnel
ENCAP_RULE_PRIORITY = 200
DEFAULT_VNI = 256  # Cilium carries the source security identity; 256 is the first cluster-local one
ROUTER_NAME = "rtr"  # the first router; the others are rtr2, rtr3, ...
MAX_ROUTERS = 4  # as lab/config.py allows for bgp.routers
BRIDGE = "br0"
NODE_ROLES = ("control-plane", "worker", "worker2")
# As in the real lab: pod-a and pod-b share a worker, pod-c sits on another one.
POD_PLACEMENT = (("pod-a", 1), ("pod-b", 1), ("pod-c", 2))
ROUTER_IP_OFFSET = 1  # router IP = pod CIDR network + 1
HEALTH_IP_OFFSET = 2  # each node's health endpoint (behind lxc_health), as Cilium runs one per node
HEALTH_LXC = "lxc_health"
POD_IP_OFFSET = 10  # pods take network + 10, + 11, ... of their node's CIDR

# Distinct per mode, like the real stacks' underlays (lab/modes.py uses 172.30.N), so a replica's
# addresses are never mistaken for a real lab's.
DEFAULT_UNDERLAY = {
    "overlay": "172.31.1.0/24",
    "geneve": "172.31.2.0/24",
    "native-auto": "172.31.3.0/24",
    "static": "172.31.4.0/24",
    "bgp": "172.31.5.0/24",
}
_TUNNEL_PODS = ("10.244.0.0/16", 24)
_NATIVE_PODS = ("10.10.0.0/16", 27)

HOOK_SOURCE = Path(__file__).resolve().parent / "bpf" / "cil_hooks.c"
HOOK_PROGRAMS = ("cil_from_container", "cil_to_host", "cil_from_host")

_KUBE_RESOURCES = {
    **dict.fromkeys(("nodes", "node", "no"), "Node"),
    **dict.fromkeys(("pods", "pod", "po"), "Pod"),
    **dict.fromkeys(("ciliumnodes", "ciliumnode", "ciliumnodes.cilium.io", "cn"), "CiliumNode"),
}
_PREFIX_RE = re.compile(r"^cdl[a-z0-9]{1,12}-$")
_CLUSTER_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_NETNS_DIR = Path("/run/netns")
_BATCH_FAILED_RE = re.compile(r"Command failed -:(\d+)")
_TIMEOUT_RC = 124  # what coreutils' timeout returns; a CommandResult must say "it hung", not raise


class ReplicaError(RuntimeError):
    """Building, driving or tearing down a replica failed; the message says which command and why."""


class ReplicaUnsupported(ReplicaError):
    """This kernel or host lacks something the mode needs (e.g. Geneve); not a bug in the replica."""


@dataclass(frozen=True)
class ReplicaNode:
    """A node as the replica builds it (kind container ↔ network namespace)."""

    name: str
    role: str
    index: int
    namespace: str
    ip: ipaddress.IPv4Address
    pod_cidr: ipaddress.IPv4Network
    router_ip: ipaddress.IPv4Address  # cilium_host's /32
    bridge_port: str  # its veth's name on br0, in the underlay namespace


@dataclass(frozen=True)
class ReplicaRouter:
    """A router (FRR container in the kind lab ↔ network namespace), bgp mode only."""

    name: str  # rtr, rtr2, ...: what node_exec/capture/router_exec take
    index: int  # 0-based, in the order of the lab plan's router_ips
    namespace: str
    ip: ipaddress.IPv4Address
    bridge_port: str  # its veth's name on br0


def router_name(index: int) -> str:
    """The replica's name for router `index` (0-based): rtr, rtr2, rtr3, ..."""
    return ROUTER_NAME if index == 0 else f"{ROUTER_NAME}{index + 1}"


@dataclass(frozen=True)
class ReplicaPod:
    """An endpoint: a test pod, or a node's health endpoint (the one behind `lxc_health`)."""

    name: str
    node: str
    namespace: str
    ip: ipaddress.IPv4Address
    lxc: str  # host-side veth name on the node
    lxc_mac: str
    mac: str  # pod-side eth0


def _mac(seed: str) -> str:
    """A stable, locally administered unicast MAC, so neighbour entries can be written up front."""
    digest = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in digest)


def _rfc1918(net: ipaddress.IPv4Network) -> bool:
    return any(net.subnet_of(block) for block in _RFC1918)


def _run(argv: Sequence[str], where: str, stdin: str | None = None, timeout: float = 30.0) -> CommandResult:
    """Run argv (never through a shell) and keep everything a failing check would need to show."""
    argv = tuple(argv)
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return CommandResult(where, argv, _TIMEOUT_RC, out, f"{err}\ntimed out after {timeout:g}s".lstrip())
    except FileNotFoundError as exc:
        return CommandResult(where, argv, 127, "", str(exc))
    return CommandResult(where, argv, proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class _Batch:
    """One `ip -batch` / `tc -batch` run: a list of lines executed by a single process."""

    where: str
    argv: tuple[str, ...]
    lines: tuple[str, ...]

    def run(self) -> CommandResult:
        return _run(self.argv, self.where, stdin="".join(f"{line}\n" for line in self.lines))

    def failed_line(self, result: CommandResult) -> str | None:
        match = _BATCH_FAILED_RE.search(result.stderr)
        if match is None:
            return None
        n = int(match.group(1))
        return self.lines[n - 1] if 0 < n <= len(self.lines) else None


def _ip_batch(namespace: str | None, lines: Sequence[str], where: str) -> _Batch:
    argv = ("ip", "-n", namespace, "-batch", "-") if namespace else ("ip", "-batch", "-")
    return _Batch(where, argv, tuple(lines))


def _tc_batch(namespace: str, lines: Sequence[str], where: str) -> _Batch:
    return _Batch(where, ("tc", "-n", namespace, "-batch", "-"), tuple(lines))


def _batch_stderr(result: CommandResult) -> str:
    """stderr without the batch's own "Command failed -:N" line (the failing line is named instead)."""
    return " ".join(ln for ln in result.stderr.strip().splitlines() if not _BATCH_FAILED_RE.search(ln))


def _batch_error(batch: _Batch, result: CommandResult) -> ReplicaError:
    line = batch.failed_line(result)
    what = f"`{batch.argv[0]} {line}`" if line else f"`{' '.join(batch.argv)}`"
    return ReplicaError(f"[{batch.where}] {what} failed (exit {result.returncode}): {_batch_stderr(result)}")


def _run_batches(batches: Sequence[_Batch]) -> list[tuple[_Batch, CommandResult]]:
    """Run independent batches concurrently (each is its own process), results in input order."""
    if len(batches) == 1:
        return [(batches[0], batches[0].run())]
    with ThreadPoolExecutor(max_workers=min(8, len(batches))) as pool:
        return list(zip(batches, pool.map(_Batch.run, batches), strict=True))


def _check(results: Sequence[tuple[_Batch, CommandResult]]) -> None:
    for batch, result in results:
        if not result.ok:
            raise _batch_error(batch, result)


def _sysctl(namespace: str, settings: Sequence[tuple[str, str]], where: str) -> _Batch:
    """sysctl runs inside the namespace: net.* sysctls are per network namespace."""
    argv = ("ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings))
    return _Batch(where, argv, ())


# --- eBPF hooks -----------------------------------------------------------------------------------

_hooks_lock = threading.Lock()
_hooks_cache: dict[str, Path] = {}


def _compile_hooks() -> Path:
    """Compile cil_hooks.c once per process into a private temp dir (0700, removed at exit).

    Private rather than a fixed /tmp path: root loads this object into the kernel, so it must not
    be something another user could have planted.
    """
    source = HOOK_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    with _hooks_lock:
        cached = _hooks_cache.get(digest)
        if cached is not None and cached.exists():
            return cached
        for tool in ("clang", "llvm-objcopy"):
            if shutil.which(tool) is None:
                raise ReplicaError(f"bpf_hooks=True needs `{tool}` on PATH (Debian: clang, llvm)")
        workdir = Path(tempfile.mkdtemp(prefix="cdl-bpf-"))
        atexit.register(shutil.rmtree, workdir, True)
        raw, obj = workdir / "cil_hooks.raw.o", workdir / "cil_hooks.o"
        clang = ["clang", "-O2", "-target", "bpf", "-Wall", "-Werror"]
        multiarch = Path("/usr/include") / f"{os.uname().machine}-linux-gnu"
        if multiarch.is_dir():  # <asm/types.h> lives here on Debian; -target bpf does not look
            clang += ["-I", str(multiarch)]
        compiled = _run([*clang, "-c", str(HOOK_SOURCE), "-o", str(raw)], "host")
        if not compiled.ok:
            raise ReplicaError(f"compiling {HOOK_SOURCE.name} failed: {compiled.stderr.strip()}")
        renames = [a for p in HOOK_PROGRAMS for a in ("--rename-section", f"cdl_sec_{p}={p}")]
        renamed = _run(["llvm-objcopy", *renames, str(raw), str(obj)], "host")
        if not renamed.ok:
            raise ReplicaError(f"renaming sections of {obj.name} failed: {renamed.stderr.strip()}")
        _hooks_cache[digest] = obj
        return obj


# --- the replica ----------------------------------------------------------------------------------


class Replica:
    """A lab mode rebuilt in network namespaces; implements the `verify.probe.Probe` interface.

    Use as a context manager (`with Replica("overlay") as r:`) so teardown always happens, or call
    `up()`/`down()` yourself. `topology` is known from construction on.
    """

    def __init__(
        self,
        mode: str,
        *,
        prefix: str | None = None,
        cluster: str = "replica",
        underlay: str | ipaddress.IPv4Network | None = None,
        pod_cidr: str | ipaddress.IPv4Network | None = None,
        pod_mask: int | None = None,
        static_routes: bool = False,
        router_ip: str | ipaddress.IPv4Address | None = None,
        routers: int = 1,
        router_static_routes: bool = True,
        bpf_hooks: bool = True,
        vni: int = DEFAULT_VNI,
        capture_drain: float = 0.1,
    ) -> None:
        """Validate everything up front, so a bad argument fails before any namespace exists.

        static_routes: static mode only, install `<remote /27> via <node IP>` at build time.
        router_ip: bgp mode, the first router's underlay address (default: the subnet's last
            host); further routers take the addresses below it (.254, .253, ... as lab/plan.py).
        routers: bgp mode, how many router namespaces (1-4): `rtr`, then `rtr2`, ... Every node
            routes the pod supernet via all of them (one multipath route when there are several).
        router_static_routes: bgp mode, give every router static routes to each /27 (turn off
            when a BGP daemon will install them instead).
        capture_drain: seconds a capture without a packet count keeps listening after the
            traffic returns, so tcpdump has read what the kernel already queued to it.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.prefix = check_prefix(prefix if prefix is not None else f"cdl{secrets.token_hex(3)}-")
        if not _CLUSTER_RE.match(cluster):
            raise ValueError(f"cluster {cluster!r} must be a DNS-1123 label of at most 32 characters")
        self.cluster = cluster
        if static_routes and mode != "static":
            raise ValueError("static_routes applies to mode 'static' only")
        if isinstance(routers, bool) or not isinstance(routers, int) or not 1 <= routers <= MAX_ROUTERS:
            raise ValueError(f"routers must be an integer 1-{MAX_ROUTERS}, not {routers!r}")
        if routers != 1 and mode != "bgp":
            raise ValueError("routers applies to mode 'bgp' only")
        self.static_routes = static_routes
        self.router_static_routes = router_static_routes
        self.bpf_hooks = bpf_hooks
        if not 0 < vni < 2**24:
            raise ValueError(f"vni must be in 1..16777215 (non-zero on the wire), not {vni}")
        self.vni = vni
        self.capture_drain = capture_drain

        self.underlay = ipaddress.IPv4Network(underlay if underlay is not None else DEFAULT_UNDERLAY[mode])
        if not _rfc1918(self.underlay) or self.underlay.prefixlen > 28:
            raise ValueError(f"underlay {self.underlay} must be an RFC 1918 subnet of /28 or larger")
        tunnel = mode in TUNNEL_MODES
        default_cidr, default_mask = _TUNNEL_PODS if tunnel else _NATIVE_PODS
        self.pod_cidr = ipaddress.IPv4Network(pod_cidr if pod_cidr is not None else default_cidr)
        self.pod_mask = pod_mask if pod_mask is not None else default_mask
        if not _rfc1918(self.pod_cidr) or self.pod_cidr.overlaps(self.underlay):
            raise ValueError(f"pod CIDR {self.pod_cidr} must be RFC 1918 and apart from the underlay")
        if not self.pod_cidr.prefixlen + 2 <= self.pod_mask <= 27:
            raise ValueError(
                f"pod mask /{self.pod_mask} must leave 3 blocks in {self.pod_cidr} and hold the "
                "router IP and pods (at most /27)"
            )

        self.nodes: tuple[ReplicaNode, ...] = self._plan_nodes()
        default_router = self.underlay.broadcast_address - 1  # the top host, as the lab plan does
        self.router_ip = ipaddress.IPv4Address(router_ip) if router_ip is not None else default_router
        self.router_namespace = f"{self.prefix}{ROUTER_NAME}"
        self._check_router_ip(self.router_ip, "")
        self.routers: tuple[ReplicaRouter, ...] = self._plan_routers(routers) if self.has_router else ()
        for extra_router in self.routers[1:]:
            self._check_router_ip(extra_router.ip, f" (of {extra_router.name}, below {self.router_ip})")
        self.pods: tuple[ReplicaPod, ...] = self._plan_pods()
        self.health: tuple[ReplicaPod, ...] = self._plan_health()
        self.bridge_namespace = f"{self.prefix}underlay"
        names = self.namespaces
        if len(set(names)) != len(names):
            raise ValueError(f"cluster name {cluster!r} makes namespace names collide: {names}")
        self.topology = self._make_topology()
        self.build_seconds: float | None = None

    # --- the plan (pure: known before anything is built) ------------------------------------------

    def _plan_nodes(self) -> tuple[ReplicaNode, ...]:
        """kind's node names; node IPs .2, .3, .4 (.1 is docker's gateway); pod CIDRs in node order."""
        base = self.underlay.network_address
        blocks = self.pod_cidr.subnets(new_prefix=self.pod_mask)
        return tuple(
            ReplicaNode(
                name=f"{self.cluster}-{role}",
                role=role,
                index=i,
                namespace=f"{self.prefix}{self.cluster}-{role}",
                ip=base + 2 + i,
                pod_cidr=cidr,
                router_ip=cidr.network_address + ROUTER_IP_OFFSET,
                bridge_port=role,
            )
            for (i, role), cidr in zip(enumerate(NODE_ROLES), blocks, strict=False)
        )

    def _plan_routers(self, count: int) -> tuple[ReplicaRouter, ...]:
        """Router i at router_ip - i: from the top of the underlay downward, as lab/plan.py does."""
        return tuple(
            ReplicaRouter(
                name=router_name(i),
                index=i,
                namespace=f"{self.prefix}{router_name(i)}",
                ip=self.router_ip - i,
                bridge_port=router_name(i),
            )
            for i in range(count)
        )

    def _check_router_ip(self, ip: ipaddress.IPv4Address, which: str) -> None:
        if ip not in self.underlay or ip in {n.ip for n in self.nodes}:
            raise ValueError(f"router IP {ip}{which} must be a free host of {self.underlay}")
        if ip in (self.underlay.network_address, self.underlay.broadcast_address):
            raise ValueError(f"router IP {ip}{which} is not a host address of {self.underlay}")

    def _plan_pods(self) -> tuple[ReplicaPod, ...]:
        pods: list[ReplicaPod] = []
        for name, node_index in POD_PLACEMENT:
            node = self.nodes[node_index]
            slot = sum(1 for p in pods if p.node == node.name)
            lxc = "lxc" + hashlib.sha256(f"{self.prefix}{node.name}/{name}".encode()).hexdigest()[:12]
            pods.append(
                ReplicaPod(
                    name=name,
                    node=node.name,
                    namespace=f"{self.prefix}{name}",
                    ip=node.pod_cidr.network_address + POD_IP_OFFSET + slot,
                    lxc=lxc,
                    lxc_mac=_mac(f"{self.prefix}{lxc}"),
                    mac=_mac(f"{self.prefix}{name}/eth0"),
                )
            )
        return tuple(pods)

    def _plan_health(self) -> tuple[ReplicaPod, ...]:
        """Cilium runs a health endpoint on every node, so every node (the control plane too) has
        an lxc* device with cil_from_container on it, which the bpf-hooks check expects."""
        return tuple(
            ReplicaPod(
                name=f"{node.name}-health",
                node=node.name,
                namespace=f"{self.prefix}{node.name}-health",
                ip=node.pod_cidr.network_address + HEALTH_IP_OFFSET,
                lxc=HEALTH_LXC,
                lxc_mac=_mac(f"{self.prefix}{node.name}/{HEALTH_LXC}"),
                mac=_mac(f"{self.prefix}{node.name}-health/eth0"),
            )
            for node in self.nodes
        )

    def _make_topology(self) -> Topology:
        extra = {
            "pool_cidr": str(self.pod_cidr),
            "pool_mask": str(self.pod_mask),
            "replica.prefix": self.prefix,
            "replica.underlay": str(self.underlay),
            "replica.pod_cidr": str(self.pod_cidr),
            "replica.bridge_namespace": self.bridge_namespace,
        }
        if self.mode in TUNNEL_MODES:
            extra["replica.vni"] = str(self.vni)
        if self.has_router:
            extra |= {
                "router": ROUTER_NAME,  # where pod traffic is expected and spread flows start
                "routers": ",".join(self.router_names),  # as the kind lab lists its FRR containers
                "router.ip": str(self.router_ip),
                "router.namespace": self.router_namespace,
            }
        return Topology(
            mode=self.mode,
            nodes=tuple(NodeInfo(n.name, n.ip, n.pod_cidr) for n in self.nodes),
            pods=tuple(PodInfo(p.name, p.node, p.ip) for p in self.pods),
            underlay_mtu=UNDERLAY_MTU,
            vxlan_port=VXLAN_PORT,
            geneve_port=GENEVE_PORT,
            routes=self._declared_routes(),
            extra=extra,
        )

    # --- naming ----------------------------------------------------------------------------------

    @property
    def has_router(self) -> bool:
        return self.mode == "bgp"

    @property
    def router_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.routers)

    @property
    def router_ips(self) -> tuple[ipaddress.IPv4Address, ...]:
        """In router order: the first is `router_ip`, the top of the underlay by default."""
        return tuple(r.ip for r in self.routers)

    @property
    def router_namespaces(self) -> tuple[str, ...]:
        return tuple(r.namespace for r in self.routers)

    def router(self, name: str = ROUTER_NAME) -> ReplicaRouter:
        for r in self.routers:
            if r.name == name:
                return r
        if not self.has_router:
            raise ReplicaError(f"a {self.mode!r} replica has no router; only mode 'bgp' does")
        raise KeyError(f"no router {name!r} in this replica; routers: {list(self.router_names)}")

    @property
    def tunnel_device(self) -> str | None:
        return {"overlay": "cilium_vxlan", "geneve": "cilium_geneve"}.get(self.mode)

    @property
    def pod_mtu(self) -> int:
        return UNDERLAY_MTU - TUNNEL_OVERHEAD if self.mode in TUNNEL_MODES else UNDERLAY_MTU

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this replica creates, in creation order."""
        names = [self.bridge_namespace, *(n.namespace for n in self.nodes)]
        names += [e.namespace for e in (*self.pods, *self.health)]
        return [*names, *self.router_namespaces]

    def node(self, name: str) -> ReplicaNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in this replica; nodes: {[n.name for n in self.nodes]}")

    def pod(self, name: str) -> ReplicaPod:
        for p in self.pods:
            if p.name == name:
                return p
        raise KeyError(f"no pod {name!r} in this replica; pods: {[p.name for p in self.pods]}")

    def node_namespace(self, node: str) -> str:
        return self.node(node).namespace

    def pod_namespace(self, pod: str) -> str:
        return self.pod(pod).namespace

    def _place(self, name: str) -> tuple[str, str]:
        """(namespace, where) for a node name, or for a router by its name (`rtr`, `rtr2`, ...)."""
        for r in self.routers:
            if r.name == name:
                return r.namespace, f"router {r.name}"
        return self.node(name).namespace, f"node {name}"

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Replica:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Replica:
        """Build the replica (after removing leftovers of this prefix); on any failure, tear down."""
        self._preflight()
        started = time.monotonic()
        self.down()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self.build_seconds = time.monotonic() - started
        return self

    def down(self) -> None:
        """Remove every namespace with this prefix, and end processes still running in them.

        Idempotent: with nothing left it does nothing. Only this prefix's namespaces are touched.
        """
        remove_namespaces(self.prefix)

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise ReplicaError("a replica creates network namespaces: run as root")
        tools = ["ip"] + (["tc", "bpftool"] if self.bpf_hooks else [])
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            raise ReplicaError(f"missing tools on PATH: {', '.join(missing)} (Debian: iproute2, bpftool)")

    def _build(self) -> None:
        hooks_obj = _compile_hooks() if self.bpf_hooks else None
        _check(_run_batches([_ip_batch(None, [f"netns add {n}" for n in self.namespaces], "host")]))
        # Namespace sysctls start at kernel defaults and apply to devices created afterwards
        # ("default"), so they go first: no rp_filter drops, no IPv6 chatter in captures.
        _check(_run_batches([self._base_sysctls(*place) for place in self._all_places()]))
        _check(_run_batches([self._bridge_batch()]))
        node_results = _run_batches([self._node_batch(n) for n in self.nodes])
        for batch, result in node_results:
            line = batch.failed_line(result) or ""
            if not result.ok and self.mode == "geneve" and "type geneve" in line:
                raise ReplicaUnsupported(
                    f"this kernel cannot create Geneve devices: `ip {line}` failed in {batch.where}: "
                    f"{_batch_stderr(result)} (mode geneve needs CONFIG_GENEVE; prove Geneve on "
                    "captured pcaps instead)"
                )
        _check(node_results)
        later = [self._pod_batch(p) for p in (*self.pods, *self.health)]
        later += [self._router_batch(r) for r in self.routers]
        if self.mode in TUNNEL_MODES:
            later += [self._tunnel_sysctls(n) for n in self.nodes]
        _check(_run_batches(later))
        if hooks_obj is not None:
            hooks = _run_batches([self._hooks_batch(n, hooks_obj) for n in self.nodes])
            for batch, result in hooks:
                if not result.ok:
                    raise ReplicaUnsupported(
                        f"the kernel refused the tc programs: {_batch_error(batch, result)} "
                        "(build with bpf_hooks=False to go without them)"
                    )
            self._verify_hooks()

    def _all_places(self) -> list[tuple[str, str, str]]:
        """(namespace, where, role) of everything built; role is underlay/node/endpoint/router."""
        places = [(self.bridge_namespace, "underlay", "underlay")]
        places += [(n.namespace, f"node {n.name}", "node") for n in self.nodes]
        places += [(p.namespace, f"pod {p.name}", "endpoint") for p in self.pods]
        places += [(h.namespace, f"endpoint {h.name}", "endpoint") for h in self.health]
        places += [(r.namespace, f"router {r.name}", "router") for r in self.routers]
        return places

    # --- what gets built -------------------------------------------------------------------------

    def _base_sysctls(self, namespace: str, where: str, role: str) -> _Batch:
        settings = [
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ]
        if role in {"node", "router"}:
            settings.append(("net.ipv4.ip_forward", "1"))
        if role == "router":
            # It forwards back onto the network it received from: redirects would teach nodes
            # to bypass it.
            settings += [
                ("net.ipv4.conf.all.send_redirects", "0"),
                ("net.ipv4.conf.default.send_redirects", "0"),
            ]
        return _sysctl(namespace, settings, where)

    def _tunnel_sysctls(self, node: ReplicaNode) -> _Batch:
        """cilium_net stands in for Cilium's BPF redirect: answer for the router IP, accept it."""
        return _sysctl(
            node.namespace,
            [
                ("net.ipv4.conf.cilium_net.proxy_arp", "1"),
                ("net.ipv4.conf.cilium_net.accept_local", "1"),
                ("net.ipv4.neigh.cilium_net.proxy_delay", "0"),
            ],
            f"node {node.name}",
        )

    def _bridge_batch(self) -> _Batch:
        lines = [f"link add name {BRIDGE} type bridge", f"link set {BRIDGE} up"]
        ports = [(n.bridge_port, n.namespace, f"{n.name}/eth0") for n in self.nodes]
        ports += [(r.bridge_port, r.namespace, f"{r.name}/eth0") for r in self.routers]
        for port, namespace, seed in ports:
            lines += [
                f"link add name {port} mtu {UNDERLAY_MTU} type veth peer name eth0 "
                f"address {_mac(self.prefix + seed)} mtu {UNDERLAY_MTU} netns {namespace}",
                f"link set {port} master {BRIDGE}",
                f"link set {port} up",
            ]
        return _ip_batch(self.bridge_namespace, lines, "underlay")

    def _tunnel_mac(self, node: ReplicaNode) -> str:
        return _mac(f"{self.prefix}{node.name}/{self.tunnel_device}")

    def _node_batch(self, node: ReplicaNode) -> _Batch:
        lines: list[str] = []
        tunnel = self.tunnel_device
        if tunnel is not None:
            # First, so a kernel without the tunnel type fails before anything else is built.
            kind, port = ("vxlan", VXLAN_PORT) if self.mode == "overlay" else ("geneve", GENEVE_PORT)
            lines += [
                f"link add name {tunnel} address {self._tunnel_mac(node)} mtu {self.pod_mtu} "
                f"type {kind} external dstport {port}",
                f"link set {tunnel} up",
            ]
        net_mac = _mac(f"{self.prefix}{node.name}/cilium_net")
        lines += [
            "link set lo up",
            f"addr add {node.ip}/{self.underlay.prefixlen} dev eth0",
            "link set eth0 up",
            f"link add name cilium_host address {_mac(f'{self.prefix}{node.name}/cilium_host')} "
            f"mtu {CILIUM_HOST_MTU} type veth peer name cilium_net address {net_mac} mtu {CILIUM_HOST_MTU}",
            f"addr add {node.router_ip}/32 dev cilium_host",
            "link set cilium_net up",
            "link set cilium_host up",
        ]
        for pod in self._endpoints_on(node):
            lines += [
                f"link add name {pod.lxc} address {pod.lxc_mac} mtu {self.pod_mtu} type veth "
                f"peer name eth0 address {pod.mac} mtu {self.pod_mtu} netns {pod.namespace}",
                f"link set {pod.lxc} up",
                f"route add {pod.ip} dev {pod.lxc} scope link proto kernel",
                # Cilium answers from BPF with MACs it knows; no ARP on the pod link here either.
                f"neigh add {pod.ip} lladdr {pod.mac} dev {pod.lxc} nud permanent",
            ]
        others = [n for n in self.nodes if n is not node]
        if tunnel is not None:
            # Cilium's shape: every pod CIDR via the local router IP on cilium_host. What leaves
            # cilium_host arrives on cilium_net, where the rule hands it to the encap table.
            lines.append(f"neigh add {node.router_ip} lladdr {net_mac} dev cilium_host nud permanent")
            lines += [f"route add {n.pod_cidr} via {node.router_ip} dev cilium_host" for n in self.nodes]
            for peer in others:
                lines += [
                    f"neigh add {peer.router_ip} lladdr {self._tunnel_mac(peer)} dev {tunnel} nud permanent",
                    f"route add {peer.pod_cidr} encap ip id {self.vni} dst {peer.ip} ttl 64 "
                    f"via {peer.router_ip} dev {tunnel} onlink table {ENCAP_TABLE}",
                ]
            lines += [
                f"route add unreachable default table {ENCAP_TABLE}",
                f"rule add iif cilium_net lookup {ENCAP_TABLE} priority {ENCAP_RULE_PRIORITY}",
            ]
        elif self.mode == "native-auto":
            lines += [f"route add {n.pod_cidr} via {n.ip} dev eth0 proto kernel" for n in others]
        elif self.mode == "static" and self.static_routes:
            lines += [f"route add {cidr} via {via}" for cidr, via in self.static_route_plan()[node.name]]
        elif self.mode == "bgp":
            lines.append(f"route add {self.supernet_route()}")
        return _ip_batch(node.namespace, lines, f"node {node.name}")

    def _endpoints_on(self, node: ReplicaNode) -> list[ReplicaPod]:
        return [e for e in (*self.pods, *self.health) if e.node == node.name]

    def _pod_batch(self, pod: ReplicaPod) -> _Batch:
        router_ip = self.node(pod.node).router_ip
        lines = [
            "link set lo up",
            f"addr add {pod.ip}/32 dev eth0",
            "link set eth0 up",
            f"route add {router_ip} dev eth0 scope link",
            f"route add default via {router_ip} dev eth0",
            f"neigh add {router_ip} lladdr {pod.lxc_mac} dev eth0 nud permanent",
        ]
        return _ip_batch(pod.namespace, lines, f"{'pod' if pod in self.pods else 'endpoint'} {pod.name}")

    def _router_batch(self, router: ReplicaRouter) -> _Batch:
        lines = [
            "link set lo up",
            f"addr add {router.ip}/{self.underlay.prefixlen} dev eth0",
            "link set eth0 up",
        ]
        if self.router_static_routes:
            lines += [f"route add {cidr} via {via} dev eth0" for cidr, via in self.router_route_plan()]
        return _ip_batch(router.namespace, lines, f"router {router.name}")

    def _expected_hooks(self, node: ReplicaNode) -> set[tuple[str, str, str]]:
        hooks = {(p.lxc, "ingress", "cil_from_container") for p in self._endpoints_on(node)}
        return hooks | {
            ("cilium_net", "ingress", "cil_to_host"),
            ("cilium_host", "ingress", "cil_to_host"),
            ("cilium_host", "egress", "cil_from_host"),
        }

    def _hooks_batch(self, node: ReplicaNode, obj: Path) -> _Batch:
        lines: list[str] = []
        qdiscs: list[str] = []
        for dev, direction, prog in sorted(self._expected_hooks(node)):
            if dev not in qdiscs:
                qdiscs.append(dev)
                lines.append(f"qdisc add dev {dev} clsact")
            lines.append(f"filter add dev {dev} {direction} bpf da obj {obj} sec {prog}")
        return _tc_batch(node.namespace, lines, f"node {node.name}")

    def _verify_hooks(self) -> None:
        """Read the hooks back the way the bpf-hooks check will; refuse a replica that lacks one."""
        argv = ["bpftool", "-j", "net", "show"]
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            results = list(pool.map(lambda n: self.node_exec(n.name, argv), self.nodes))
        for node, result in zip(self.nodes, results, strict=True):
            if not result.ok:
                raise ReplicaError(f"{result.describe()}: {result.stderr.strip()}")
            attached = {(a.device, a.direction, a.program) for a in parsers.parse_bpf_net(result.stdout)}
            missing = self._expected_hooks(node) - attached
            if missing:
                raise ReplicaError(
                    f"the kernel accepted the tc filters but bpftool on {node.name} does not list "
                    f"{sorted(missing)}: {result.stdout.strip()}"
                )

    # --- mode-specific routes --------------------------------------------------------------------

    def static_route_plan(self) -> dict[str, list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]]]:
        """Per node: the (remote pod CIDR, owning node IP) routes static mode needs."""
        return {n.name: [(o.pod_cidr, o.ip) for o in self.nodes if o is not n] for n in self.nodes}

    def _declared_routes(self) -> tuple[DeclaredRoute, ...]:
        """What the real lab declares to its checks: static mode's /27s, bgp's supernet route.

        With several routers the supernet route is multipath, which a DeclaredRoute (one `via`)
        cannot state: declaring the first router would be a route the kernel does not hold (a
        multipath route has no single gateway). So, like `lab.routes.RouteTable.declared()` in
        the kind lab, only single-next-hop routes are declared: none for bgp with routers > 1.
        """
        if self.mode == "static":
            return tuple(
                DeclaredRoute(node, cidr, via)
                for node, plan in self.static_route_plan().items()
                for cidr, via in plan
            )
        if self.mode == "bgp" and len(self.routers) == 1:
            return tuple(DeclaredRoute(n.name, self.pod_cidr, self.router_ip) for n in self.nodes)
        return ()

    def supernet_route(self) -> str:
        """bgp: every node's route to the pod supernet, in `ip route` syntax (multipath with > 1 router)."""
        self._require_mode("bgp")
        if len(self.routers) == 1:
            return f"{self.pod_cidr} via {self.router_ip} dev eth0"
        return " ".join([str(self.pod_cidr), *(f"nexthop via {r.ip} dev eth0" for r in self.routers)])

    def router_route_plan(self) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]]:
        """The router's (pod CIDR, node IP) routes: static here, BGP-learned in the real lab."""
        return [(n.pod_cidr, n.ip) for n in self.nodes]

    def add_static_routes(self) -> None:
        """Install `<remote /27> via <node IP>` on every node (idempotent: `route replace`)."""
        self._require_mode("static")
        plan = self.static_route_plan()
        batches = [
            _ip_batch(n.namespace, [f"route replace {c} via {v}" for c, v in plan[n.name]], f"node {n.name}")
            for n in self.nodes
        ]
        _check(_run_batches(batches))

    def remove_static_routes(self) -> None:
        """Remove those routes again (idempotent: only routes still present are deleted)."""
        self._require_mode("static")
        batches = []
        for name, plan in self.static_route_plan().items():
            shown = self.node_exec(name, ["ip", "-j", "route", "show"])
            if not shown.ok:
                raise ReplicaError(f"{shown.describe()}: {shown.stderr.strip()}")
            present = {r.get("dst") for r in json.loads(shown.stdout or "[]")}
            lines = [f"route del {c} via {v}" for c, v in plan if str(c) in present]
            if lines:
                batches.append(_ip_batch(self.node(name).namespace, lines, f"node {name}"))
        if batches:
            _check(_run_batches(batches))

    def _require_mode(self, mode: str) -> None:
        if self.mode != mode:
            raise ReplicaError(f"this is a {self.mode!r} replica; the operation needs mode {mode!r}")

    # --- the Probe interface ---------------------------------------------------------------------

    def node_exec(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run argv in a node's namespace (in mode bgp, `rtr`, `rtr2`, ... name the routers)."""
        namespace, where = self._place(node)
        return _run(["ip", "netns", "exec", namespace, *argv], where, timeout=timeout)

    def pod_exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        return _run(["ip", "netns", "exec", self.pod(pod).namespace, *argv], f"pod {pod}", timeout=timeout)

    def router_exec(
        self, argv: Sequence[str], timeout: float = 30.0, *, router: str = ROUTER_NAME
    ) -> CommandResult:
        """Run argv in a router's namespace (the first by default): the hook for FRR and its CLI."""
        return self.node_exec(self.router(router).name, argv, timeout)

    def kube_get(self, resource: str) -> CommandResult:
        """`kubectl get <resource> -o json` as the replica's stand-in control plane answers it.

        Knows nodes, pods and CiliumNodes (multi-pool allocations in native-auto, podCIDRs
        otherwise), from the same plan the namespaces were built from.
        """
        argv = ("kubectl", "get", resource, "-o", "json")
        kind = _KUBE_RESOURCES.get(resource.lower())
        if kind is None:
            msg = f'error: the server doesn\'t have a resource type "{resource}"\n'
            return CommandResult("replica control plane", argv, 1, "", msg)
        if kind == "Node":
            items = self._kube_nodes()
        elif kind == "Pod":
            items = self._kube_pods()
        else:
            items = self._kube_ciliumnodes()
        body = {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
        return CommandResult("replica control plane", argv, 0, json.dumps(body, indent=2) + "\n", "")

    def _kube_nodes(self) -> list[dict[str, Any]]:
        items = []
        for n in self.nodes:
            spec = (
                {}
                if self.mode == "native-auto"
                else {"podCIDR": str(n.pod_cidr), "podCIDRs": [str(n.pod_cidr)]}
            )
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name}},
                    "spec": spec,
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": str(n.ip)},
                            {"type": "Hostname", "address": n.name},
                        ]
                    },
                }
            )
        return items

    def _kube_pods(self) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": p.name, "namespace": "default"},
                "spec": {"nodeName": p.node},
                "status": {
                    "phase": "Running",
                    "hostIP": str(self.node(p.node).ip),
                    "podIP": str(p.ip),
                    "podIPs": [{"ip": str(p.ip)}],
                },
            }
            for p in self.pods
        ]

    def _kube_ciliumnodes(self) -> list[dict[str, Any]]:
        items = []
        for n in self.nodes:
            if self.mode == "native-auto":  # multi-pool IPAM: the operator's allocation
                ipam: dict[str, Any] = {
                    "pools": {"allocated": [{"pool": "default", "cidrs": [str(n.pod_cidr)]}]}
                }
            else:  # kubernetes IPAM: the node's podCIDR
                ipam = {"podCIDRs": [str(n.pod_cidr)]}
            items.append(
                {
                    "apiVersion": "cilium.io/v2",
                    "kind": "CiliumNode",
                    "metadata": {"name": n.name},
                    "spec": {
                        "addresses": [
                            {"type": "InternalIP", "ip": str(n.ip)},
                            {"type": "CiliumInternalIP", "ip": str(n.router_ip)},
                        ],
                        "health": {"ipv4": str(n.pod_cidr.network_address + HEALTH_IP_OFFSET)},
                        "ipam": ipam,
                    },
                }
            )
        return items

    def trace(self, node: str, traffic: Callable[[], T], timeout: float = 15.0) -> tuple[CommandResult, T]:
        """The replica runs no Cilium agent, so it has no trace points to read: a check that needs
        them cannot be judged here (its fast-tier worlds are recorded from real labs)."""
        raise OSError(f"[node {node}] cilium-dbg monitor: the replica runs no Cilium agent")

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
        """tcpdump on a node interface while `traffic()` runs; see `verify.probe.Probe.capture`.

        Stops when `count` packets are written or `timeout` seconds after the start, whichever
        comes first; without a count, `capture_drain` seconds after the traffic returns.
        """
        namespace, where = self._place(node)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = ["ip", "netns", "exec", namespace, "tcpdump", "-i", interface, "-w", str(out)]
        # -Z root: Debian's tcpdump otherwise drops to user tcpdump and cannot write root's dirs.
        argv += ["-U", "--immediate-mode", "-n", "-Z", "root"]
        if count is not None:
            argv += ["-c", str(count)]
        if bpf_filter.strip():
            argv.append(bpf_filter)
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        reader = TcpdumpReadiness(proc.stderr)
        if not reader.wait(timeout) or proc.poll() is not None:
            _stop(proc)
            reader.join(1)
            raise ReplicaError(f"[{where}] tcpdump on {interface} did not start listening: {reader.text}")
        interrupted = True
        try:
            result = traffic()
            interrupted = False
        finally:
            if not interrupted and count is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):  # time is up: stop it below
                    proc.wait(max(0.0, timeout - (time.monotonic() - started)))
            elif not interrupted:
                time.sleep(self.capture_drain)
            _stop(proc)
            reader.join(2)
        if proc.returncode not in (0, -signal.SIGINT):
            raise ReplicaError(f"[{where}] tcpdump on {interface} exited {proc.returncode}: {reader.text}")
        return out, result


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT first (tcpdump flushes and closes the file), then insist."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_prefix(prefix: str) -> str:
    """A prefix down() may act on: `cdl`, 1-12 lowercase letters/digits, `-`.

    No other dash, so one valid prefix is never the start of another (`cdlab-` vs `cdlabx-`).
    """
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"prefix {prefix!r} must look like 'cdl<1-12 lowercase letters/digits>-' so that "
            "teardown can only ever remove this replica's namespaces"
        )
    return prefix


def namespaces_with_prefix(prefix: str) -> list[str]:
    check_prefix(prefix)
    return sorted(n for n in _list_netns() if n.startswith(prefix))


def remove_namespaces(prefix: str) -> list[str]:
    """Delete every network namespace whose name starts with `prefix`; returns what it removed.

    Processes still inside (tcpdump, a routing daemon) are ended first: a namespace with a process
    in it outlives `ip netns del`, and so would its veths.
    """
    names = namespaces_with_prefix(prefix)
    if not names:
        return []
    _end_processes_in(names)
    # -force: one namespace vanishing meanwhile must not leave the others behind.
    result = _Batch("host", ("ip", "-force", "-batch", "-"), tuple(f"netns del {n}" for n in names)).run()
    leftovers = [n for n in names if (_NETNS_DIR / n).exists()]
    if leftovers:
        raise ReplicaError(f"could not remove namespaces {leftovers}: {_batch_stderr(result)}")
    return names


def _list_netns() -> list[str]:
    try:
        return os.listdir(_NETNS_DIR)
    except FileNotFoundError:
        return []


def _end_processes_in(namespaces: Sequence[str]) -> None:
    """End processes living in these namespaces (a daemon would keep a deleted namespace alive).

    Compares each process's net namespace with the namespace files, as `ip netns pids` does.
    """
    targets: set[tuple[int, int]] = set()
    for name in namespaces:
        try:
            st = os.stat(_NETNS_DIR / name)
        except OSError:
            continue
        targets.add((st.st_dev, st.st_ino))
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in targets:
            pids.append(int(entry))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _alive(p)]
            if alive:
                time.sleep(0.01)
        pids = alive
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Our own children linger as zombies until reaped; a zombie holds no namespace.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def topology_json(topology: Topology) -> dict[str, Any]:
    """The topology as plain JSON types, for the CLI and for reports."""
    return {
        "mode": topology.mode,
        "nodes": [
            {"name": n.name, "ip": str(n.ip), "pod_cidr": str(n.pod_cidr) if n.pod_cidr else None}
            for n in topology.nodes
        ],
        "pods": [{"name": p.name, "node": p.node, "ip": str(p.ip)} for p in topology.pods],
        "underlay_mtu": topology.underlay_mtu,
        "vxlan_port": topology.vxlan_port,
        "geneve_port": topology.geneve_port,
        "routes": [{"node": r.node, "dest": str(r.dest), "via": str(r.via)} for r in topology.routes],
        "extra": dict(sorted(topology.extra.items())),
    }
