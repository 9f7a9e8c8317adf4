"""The probe interface: the only way checks touch a lab, real (kind) or replica (netns)."""

from __future__ import annotations

import ipaddress
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CommandResult:
    """What a command did, kept whole so a failing check can show exactly what it ran."""

    where: str  # e.g. "node lab-overlay-worker" or "pod pod-a"
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return f"[{self.where}] $ {shlex.join(self.argv)}  (exit {self.returncode})"


@dataclass(frozen=True)
class PodInfo:
    name: str
    node: str
    ip: ipaddress.IPv4Address


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ip: ipaddress.IPv4Address  # underlay (eth0) address
    pod_cidr: ipaddress.IPv4Network | None  # None until known (multi-pool reads it from CiliumNode)


@dataclass(frozen=True)
class DeclaredRoute:
    """A route the lab declares on a node (static mode), to be found in its routing table."""

    node: str
    dest: ipaddress.IPv4Network
    via: ipaddress.IPv4Address


@dataclass(frozen=True)
class Topology:
    """What a check needs to know about the lab it inspects."""

    mode: str
    nodes: tuple[NodeInfo, ...]
    pods: tuple[PodInfo, ...]
    underlay_mtu: int = 1500
    vxlan_port: int = 8472
    geneve_port: int = 6081
    routes: tuple[DeclaredRoute, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def node(self, name: str) -> NodeInfo:
        return next(n for n in self.nodes if n.name == name)

    def pod(self, name: str) -> PodInfo:
        return next(p for p in self.pods if p.name == name)


class Probe(Protocol):
    """Runs commands where a check needs them. Implementations: verify.kind, verify.replica."""

    topology: Topology

    def node_exec(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run argv in the node's network namespace (kind: a tools sidecar sharing it)."""
        ...

    def pod_exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run argv inside a test pod's network namespace."""
        ...

    def kube_get(self, resource: str) -> CommandResult:
        """`kubectl get <resource> -o json` (a List). The replica answers for the parts of the
        control plane it stands in for (e.g. CiliumNode pool allocations)."""
        ...

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
        """Capture on a node interface into `out` (pcap) while `traffic()` runs.

        Starts tcpdump, waits until it is listening, runs `traffic`, then stops by packet count
        or time. Returns the pcap path and what `traffic` returned.
        """
        ...

    def trace(self, node: str, traffic: Callable[[], T], timeout: float = 15.0) -> tuple[CommandResult, T]:
        """Cilium's own trace points on the node (`cilium-dbg monitor --type trace` in its agent)
        while `traffic()` runs: the monitor is listening before the traffic starts and stopped
        after it. Returns what the monitor printed and what `traffic` returned."""
        ...


# What a probe runs in the node's Cilium agent for `trace` (and what a recorded world keys it by).
TRACE_ARGV = ("cilium-dbg", "monitor", "--type", "trace")


class StreamWatch:
    """A tool's output stream read on a thread, line by line, so that waiting for the line that
    says it is ready can time out instead of hanging on a tool (or `docker exec`) that never
    starts. With no marker it only collects the lines (an event stream)."""

    def __init__(self, stream: IO[str], marker: str | None = None) -> None:
        self.marker = marker
        self.lines: list[str] = []
        self._done = threading.Event()  # set on the marker, or at EOF (the tool is gone)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            if self.marker is not None and self.marker in line:
                self._done.set()
        self._done.set()

    def wait(self, timeout: float) -> bool:
        """True once the tool said it is ready; False if it exited or `timeout` passed first."""
        self._done.wait(timeout)
        return self.marker is not None and any(self.marker in line for line in self.lines)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def text(self) -> str:
        return "".join(self.lines).strip()


class TcpdumpReadiness(StreamWatch):
    """The capture handshake every probe uses: tcpdump says `listening on <if>` on stderr once its
    socket is open, and only then may traffic be sent."""

    def __init__(self, stderr: IO[str]) -> None:
        super().__init__(stderr, "listening on")


class MonitorReadiness(StreamWatch):
    """The same handshake for `cilium-dbg monitor`: it says "Listening for events on 2 CPUs with
    64x4096 of shared memory" on stderr once it is attached to the agent's event stream; the
    events follow on stdout."""

    def __init__(self, stderr: IO[str]) -> None:
        super().__init__(stderr, "Listening for events")
