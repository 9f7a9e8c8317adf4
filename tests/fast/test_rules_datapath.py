"""Every condition of every datapath check's pass rule, broken alone in a recorded world.

Each case starts from a world the check PASSes on (recorded from the replica, see
tests/fakeprobe.py), breaks exactly one condition — one route's protocol, one lost reply, one
leaked packet — and expects the check to FAIL with findings that name that condition and no
other. No root, no namespaces: the real check code runs against canned output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakeprobe import (
    W2,
    Answer,
    Break,
    CaptureKey,
    W,
    World,
    forget_pod_cidr,
    load_world,
    lose_replies,
    move_pod,
    node_name,
    ping_of,
    retell,
    set_fields,
    set_ttl,
)
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from verify.probe import TRACE_ARGV

# --- finding the recorded answers -------------------------------------------------------------


def routes(world: World, node: str) -> Answer:
    return world.node(node, "ip", "-j", "route", "show")


def links(world: World, node: str) -> Answer:
    return world.node(node, "ip", "-j", "-d", "link", "show")


def bpf(world: World, node: str) -> Answer:
    return world.node(node, "bpftool", "-j", "net", "show")


def cilium_host(world: World, node: str) -> Answer:
    return world.node(node, "ip", "-j", "addr", "show", "dev", "cilium_host")


def edit_route(world: World, node: str, dst: str, **fields: Any) -> None:
    table = routes(world, node).json
    (route,) = [r for r in table if r["dst"] == dst]
    route.update(fields)
    routes(world, node).json = table


def drop_route(world: World, node: str, dst: str) -> None:
    table = routes(world, node).json
    routes(world, node).json = [r for r in table if r["dst"] != dst]


def remote_cidr(world: World, node: int, other: int) -> str:
    return str(world.topology.nodes[other].pod_cidr)


# --- captures ---------------------------------------------------------------------------------


def capture(world: World, node: str, iface: str, contains: str) -> CaptureKey:
    (key,) = [k for k in world.captures if k[:2] == (node, iface) and contains in k[2]]
    return key


def overlay_capture(world: World) -> CaptureKey:
    a, c = world.topology.pod("pod-a"), world.topology.pod("pod-c")
    return capture(world, a.node, "eth0", f"(host {a.ip} and host {c.ip})")


def tunnel_header(p: Packet) -> Packet | None:
    for layer in (VXLAN, GENEVE):
        if p.haslayer(layer):
            header: Packet = p[layer]
            return header
    return None


def _inner_udp(p: Packet) -> None:
    """Make the tunnelled packet's inner IP say UDP instead of ICMP."""
    header = tunnel_header(p)
    assert header is not None
    header[IP].proto = 17


def reframe(p: Packet) -> Packet:
    """The packet rebuilt from its fields (lengths and checksums recomputed after an edit)."""
    for layer in (IP, UDP):
        if p.haslayer(layer):
            del p[layer].len, p[layer].chksum
    return Ether(bytes(p))


def edit_tunnelled(world: World, change: Callable[[Packet], None], first_only: bool = True) -> None:
    key = overlay_capture(world)
    packets = world.packets(key)
    for i, p in enumerate(packets):
        if tunnel_header(p) is not None:
            change(p)
            packets[i] = reframe(p)
            if first_only:
                break
    world.set_packets(key, packets)


def leak_raw(world: World, key: CaptureKey, src: str, dst: str) -> None:
    """Add one plain ICMP echo between two pod IPs, as if it left the node unencapsulated."""
    pkt = Ether() / IP(src=world.topology.pod(src).ip.compressed, dst=world.topology.pod(dst).ip.compressed)
    world.set_packets(key, [*world.packets(key), pkt / ICMP(type=8)])


def vxlan_between_nodes(world: World) -> Packet:
    n0, n1 = (str(n.ip) for n in world.topology.nodes[:2])
    return (
        Ether()
        / IP(src=n0, dst=n1)
        / UDP(sport=40000, dport=8472)
        / VXLAN(vni=256, flags=0x08)
        / Ether()
        / IP(src="10.9.9.1", dst="10.9.9.2")
        / ICMP()
    )


def df_limit(world: World, pod: str, largest: int | None) -> None:
    """Every DF ping from `pod` crosses iff its packet is at most `largest` bytes (None: none does)."""
    samples = [a for (c, t, argv), a in world.commands.items() if (c, t) == ("pod", pod) and "-M" in argv]
    passed = next(a for a in samples if a.returncode == 0)
    failed = next(a for a in samples if a.returncode != 0)

    def answer(key: tuple[str, str, tuple[str, ...]]) -> Answer | None:
        call, target, argv = key
        if (call, target) != ("pod", pod) or "-M" not in argv:
            return None
        size = int(argv[argv.index("-s") + 1]) + 28
        return passed if largest is not None and size <= largest else failed

    world.respond(answer)


# --- the cases --------------------------------------------------------------------------------


def _edit_json(answer: Callable[[World], Answer], edit: Callable[[Any], Any]) -> Callable[[World], None]:
    def apply(world: World) -> None:
        target = answer(world)
        target.json = edit(target.json)

    return apply


def _tc(entries: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [{**s, "tc": [e for e in s.get("tc", []) if keep(e)]} for s in entries]


def _program(e: dict[str, Any]) -> str:
    name = str(e["name"])
    return name.split(":[", 1)[1].rstrip("]") if ":[" in name else name


def _first_lxc(world: World, node: int) -> str:
    return str(
        next(
            link["ifname"]
            for link in links(world, node_name(world, node)).json
            if link["ifname"].startswith("lxc")
        )
    )


def _drop_hook(world: World, node: int, dev: str, direction: str) -> None:
    answer = bpf(world, node_name(world, node))
    answer.json = _tc(answer.json, lambda e: not (e["devname"] == dev and e["kind"].endswith(direction)))


def _flip_direction(world: World, node: int, dev: str, program: str) -> None:
    answer = bpf(world, node_name(world, node))
    sections = answer.json
    for s in sections:
        for e in s.get("tc", []):
            if e["devname"] == dev and _program(e) == program:
                e["kind"] = e["kind"].replace("egress", "ingress")
    answer.json = sections


def _rename_program(world: World, node: int, dev: str, old: str, new: str) -> None:
    answer = bpf(world, node_name(world, node))
    sections = answer.json
    for s in sections:
        for e in s.get("tc", []):
            if e["devname"] == dev and _program(e) == old:
                e["name"] = str(e["name"]).replace(old, new)
    answer.json = sections


def _drop_link(world: World, node: int, keep: Callable[[str], bool]) -> None:
    answer = links(world, node_name(world, node))
    answer.json = [link for link in answer.json if keep(link["ifname"])]


def _add_link(world: World, node: int, name: str, kind: str, port: int) -> None:
    answer = links(world, node_name(world, node))
    answer.json = [
        *answer.json,
        {"ifname": name, "mtu": 1500, "linkinfo": {"info_kind": kind, "info_data": {"port": port}}},
    ]


def _edit_link(world: World, node: int, name: str, kind: str | None = None, port: int | None = None) -> None:
    answer = links(world, node_name(world, node))
    table = answer.json
    for link in table:
        if link["ifname"] == name:
            if kind is not None:
                link["linkinfo"]["info_kind"] = kind
            if port is not None:
                link["linkinfo"]["info_data"]["port"] = port
    answer.json = table


def _set_host_address(
    world: World, node: int, local: str | None = None, prefixlen: int | None = None
) -> None:
    answer = cilium_host(world, node_name(world, node))
    table = answer.json
    for a in table[0]["addr_info"]:
        if a["family"] == "inet":
            a["local"] = local or a["local"]
            a["prefixlen"] = prefixlen if prefixlen is not None else a["prefixlen"]
    answer.json = table


def _no_host_address(world: World, node: int) -> None:
    answer = cilium_host(world, node_name(world, node))
    table = answer.json
    table[0]["addr_info"] = [a for a in table[0]["addr_info"] if a["family"] != "inet"]
    answer.json = table


def _route_get(world: World, pod: str) -> Answer:
    p = world.topology.pod(pod)
    return world.node(p.node, "ip", "-j", "route", "get", str(p.ip))


def _pools(world: World, edit: Callable[[dict[str, Any]], None]) -> None:
    answer = world.answer("kube", "cluster", ("kubectl", "get", "ciliumnodes", "-o", "json"))
    body = answer.json
    edit(body)
    answer.json = body


def _node_pool(body: dict[str, Any], index: int) -> dict[str, Any]:
    entry: dict[str, Any] = body["items"][index]["spec"]["ipam"]["pools"]["allocated"][0]
    return entry


def _set_block(index: int, cidr: str) -> Callable[[World], None]:
    def apply(world: World) -> None:
        _pools(world, lambda body: _node_pool(body, index).update(cidrs=[cidr]))

    return apply


def _native_routes(world_name: str) -> list[Break]:
    c = "native.routes"
    return [
        Break(
            c,
            world_name,
            "pod CIDR unknown",
            lambda w: forget_pod_cidr(w, W2),
            (r"^FAIL replica-worker2: pod CIDR known$",),
        ),
        Break(
            c,
            world_name,
            "route missing",
            lambda w: drop_route(w, node_name(w, 0), remote_cidr(w, 0, W)),
            (r"control-plane: a route to 10\.10\.0\.32/27 exists",),
        ),
        Break(
            c,
            world_name,
            "via another node",
            lambda w: edit_route(
                w, node_name(w, 0), remote_cidr(w, 0, W), gateway=str(w.topology.nodes[W2].ip)
            ),
            (r"control-plane: 10\.10\.0\.32/27 via 172\.31\.3\.3 \(have",),
        ),
        Break(
            c,
            world_name,
            "another device",
            lambda w: edit_route(w, node_name(w, 0), remote_cidr(w, 0, W), dev="eth1"),
            (r"control-plane: 10\.10\.0\.32/27 dev eth0 \(have",),
        ),
        Break(
            c,
            world_name,
            "not proto kernel",
            lambda w: edit_route(w, node_name(w, 0), remote_cidr(w, 0, W), protocol="boot"),
            (r"control-plane: 10\.10\.0\.32/27 proto kernel \(have: .* proto boot",),
        ),
    ]


def _icmp_to_udp(world: World) -> None:
    """The pods' packets on the wire are UDP, not the ICMP the check's ping sent."""
    key = overlay_capture(world)
    packets = world.packets(key)
    for i, p in enumerate(packets):
        if p.haslayer(ICMP):
            packets[i] = Ether() / IP(src=p[IP].src, dst=p[IP].dst) / UDP(sport=33434, dport=33434)
    world.set_packets(key, packets)


def _readdress_icmp(world: World, src: str) -> None:
    """The ICMP on the wire comes from another address than pod-a (e.g. masqueraded)."""
    key = overlay_capture(world)
    packets = world.packets(key)
    for i, p in enumerate(packets):
        if p.haslayer(ICMP):
            for field in ("src", "dst"):
                if getattr(p[IP], field) == str(world.topology.pod("pod-a").ip):
                    setattr(p[IP], field, src)
            packets[i] = reframe(p)
    world.set_packets(key, packets)


def _only_the_two_nodes(world: World) -> None:
    """The lab is just the two nodes the tunnel connects."""
    used = {world.topology.pod("pod-a").node, world.topology.pod("pod-c").node}
    retell(world, nodes=tuple(n for n in world.topology.nodes if n.name in used))


def _overlay_capture(world_name: str, tunnel: str) -> list[Break]:
    c = "overlay.capture"
    return [
        Break(c, world_name, "a lab of exactly the two tunnel ends", _only_the_two_nodes, ()),
        Break(
            c,
            world_name,
            "a reply lost",
            lambda w: lose_replies(ping_of(w, "pod-a", "pod-c")),
            (r"pod-a reached pod-c across nodes \(33\.3333% loss\)",),
        ),
        Break(
            c,
            world_name,
            "nothing tunnelled",
            lambda w: w.set_packets(
                overlay_capture(w), [p for p in w.packets(overlay_capture(w)) if tunnel_header(p) is None]
            ),
            (rf"^FAIL 0 {tunnel} packets carry pod traffic",),
        ),
        Break(
            c,
            world_name,
            "inner protocol not ICMP",
            lambda w: edit_tunnelled(w, _inner_udp),
            (r"inner protocol is ICMP",),
        ),
        Break(
            c,
            world_name,
            "outer address not a node",
            lambda w: edit_tunnelled(w, lambda p: setattr(p[IP], "src", "172.31.9.9")),
            (r"outer addresses are node IPs",),
        ),
        Break(
            c,
            world_name,
            "VNI zero",
            lambda w: edit_tunnelled(w, lambda p: setattr(tunnel_header(p), "vni", 0)),
            (r"VNI is non-zero",),
        ),
        Break(
            c,
            world_name,
            "raw pod packet leaks",
            lambda w: leak_raw(w, overlay_capture(w), "pod-a", "pod-c"),
            (r"^FAIL 1 pod packets travel unencapsulated",),
        ),
    ]


def _overlay_device(world_name: str, device: str, kind: str, port: int) -> list[Break]:
    c = "overlay.device"
    other = "geneve" if kind == "vxlan" else "vxlan"
    return [
        Break(
            c,
            world_name,
            "device missing",
            lambda w: _drop_link(w, W2, lambda n: n != device),
            (rf"worker2: {device} exists",),
        ),
        Break(
            c,
            world_name,
            f"not a {kind} device",
            lambda w: _edit_link(w, W2, device, kind=other),
            (rf"worker2: {device} is a {kind} device \(is {other}\)",),
        ),
        Break(
            c,
            world_name,
            "another port",
            lambda w: _edit_link(w, W2, device, port=4789),
            (rf"worker2: {device} dstport {port} \(is 4789\)",),
        ),
    ]


def _overlay_routes(world_name: str) -> list[Break]:
    c = "overlay.routes"
    return [
        Break(
            c,
            world_name,
            "router IP unknown",
            lambda w: _no_host_address(w, 0),
            (r"control-plane: cilium_host router IP known",),
        ),
        Break(
            c,
            world_name,
            "remote pod CIDR unknown",
            lambda w: forget_pod_cidr(w, W2),
            (r"^FAIL replica-worker2: pod CIDR known$",),
        ),
        Break(
            c,
            world_name,
            "route missing",
            lambda w: drop_route(w, node_name(w, 0), remote_cidr(w, 0, W)),
            (r"control-plane: a route to 10\.244\.1\.0/24 exists",),
        ),
        Break(
            c,
            world_name,
            "another device",
            lambda w: edit_route(w, node_name(w, 0), remote_cidr(w, 0, W), dev="eth0"),
            (r"control-plane: 10\.244\.1\.0/24 dev cilium_host \(have",),
        ),
        Break(
            c,
            world_name,
            "via another address",
            lambda w: edit_route(w, node_name(w, 0), remote_cidr(w, 0, W), gateway="10.244.0.99"),
            (r"control-plane: 10\.244\.1\.0/24 via 10\.244\.0\.1 \(have",),
        ),
    ]


def _intranode_path(world_name: str, tunnel_dev: str) -> list[Break]:
    c = "intranode.path"

    def leak(iface: str) -> Callable[[World], None]:
        def apply(w: World) -> None:
            a = w.topology.pod("pod-a")
            leak_raw(
                w,
                capture(w, a.node, iface, f"host {a.ip} and host {w.topology.pod('pod-b').ip}"),
                "pod-a",
                "pod-b",
            )

        return apply

    def via_eth0(pod: str) -> Callable[[World], None]:
        return _edit_json(lambda x: _route_get(x, pod), lambda t: [{**t[0], "dev": "eth0"}])

    return [
        Break(
            c,
            world_name,
            "pods on two nodes",
            lambda w: move_pod(w, "pod-b", W2),
            (r"pod-a and pod-b are on one node \(replica-worker, replica-worker2\)",),
        ),
        Break(
            c,
            world_name,
            "a reply lost",
            lambda w: lose_replies(ping_of(w, "pod-a", "pod-b")),
            (r"pod-a reached pod-b \(33\.3333% loss\)",),
        ),
        Break(
            c,
            world_name,
            "pod packets on eth0",
            leak("eth0"),
            (r"^FAIL eth0 on replica-worker saw 1 packets between pod-a and pod-b",),
        ),
        Break(
            c,
            world_name,
            f"pod packets on {tunnel_dev}",
            leak(tunnel_dev),
            (rf"^FAIL {tunnel_dev} on replica-worker saw 1 packets",),
        ),
        Break(
            c,
            world_name,
            "pod-a routed via eth0",
            via_eth0("pod-a"),
            (r"reaches pod-a .* via dev eth0 \(want lxc\* or cilium_host\)",),
        ),
        Break(
            c,
            world_name,
            "pod-b routed via eth0",
            via_eth0("pod-b"),
            (r"reaches pod-b .* via dev eth0 \(want lxc\* or cilium_host\)",),
        ),
        Break(
            c,
            world_name,
            "no route to pod-b",
            lambda w: setattr(_route_get(w, "pod-b"), "stdout", "[]"),
            (r"reaches pod-b .* via dev \? \(want",),
        ),
    ]


def _bpf_hooks(world_name: str) -> list[Break]:
    c = "datapath.bpf-hooks"
    return [
        Break(
            c,
            world_name,
            "bpftool fails",
            set_fields(
                lambda w: bpf(w, node_name(w, W2)),
                returncode=1,
                stdout="",
                stderr="Error: can't get netlink socket",
            ),
            (r"^FAIL bpftool ran on replica-worker2$",),
        ),
        Break(
            c,
            world_name,
            "no lxc device",
            lambda w: _drop_link(w, 0, lambda n: not n.startswith("lxc")),
            (r"^FAIL replica-control-plane: lxc\* exists$",),
        ),
        Break(
            c,
            world_name,
            "cil_from_container missing",
            lambda w: _drop_hook(w, W, _first_lxc(w, W), "ingress"),
            (r"worker: cil_from_container on lxc\w+ ingress$",),
        ),
        Break(
            c,
            world_name,
            "cil_from_container renamed",
            lambda w: _rename_program(w, W, _first_lxc(w, W), "cil_from_container", "cil_to_container"),
            (r"worker: cil_from_container on lxc\w+ ingress$",),
        ),
        Break(
            c,
            world_name,
            "cil_to_host missing on cilium_net",
            lambda w: _drop_hook(w, 0, "cilium_net", "ingress"),
            (r"control-plane: cil_to_host on cilium_net ingress$",),
        ),
        Break(
            c,
            world_name,
            "cil_to_host missing on cilium_host",
            lambda w: _drop_hook(w, 0, "cilium_host", "ingress"),
            (r"control-plane: cil_to_host on cilium_host ingress$",),
        ),
        Break(
            c,
            world_name,
            "cil_from_host missing",
            lambda w: _drop_hook(w, 0, "cilium_host", "egress"),
            (r"control-plane: cil_from_host on cilium_host egress$",),
        ),
        Break(
            c,
            world_name,
            "cil_from_host on ingress",
            lambda w: _flip_direction(w, 0, "cilium_host", "cil_from_host"),
            (r"control-plane: cil_from_host on cilium_host egress$",),
        ),
        Break(
            c,
            world_name,
            "cilium_net missing",
            lambda w: _drop_link(w, W2, lambda n: n != "cilium_net"),
            (r"^FAIL replica-worker2: cilium_net exists$",),
        ),
        Break(
            c,
            world_name,
            "a device only named like cilium_host",
            lambda w: _add_link(w, W2, "cilium_host2", "veth", 0),
            (),
        ),
    ]


def _cilium_host(world_name: str, outside: str) -> list[Break]:
    c = "datapath.cilium-host"
    return [
        Break(
            c,
            world_name,
            "no address",
            lambda w: _no_host_address(w, W),
            (r"^FAIL replica-worker: cilium_host has an IPv4 address$",),
        ),
        Break(
            c,
            world_name,
            "device missing",
            set_fields(
                lambda w: cilium_host(w, node_name(w, W)),
                returncode=1,
                stdout="",
                stderr='Device "cilium_host" does not exist.',
            ),
            (r"^FAIL replica-worker: cilium_host has an IPv4 address$",),
        ),
        Break(
            c,
            world_name,
            "not a /32",
            lambda w: _set_host_address(w, W, prefixlen=24),
            (r"worker: cilium_host \S+/24 is a /32",),
        ),
        Break(
            c,
            world_name,
            "outside the pod CIDR",
            lambda w: _set_host_address(w, W, local=outside),
            ("worker: " + re.escape(outside) + " is inside the node's pod CIDR",),
        ),
        Break(
            c,
            world_name,
            "pod CIDR unknown",
            lambda w: forget_pod_cidr(w, W),
            (r"^FAIL replica-worker: pod CIDR known$",),
        ),
    ]


def _path_mtu(world_name: str, fails_at: tuple[int, ...], passes_at: tuple[int, ...]) -> list[Break]:
    c = "path.mtu"
    cases = [
        Break(
            c,
            world_name,
            "nothing crosses with DF",
            lambda w: df_limit(w, "pod-a", None),
            (r"a 1200-byte DF packet crosses",),
        )
    ]
    cases += [
        Break(c, world_name, f"largest {n}", _df(n), (rf"^FAIL largest DF packet {n} ",)) for n in fails_at
    ]
    cases += [Break(c, world_name, f"largest {n} passes", _df(n), ()) for n in passes_at]
    return cases


def _df(largest: int) -> Callable[[World], None]:
    return lambda w: df_limit(w, "pod-a", largest)


def _ping_answered(check: str, world_name: str, dst: str, count: int = 3) -> list[Break]:
    return [
        Break(
            check,
            world_name,
            "a reply lost",
            lambda w: lose_replies(ping_of(w, "pod-a", dst, count)),
            (r"^FAIL 2/3 answered \(33\.3333% loss\)$",),
        ),
        Break(
            check,
            world_name,
            "no statistics",
            set_fields(
                lambda w: ping_of(w, "pod-a", dst, count),
                stdout="ping: sendmsg: Operation not permitted\n",
                returncode=2,
            ),
            (r"could not collect the evidence: ping: no statistics line",),
        ),
    ]


# --- Cilium's trace points (datapath.trace, worlds recorded from real labs) --------------------------


def monitor(world: World) -> Answer:
    """The recorded `cilium-dbg monitor --type trace` on pod-a's node."""
    return world.answer("trace", world.topology.pod("pod-a").node, TRACE_ARGV)


def _requests_to_c(world: World, line: str) -> bool:
    a, c = world.topology.pod("pod-a"), world.topology.pod("pod-c")
    return f": {a.ip} -> {c.ip} icmp EchoRequest" in line


def edit_requests(change: Callable[[str], str | None]) -> Callable[[World], None]:
    """Rewrite (or drop, on None) each traced echo request from pod-a to pod-c."""

    def apply(world: World) -> None:
        answer = monitor(world)
        lines = []
        for line in answer.stdout.splitlines():
            new = change(line) if _requests_to_c(world, line) else line
            if new is not None:
                lines.append(new)
        assert lines != answer.stdout.splitlines(), "the edit must change the recorded monitor output"
        answer.stdout = "\n".join(lines) + "\n"

    return apply


def at(point: str) -> Callable[[str], str]:
    """The same event, traced at another observation point (`-> overlay`, `-> stack`, ...)."""
    return lambda line: re.sub(r"^(?:->|<-) \w+", point, line)


def also_at(point: str) -> Callable[[World], None]:
    """The request traced once more, at `point`, as if a copy had also gone that way."""

    def apply(world: World) -> None:
        answer = monitor(world)
        extra = [at(point)(line) for line in answer.stdout.splitlines() if _requests_to_c(world, line)]
        assert extra
        answer.stdout = "\n".join([*answer.stdout.splitlines(), *extra]) + "\n"

    return apply


def _pod_a_node(world: World) -> int:
    a = world.topology.pod("pod-a")
    return [n.name for n in world.topology.nodes].index(a.node)


TRACE_OVERLAY = "kind-overlay"
TRACE_NATIVE = "kind-native-auto"
_TO_C = r"pod-a's echo requests to pod-c"
TRACE_BREAKS = [
    Break(
        "datapath.trace",
        TRACE_OVERLAY,
        "traced at to-stack, not to-overlay",
        edit_requests(at("-> stack")),
        (r"^FAIL an echo request to pod-c traced at to-overlay on .* \(overlay\)$",),
    ),
    Break(
        "datapath.trace",
        TRACE_OVERLAY,
        "no trace of the requests",
        edit_requests(lambda line: None),
        (
            rf"^FAIL .*'s agent traced {_TO_C} \(at: none\)$",
            r"^FAIL an echo request to pod-c traced at to-overlay",
        ),
    ),
    Break(
        "datapath.trace",
        TRACE_OVERLAY,
        "a reply lost",
        lambda w: lose_replies(ping_of(w, "pod-a", "pod-c", 5)),
        (r"^FAIL pod-a reached pod-c \(20% loss\)$",),
    ),
    Break(
        "datapath.trace",
        TRACE_OVERLAY,
        "pod-c on pod-a's node",
        lambda w: move_pod(w, "pod-c", _pod_a_node(w)),
        (r"^FAIL pod-a and pod-c are on two nodes",),
    ),
    Break(
        "datapath.trace",
        TRACE_OVERLAY,
        "judged as native",
        lambda w: retell(w, mode="native-auto"),
        (
            r"^FAIL an echo request to pod-c traced at to-stack or to-network",
            r"^FAIL no echo request to pod-c traced at to-overlay",
        ),
    ),
    Break(
        "datapath.trace",
        TRACE_NATIVE,
        "traced at to-overlay instead",
        edit_requests(at("-> overlay")),
        (
            r"^FAIL an echo request to pod-c traced at to-stack or to-network",
            r"^FAIL no echo request to pod-c traced at to-overlay",
        ),
    ),
    Break(
        "datapath.trace",
        TRACE_NATIVE,
        "also traced at to-overlay",
        also_at("-> overlay"),
        (r"^FAIL no echo request to pod-c traced at to-overlay on .* \(native\)$",),
    ),
    Break(
        "datapath.trace",
        TRACE_NATIVE,
        "handed to the stack (legacy host routing)",
        edit_requests(at("-> stack")),
        (),
    ),
    Break(
        "datapath.trace",
        TRACE_NATIVE,
        "judged as a tunnel",
        lambda w: retell(w, mode="overlay"),
        (r"^FAIL an echo request to pod-c traced at to-overlay on .* \(overlay\)$",),
    ),
    Break(
        "datapath.trace",
        TRACE_NATIVE,
        "a reply lost",
        lambda w: lose_replies(ping_of(w, "pod-a", "pod-c", 5)),
        (r"^FAIL pod-a reached pod-c \(20% loss\)$",),
    ),
]


BREAKS: list[Break] = [
    # intranode.ping (all stacks): on one node, every reply back
    Break(
        "intranode.ping",
        "overlay",
        "pods on two nodes",
        lambda w: move_pod(w, "pod-b", W2),
        (r"pod-a and pod-b are on one node",),
    ),
    *_ping_answered("intranode.ping", "overlay", "pod-b"),
    *_ping_answered("intranode.ping", "bgp", "pod-b"),
    *_intranode_path("overlay", "cilium_vxlan"),
    Break(
        "intranode.path",
        "geneve",
        "pod packets on cilium_geneve",
        lambda w: leak_raw(
            w, capture(w, w.topology.pod("pod-a").node, "cilium_geneve", "host"), "pod-a", "pod-b"
        ),
        (r"^FAIL cilium_geneve on replica-worker saw 1 packets",),
    ),
    *_bpf_hooks("overlay"),
    *_bpf_hooks("overlay-tcx"),
    *_bpf_hooks("native-auto"),
    *_cilium_host("overlay", "10.244.2.77"),
    *_cilium_host("native-auto", "10.10.0.77"),
    *_overlay_routes("overlay"),
    *_overlay_routes("geneve"),
    *_overlay_device("overlay", "cilium_vxlan", "vxlan", 8472),
    *_overlay_device("geneve", "cilium_geneve", "geneve", 6081),
    *_overlay_capture("overlay", "vxlan"),
    *_overlay_capture("geneve", "geneve"),
    # native.no-tunnel: neither device, on any node
    Break(
        "native.no-tunnel",
        "native-auto",
        "a vxlan device",
        lambda w: _add_link(w, W, "cilium_vxlan", "vxlan", 8472),
        (r"^FAIL replica-worker: no cilium_vxlan$",),
    ),
    Break(
        "native.no-tunnel",
        "static",
        "a geneve device",
        lambda w: _add_link(w, 0, "cilium_geneve", "geneve", 6081),
        (r"^FAIL replica-control-plane: no cilium_geneve$",),
    ),
    *_native_routes("native-auto"),
    # native.pools: a CiliumNode per node, pool default, one /27 of the pool each, no overlap
    Break(
        "native.pools",
        "native-auto",
        "a node without CiliumNode",
        lambda w: _pools(w, lambda b: b["items"].pop(W2)),
        (r"^FAIL replica-worker2: has a CiliumNode$",),
    ),
    Break(
        "native.pools",
        "native-auto",
        "another pool",
        lambda w: _pools(w, lambda b: _node_pool(b, W).update(pool="other")),
        (r"^FAIL replica-worker: pool default allocated \[\]$",),
    ),
    Break(
        "native.pools",
        "native-auto",
        "a /26",
        _set_block(W2, "10.10.0.64/26"),
        (r"^FAIL replica-worker2: 10\.10\.0\.64/26 is a /27$",),
    ),
    Break(
        "native.pools",
        "native-auto",
        "outside the pool",
        _set_block(W2, "10.20.0.64/27"),
        (r"^FAIL replica-worker2: 10\.20\.0\.64/27 is inside the pool 10\.10\.0\.0/16$",),
    ),
    Break(
        "native.pools",
        "native-auto",
        "two nodes one block",
        _set_block(W2, "10.10.0.32/27"),
        (r"^FAIL replica-worker2: 10\.10\.0\.32/27 overlaps no other node's block$",),
    ),
    # native.capture: every reply, raw ICMP between the pods on eth0, no tunnel packet
    *[
        b
        for world in ("native-auto", "static")
        for b in (
            Break(
                "native.capture",
                world,
                "a reply lost",
                lambda w: lose_replies(ping_of(w, "pod-a", "pod-c")),
                (r"pod-a reached pod-c across nodes \(33\.3333% loss\)",),
            ),
            Break(
                "native.capture",
                world,
                "no raw ICMP",
                lambda w: w.set_packets(
                    overlay_capture(w), [p for p in w.packets(overlay_capture(w)) if not p.haslayer(ICMP)]
                ),
                (r"^FAIL 0 raw ICMP packets between pod IPs on eth0$",),
            ),
            Break(
                "native.capture",
                world,
                "raw UDP, not ICMP, between the pods",
                _icmp_to_udp,
                (r"^FAIL 0 raw ICMP packets between pod IPs on eth0$",),
            ),
            Break(
                "native.capture",
                world,
                "raw ICMP between other addresses",
                lambda w: _readdress_icmp(w, "10.9.9.1"),
                (r"^FAIL 0 raw ICMP packets between pod IPs on eth0$",),
            ),
            Break(
                "native.capture",
                world,
                "a tunnel packet",
                lambda w: w.set_packets(
                    overlay_capture(w), [*w.packets(overlay_capture(w)), vxlan_between_nodes(w)]
                ),
                (r"^FAIL 1 VXLAN/Geneve packets on eth0 \(want 0\)$",),
            ),
        )
    ],
    # static.fails-without-routes: not a single reply before the routes
    Break(
        "static.fails-without-routes",
        "static-bare",
        "one reply",
        lambda w: setattr(
            ping_of(w, "pod-a", "pod-c", 2),
            "stdout",
            ping_of(load_world("static"), "pod-a", "pod-c").stdout.replace(
                "3 packets transmitted, 3 received", "2 packets transmitted, 1 received"
            ),
        ),
        (r"^FAIL 1/2 answered \(want none: 100% loss\)$",),
    ),
    Break(
        "static.fails-without-routes",
        "static-bare",
        "every reply",
        lambda w: setattr(
            ping_of(w, "pod-a", "pod-c", 2),
            "stdout",
            ping_of(load_world("static"), "pod-a", "pod-c").stdout.replace(
                "3 packets transmitted, 3 received", "2 packets transmitted, 2 received"
            ),
        ),
        (r"^FAIL 2/2 answered \(want none",),
    ),
    # static.routes: some declared, each present on its node with its next hop
    Break(
        "static.routes",
        "static",
        "nothing declared",
        lambda w: retell(w, routes=()),
        (r"^FAIL 0 routes are declared$",),
    ),
    Break(
        "static.routes",
        "static",
        "route missing",
        lambda w: drop_route(w, node_name(w, W), remote_cidr(w, W, W2)),
        (r"^FAIL replica-worker: a route to 10\.10\.0\.64/27 exists$",),
    ),
    Break(
        "static.routes",
        "static",
        "another next hop",
        lambda w: edit_route(w, node_name(w, W), remote_cidr(w, W, W2), gateway=str(w.topology.nodes[0].ip)),
        (
            r"^FAIL replica-worker: 10\.10\.0\.64/27 via 172\.31\.4\.4 \(have: 10\.10\.0\.64/27 via 172\.31\.4\.2",
        ),
    ),
    # static.ping: every reply, TTL 62
    Break(
        "static.ping",
        "static",
        "a reply lost",
        lambda w: lose_replies(ping_of(w, "pod-a", "pod-c")),
        (r"^FAIL 2/3 answered",),
    ),
    Break(
        "static.ping",
        "static",
        "one TTL 63",
        lambda w: set_ttl(ping_of(w, "pod-a", "pod-c"), 63),
        (r"^FAIL TTL \[62, 63\] \(want 62",),
    ),
    *_path_mtu("overlay", fails_at=(1400, 1449, 1451, 1500), passes_at=()),
    *_path_mtu("geneve", fails_at=(1451, 1500), passes_at=(1400, 1449)),
    *_path_mtu("native-auto", fails_at=(1450, 1499), passes_at=()),
    *_path_mtu("bgp", fails_at=(1450,), passes_at=()),
    *TRACE_BREAKS,
]


@pytest.mark.parametrize("case", BREAKS, ids=lambda c: c.id)
def test_breaking_one_condition_fails_the_check_naming_it(case: Break, tmp_path: Path) -> None:
    case.run(tmp_path)


def test_each_ping_edit_is_a_real_ping_transcript() -> None:
    """lose_replies keeps iputils' shape: the parser reads the new numbers, not the old ones."""
    from verify.parsers import parse_ping  # noqa: PLC0415

    answer = ping_of(load_world("overlay"), "pod-a", "pod-c")
    lose_replies(answer)
    summary = parse_ping(answer.stdout)
    assert (summary.transmitted, summary.received, len(summary.ttls)) == (3, 2, 2)
    assert not summary.all_answered and answer.returncode == 1
