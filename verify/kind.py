"""The probe for a real lab on a Docker host.

Node commands run in a pinned tools sidecar (netshoot, or the tools image built offline: ip, tcpdump) that shares the kind node's
network namespace (`--network container:<node>`), so nothing is installed into the node.
bpftool, which netshoot lacks, runs in the node's Cilium agent container: the agent uses the
host network, so it sees the same devices, and it ships a bpftool new enough to list tcx
attachments (>= 7.4). Pod commands and
Kubernetes reads run kubectl inside the control-plane node with its admin kubeconfig, so the
host needs only Docker. Every command is an argv list; nothing goes through a shell on the host.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lab.config import LabConfig
from lab.plan import UNDERLAY_MTU, AddressPlan
from verify.parsers import parse_ciliumnode_pools, parse_kube_list
from verify.probe import (
    TRACE_ARGV,
    CommandResult,
    DeclaredRoute,
    MonitorReadiness,
    NodeInfo,
    PodInfo,
    StreamWatch,
    TcpdumpReadiness,
    Topology,
)

T = TypeVar("T")
TEST_NAMESPACE = "cdl-verify"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
AGENT_TOOLS = frozenset({"bpftool"})  # run in the Cilium agent container on the node
ROUTER_TOOLS = frozenset({"vtysh"})  # run in the FRR container itself; the rest in its sidecar


# A long-running tool started in a container records its PID there, so that it can be stopped
# with SIGINT (tcpdump flushes its pcap, the monitor disconnects) by that PID alone.
RECORD_PID = 'echo $$ > "$0"; exec "$@"'  # sh -c RECORD_PID <pidfile> <argv...>
INTERRUPT_PID = 'kill -INT "$(cat "$0")"; rm -f "$0"'  # sh -c INTERRUPT_PID <pidfile>


def _interrupt(proc: subprocess.Popen[Any], stop_argv: Sequence[str], where: str, timeout: float) -> None:
    """SIGINT the tool by its PID file (stop_argv runs INTERRUPT_PID where it runs), then wait
    for the local `docker exec` to end; killed if it does not within `timeout`."""
    _run(where, stop_argv, 30.0)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def sidecar_name(node: str) -> str:
    return f"cdl-tools-{node}"


def _run(where: str, argv: Sequence[str], timeout: float, stdin: str | None = None) -> CommandResult:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, input=stdin
        )
        return CommandResult(where, tuple(argv), done.returncode, done.stdout, done.stderr)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return CommandResult(where, tuple(argv), 124, out, f"timed out after {timeout:g}s")


class KindProbe:
    """Probe a kind lab through `docker exec` (node sidecars) and kubectl in the control plane."""

    def __init__(self, control_plane: str, topology: Topology) -> None:
        self.control_plane = control_plane
        self.topology = topology

    # --- the Probe interface ---------------------------------------------------------------

    def node_exec(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run on a kind node, or on an FRR router (bgp): routers are named in the topology."""
        if node in self._routers:
            if argv and argv[0] in ROUTER_TOOLS:  # FRR's own CLI lives in the router container
                return _run(f"router {node}", ["docker", "exec", node, *argv], timeout)
            return _run(f"router {node}", ["docker", "exec", sidecar_name(node), *argv], timeout)
        if argv and argv[0] in AGENT_TOOLS:
            return self._agent_exec(node, argv, timeout)
        return _run(f"node {node}", ["docker", "exec", sidecar_name(node), *argv], timeout)

    @property
    def _routers(self) -> set[str]:
        return {r for r in self.topology.extra.get("routers", "").split(",") if r}

    def _agent_pod(self, node: str) -> tuple[str, CommandResult]:
        """The Cilium agent pod on `node` ("pod/cilium-xxxxx"), or "" with the lookup that failed."""
        selector = ["-n", "kube-system", "get", "pods", "-l", "k8s-app=cilium"]
        found = _run(
            "cluster",
            [*self._kubectl(), *selector, "--field-selector", f"spec.nodeName={node}", "-o", "name"],
            30.0,
        )
        pod = found.stdout.strip().splitlines()[0] if found.ok and found.stdout.strip() else ""
        return pod, found

    def _agent_argv(self, pod: str, argv: Sequence[str], stdin: bool = False) -> list[str]:
        exec_ = [*self._kubectl(), "-n", "kube-system", "exec", *(["-i"] if stdin else []), pod]
        return [*exec_, "-c", "cilium-agent", "--", *argv]

    def _agent_exec(self, node: str, argv: Sequence[str], timeout: float) -> CommandResult:
        pod, found = self._agent_pod(node)
        if not pod:
            return CommandResult(
                f"node {node}", tuple(argv), 1, "", f"no Cilium agent pod on {node}: {found.stderr}"
            )
        return _run(f"node {node} (cilium agent)", self._agent_argv(pod, argv), timeout)

    def pod_exec(self, pod: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        return _run(f"pod {pod}", [*self._kubectl(), "-n", TEST_NAMESPACE, "exec", pod, "--", *argv], timeout)

    def kube_get(self, resource: str, namespace: str | None = None) -> CommandResult:
        scope = ["-n", namespace] if namespace else []
        return _run("cluster", [*self._kubectl(), "get", resource, *scope, "-o", "json"], 60.0)

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
        """tcpdump in the node's sidecar, written to `out` on the host as it arrives."""
        tag = uuid.uuid4().hex[:12]
        pidfile = f"/tmp/cdl-capture-{tag}.pid"  # noqa: S108 (inside the sidecar, a unique name)
        tcpdump = ["tcpdump", "-i", interface, "-n", "-U", "--immediate-mode", "-w", "-"]
        if count:
            tcpdump += ["-c", str(count)]
        tcpdump.append(bpf_filter)
        argv = ["docker", "exec", "-i", sidecar_name(node), "sh", "-c", RECORD_PID, pidfile, *tcpdump]
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as sink:
            proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, text=True)
            assert proc.stderr is not None
            ready = TcpdumpReadiness(proc.stderr)
            try:
                if not ready.wait(timeout):
                    proc.kill()
                    raise OSError(
                        f"tcpdump did not start listening within {timeout:g}s: {ready.text or 'no output'}"
                    )
                result = traffic()
                time.sleep(0.5)  # let the last replies arrive
            finally:
                stop = ["docker", "exec", sidecar_name(node), "sh", "-c", INTERRUPT_PID, pidfile]
                _interrupt(proc, stop, f"node {node}", timeout)
        return out, result

    def trace(self, node: str, traffic: Callable[[], T], timeout: float = 15.0) -> tuple[CommandResult, T]:
        """`cilium-dbg monitor --type trace` in the node's agent while `traffic()` runs.

        As a capture: the monitor records its PID in the agent container and is stopped with
        SIGINT once the traffic is done; `timeout` inside the agent bounds it in any case, so no
        monitor outlives the check even when the stop cannot reach it."""
        pod, found = self._agent_pod(node)
        where = f"node {node} (cilium agent)"
        if not pod:
            raise OSError(f"[{where}] no Cilium agent pod on {node}: {found.stderr.strip()}")
        pidfile = f"/tmp/cdl-monitor-{uuid.uuid4().hex[:12]}.pid"  # noqa: S108 (in the agent, unique)
        bound = str(int(timeout) + 30)  # the traffic's own time, then the stop, within it
        monitor = ["timeout", "-s", "INT", bound, *TRACE_ARGV]
        argv = self._agent_argv(pod, ["sh", "-c", RECORD_PID, pidfile, *monitor])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        ready = MonitorReadiness(proc.stderr)
        events = StreamWatch(proc.stdout)
        try:
            if not ready.wait(timeout):
                proc.kill()
                raise OSError(
                    f"[{where}] cilium-dbg monitor did not start listening within {timeout:g}s: "
                    f"{ready.text or 'no output'}"
                )
            result = traffic()
            time.sleep(1.0)  # the last events reach the monitor through the agent's buffer
        finally:
            _interrupt(proc, self._agent_argv(pod, ["sh", "-c", INTERRUPT_PID, pidfile]), where, timeout)
        for stream in (ready, events):
            stream.join(5.0)
        return CommandResult(where, TRACE_ARGV, proc.returncode, events.text, ready.text), result

    # --- discovery ---------------------------------------------------------------------------

    def _kubectl(self) -> list[str]:
        return ["docker", "exec", self.control_plane, "kubectl", "--kubeconfig", ADMIN_KUBECONFIG]


def topology_spec(
    config: LabConfig, plan: AddressPlan, node_ips: dict[str, str], routes: list[dict[str, str]]
) -> str:
    """What the program knows about the lab, for the probe (LAB_TOPOLOGY): sorted, deterministic JSON."""
    spec: dict[str, Any] = {
        "mode": config.mode.value,
        "nodes": [
            {"name": n.name, "ip": node_ips[n.name], "podCidr": str(n.pod_cidr) if n.pod_cidr else None}
            for n in plan.nodes
        ],
        "routes": sorted(routes, key=lambda r: (r["node"], r["dest"])),
        "underlayMtu": UNDERLAY_MTU,
        "extra": {"pool_cidr": str(config.pod_cidr), "pool_mask": str(config.pod_mask)},
    }
    if plan.router_names:
        spec["extra"] |= {
            "router": plan.router_names[0],
            "routers": ",".join(plan.router_names),
            "bgp.vip": str(plan.vip),
        }
    return json.dumps(spec, sort_keys=True)


def spec_from_host(config: LabConfig, plan: AddressPlan) -> str:
    """LAB_TOPOLOGY for a lab running on this Docker host, read the way the program reads it.

    For `python -m verify run --stack S` by hand: node IPs from `docker network inspect`, and the
    routes the stack declares (static), computed as the program computes them.
    """
    from lab.inventory import parse_node_ips  # noqa: PLC0415 (only the by-hand path needs these)
    from lab.modes import Mode  # noqa: PLC0415
    from lab.routes import static_routes  # noqa: PLC0415

    inspect = _run(
        "host", ["docker", "network", "inspect", "--format", "{{json .Containers}}", plan.network_name], 60.0
    )
    if not inspect.ok:
        raise OSError(f"is stack {config.stack} up? {inspect.describe()}: {inspect.stderr.strip()}")
    ips = parse_node_ips(inspect.stdout, [n.name for n in plan.nodes], plan.network_name)
    routes = static_routes(config, plan, ips).declared() if config.mode is Mode.STATIC else []
    return topology_spec(config, plan, ips, routes)


def topology_from_env(raw: str, discovered_pods: str, ciliumnodes: str | None) -> Topology:
    """Build the Topology from what the program knows (LAB_TOPOLOGY) plus the live cluster."""
    spec: dict[str, Any] = json.loads(raw)
    pools: dict[str, ipaddress.IPv4Network] = {}
    if ciliumnodes:
        for item in parse_kube_list(ciliumnodes):
            allocated = parse_ciliumnode_pools(item).get("default", [])
            if allocated:
                pools[item["metadata"]["name"]] = allocated[0]
    nodes = tuple(
        NodeInfo(
            name=n["name"],
            ip=ipaddress.IPv4Address(n["ip"]),
            pod_cidr=ipaddress.IPv4Network(n["podCidr"]) if n.get("podCidr") else pools.get(n["name"]),
        )
        for n in spec["nodes"]
    )
    pods = tuple(
        PodInfo(p["metadata"]["name"], p["spec"]["nodeName"], ipaddress.IPv4Address(p["status"]["podIP"]))
        for p in parse_kube_list(discovered_pods)
        if p.get("status", {}).get("podIP")
    )
    routes = tuple(
        DeclaredRoute(r["node"], ipaddress.IPv4Network(r["dest"]), ipaddress.IPv4Address(r["via"]))
        for r in spec.get("routes", [])
    )
    return Topology(
        mode=spec["mode"],
        nodes=nodes,
        pods=pods,
        underlay_mtu=int(spec.get("underlayMtu", 1500)),
        routes=routes,
        extra={k: str(v) for k, v in spec.get("extra", {}).items()},
    )


def connect_stack(
    stack: str, control_plane: str | None = None, topology_json: str | None = None
) -> KindProbe:
    """A probe for the running lab of a stack file (`python -m verify run --stack`, `make
    compare`, the real-lab recordings): its topology read from this host as the program reads it,
    unless given (LAB_TOPOLOGY under `pulumi up`)."""
    from lab.plan import plan  # noqa: PLC0415 (only the by-stack path needs the lab's model)
    from lab.stack_file import stack_config  # noqa: PLC0415

    config = stack_config(stack)
    lab_plan = plan(config)
    spec = topology_json or spec_from_host(config, lab_plan)
    return connect(control_plane or lab_plan.control_plane.name, spec)


def connect(control_plane: str, topology_json: str) -> KindProbe:
    """A probe for a running lab: pods and (multi-pool) pod CIDRs are read from the cluster."""
    bootstrap = KindProbe(control_plane, Topology(mode="", nodes=(), pods=()))
    pods = bootstrap.kube_get("pods", TEST_NAMESPACE)
    if not pods.ok:
        raise OSError(f"cannot list the test pods: {pods.describe()}\n{pods.stderr}")
    cnodes = bootstrap.kube_get("ciliumnodes")
    topo = topology_from_env(topology_json, pods.stdout, cnodes.stdout if cnodes.ok else None)
    return KindProbe(control_plane, topo)
