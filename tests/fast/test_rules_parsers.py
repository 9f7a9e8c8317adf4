"""The parsers on recorded output, each rule of each shown to matter (partial answers, other
families, other attach forms, the other shape of the same answer)."""

from __future__ import annotations

import ipaddress
import json

import pytest
from fakeprobe import load_world, lose_replies, ping_of

from verify import parsers
from verify.bgp_checks import frr_peer_states, frr_route_nexthops, kernel_nexthops

# --- ping ------------------------------------------------------------------------------------------


def test_all_answered_only_when_every_reply_came_back() -> None:
    answer = ping_of(load_world("static"), "pod-a", "pod-c")
    whole = parsers.parse_ping(answer.stdout)
    assert (whole.transmitted, whole.received, whole.loss_percent, whole.all_answered) == (3, 3, 0, True)
    lose_replies(answer)
    partial = parsers.parse_ping(answer.stdout)
    assert (partial.transmitted, partial.received) == (3, 2)
    assert not partial.all_answered


def test_nothing_sent_is_not_all_answered() -> None:
    summary = parsers.parse_ping("0 packets transmitted, 0 received, 0% packet loss, time 0ms\n")
    assert not summary.all_answered


def test_ttls_and_the_kernels_errors_are_read() -> None:
    static = parsers.parse_ping(ping_of(load_world("static"), "pod-a", "pod-c").stdout)
    assert static.ttls == (62, 62, 62)
    bare = ping_of(load_world("static-bare"), "pod-a", "pod-c", count=2)
    refused = parsers.parse_ping(bare.stdout + bare.stderr)
    assert (refused.received, refused.loss_percent, refused.ttls) == (0, 100, ())
    assert refused.errors == ("Destination Net Unreachable",)  # once, though the kernel said it twice


def test_df_refusal_is_read_from_stderr() -> None:
    world = load_world("native-auto")
    (too_big,) = [
        a for (c, t, argv), a in world.commands.items() if c == "pod" and "-M" in argv and a.returncode
    ]
    summary = parsers.parse_ping(too_big.stdout + too_big.stderr)
    assert summary.received == 0 and summary.errors == ("message too long",)


def test_busybox_summary_has_the_same_shape() -> None:
    text = "3 packets transmitted, 1 packets received, 66% packet loss\n"
    summary = parsers.parse_ping(text)
    assert (summary.transmitted, summary.received, summary.loss_percent) == (3, 1, 66)


def test_no_statistics_is_an_error() -> None:
    with pytest.raises(parsers.ParseError, match="no statistics"):
        parsers.parse_ping("PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n")


# --- ip -j ----------------------------------------------------------------------------------------


def test_routes_keep_gateway_device_protocol_and_scope() -> None:
    world = load_world("native-auto")
    routes = parsers.parse_routes(world.node("replica-control-plane", "ip", "-j", "route", "show").stdout)
    remote = parsers.route_to(routes, ipaddress.IPv4Network("10.10.0.32/27"))
    assert remote is not None
    assert (remote.gateway, remote.dev, remote.protocol) == ("172.31.3.3", "eth0", "kernel")
    assert remote.line() == "10.10.0.32/27 via 172.31.3.3 dev eth0 proto kernel"
    assert parsers.route_to(routes, ipaddress.IPv4Network("10.10.0.32/28")) is None  # exact prefix only


def test_a_multipath_route_keeps_every_nexthop() -> None:
    text = load_world("bgp-2-routers").node("rtr", "ip", "-j", "route", "show", "10.99.0.1/32").stdout
    (route,) = parsers.parse_routes(text)
    assert route.network == ipaddress.IPv4Network("10.99.0.1/32")
    assert [gw for gw, _ in route.nexthops] == ["172.31.5.2", "172.31.5.3", "172.31.5.4"]
    assert route.line().endswith("nexthop via 172.31.5.4 dev eth0")


def test_default_route_is_the_whole_space() -> None:
    (route,) = parsers.parse_routes(json.dumps([{"dst": "default", "gateway": "172.31.3.1", "dev": "eth0"}]))
    assert route.network == ipaddress.IPv4Network("0.0.0.0/0")


def test_addresses_are_ipv4_only() -> None:
    text = (
        load_world("overlay").node("replica-worker", "ip", "-j", "addr", "show", "dev", "cilium_host").stdout
    )
    data = json.loads(text)
    data[0]["addr_info"].append({"family": "inet6", "local": "fe80::1", "prefixlen": 64})
    (addr,) = parsers.parse_addresses(json.dumps(data))
    assert (addr.ifname, str(addr.interface)) == ("cilium_host", "10.244.1.1/32")


def test_links_carry_kind_and_tunnel_port() -> None:
    links = {
        x.ifname: x
        for x in parsers.parse_links(
            load_world("overlay").node("replica-worker", "ip", "-j", "-d", "link", "show").stdout
        )
    }
    assert (links["cilium_vxlan"].kind, links["cilium_vxlan"].data["port"]) == ("vxlan", 8472)
    assert links["cilium_host"].mtu == 65520
    assert links["lo"].kind is None


# --- bpftool --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("world", "attach"), [("overlay", "clsact"), ("overlay-tcx", "tcx")])
def test_bpf_attachments_in_both_forms(world: str, attach: str) -> None:
    text = load_world(world).node("replica-control-plane", "bpftool", "-j", "net", "show").stdout
    found = {(a.device, a.direction, a.attach, a.program) for a in parsers.parse_bpf_net(text)}
    assert found == {
        ("cilium_net", "ingress", attach, "cil_to_host"),
        ("cilium_host", "ingress", attach, "cil_to_host"),
        ("cilium_host", "egress", attach, "cil_from_host"),
        ("lxc_health", "ingress", attach, "cil_from_container"),
    }


def test_program_names_in_every_form() -> None:
    assert parsers.program_name("cil_hooks.o:[cil_from_container]") == "cil_from_container"
    assert parsers.program_name("[cil_to_host]") == "cil_to_host"
    assert parsers.program_name("cil_from_host") == "cil_from_host"
    assert parsers.program_name("cil_from_container-lxc1a2b", "lxc1a2b") == "cil_from_container"
    assert parsers.program_name("cil_from_container-lxc1a2b", "lxc9") == "cil_from_container-lxc1a2b"
    assert parsers.program_name("cil_from_container-lxc1a2b") == "cil_from_container-lxc1a2b"


def test_a_single_section_object_is_read_too() -> None:
    text = json.dumps({"tc": [{"devname": "lxc1", "kind": "tcx/ingress", "name": "cil_from_container"}]})
    (a,) = parsers.parse_bpf_net(text)
    assert (a.device, a.direction, a.attach) == ("lxc1", "ingress", "tcx")


# --- kubectl and CiliumNode -----------------------------------------------------------------------


def test_ciliumnode_pools_per_pool_ipv4_only() -> None:
    body = json.loads(
        load_world("native-auto")
        .answer("kube", "cluster", ("kubectl", "get", "ciliumnodes", "-o", "json"))
        .stdout
    )
    item = body["items"][2]
    item["spec"]["ipam"]["pools"]["allocated"].append(
        {"pool": "extra", "cidrs": ["10.11.0.0/27", "fd00::/120"]}
    )
    assert parsers.parse_ciliumnode_pools(item) == {
        "default": [ipaddress.IPv4Network("10.10.0.64/27")],
        "extra": [ipaddress.IPv4Network("10.11.0.0/27")],
    }
    assert parsers.parse_ciliumnode_pools({"spec": {"ipam": {"podCIDRs": ["10.244.0.0/24"]}}}) == {}


def test_kube_list_needs_items() -> None:
    assert parsers.parse_kube_list('{"kind": "List", "items": []}') == []
    with pytest.raises(parsers.ParseError, match="no items"):
        parsers.parse_kube_list('{"kind": "Pod"}')
    with pytest.raises(parsers.ParseError, match="not JSON"):
        parsers.parse_kube_list("error: the server doesn't have a resource type")


# --- FRR and the router's FIB ----------------------------------------------------------------------


def test_peer_states_from_recorded_frr() -> None:
    summary = json.loads(load_world("bgp").node("rtr", "vtysh", "-c", "show bgp summary json").stdout)
    assert frr_peer_states(summary) == dict.fromkeys(
        ("172.31.5.2", "172.31.5.3", "172.31.5.4"), "Established"
    )
    peers = summary["ipv4Unicast"]["peers"]
    peers["*172.31.5.9"] = {"state": "Connect"}
    peers["172.31.5.2"].pop("state")
    states = frr_peer_states(summary)
    assert (states["172.31.5.9"], states["172.31.5.2"]) == ("Connect", "?")
    assert frr_peer_states({}) == {}
    with pytest.raises(parsers.ParseError):
        frr_peer_states({"ipv4Unicast": {"peers": ["172.31.5.2"]}})


def test_rib_nexthops_only_selected_bgp_and_active() -> None:
    routes = json.loads(
        load_world("bgp").node("rtr", "vtysh", "-c", "show ip route 10.99.0.1/32 json").stdout
    )
    vip = ipaddress.IPv4Network("10.99.0.1/32")
    chosen, hops = frr_route_nexthops(routes, vip)
    assert len(chosen) == 1 and hops == ["172.31.5.2", "172.31.5.3", "172.31.5.4"]
    routes[str(vip)][0]["nexthops"][1]["active"] = False
    assert frr_route_nexthops(routes, vip)[1] == ["172.31.5.2", "172.31.5.4"]
    routes[str(vip)][0]["selected"] = False
    assert frr_route_nexthops(routes, vip) == ([], [])
    with pytest.raises(parsers.ParseError):
        frr_route_nexthops([], vip)


def test_kernel_nexthops_in_every_shape() -> None:
    text = load_world("bgp").node("rtr", "ip", "-j", "route", "show", "10.99.0.1/32").stdout
    assert kernel_nexthops(text) == ["172.31.5.2", "172.31.5.3", "172.31.5.4"]
    single = json.dumps([{"dst": "10.99.0.1", "gateway": "172.31.5.2", "dev": "eth0"}])
    assert kernel_nexthops(single) == ["172.31.5.2"]
    only_id = json.dumps([{"dst": "10.99.0.1", "nhid": 7}])
    assert kernel_nexthops(only_id) == []  # no lookup: nothing known
    groups = {
        7: [{"id": 7, "group": [{"id": 8}, {"id": 9}]}],
        8: [{"id": 8, "gateway": "172.31.5.2"}],
        9: [{"id": 9, "gateway": "172.31.5.3"}],
    }
    assert kernel_nexthops(only_id, lambda i: json.dumps(groups[i])) == ["172.31.5.2", "172.31.5.3"]
    with pytest.raises(parsers.ParseError):
        kernel_nexthops('{"dst": "10.99.0.1"}')
