"""Parsers on recorded tool output, including the forms Cilium's datapath produces on kind."""

from __future__ import annotations

import ipaddress
import json

import pytest

from verify import parsers

# `ip -j route` on a native-auto node, as in the write-up's table.
NATIVE_ROUTES = json.dumps(
    [
        {"dst": "default", "gateway": "172.18.0.1", "dev": "eth0", "flags": []},
        {"dst": "10.10.0.13", "dev": "lxc3c2ed4711743", "protocol": "kernel", "scope": "link", "flags": []},
        {"dst": "10.10.0.32/27", "gateway": "172.18.0.3", "dev": "eth0", "protocol": "kernel", "flags": []},
        {"dst": "10.10.0.64/27", "gateway": "172.18.0.4", "dev": "eth0", "protocol": "kernel", "flags": []},
        {
            "dst": "10.99.0.1",
            "protocol": "bgp",
            "flags": [],
            "nexthops": [{"gateway": "172.30.5.2", "dev": "eth0"}, {"gateway": "172.30.5.3", "dev": "eth0"}],
        },
    ]
)

# bpftool 7.1 (tc filter form) and bpftool 7.3+ on a tcx kernel (Cilium 1.20 on kind).
BPF_TC = json.dumps(
    [
        {
            "xdp": [],
            "tc": [
                {
                    "devname": "lxcabc",
                    "ifindex": 7,
                    "kind": "clsact/ingress",
                    "name": "cil_hooks.o:[cil_from_container]",
                    "id": 41,
                },
                {
                    "devname": "cilium_host",
                    "ifindex": 4,
                    "kind": "clsact/egress",
                    "name": "cil_hooks.o:[cil_from_host]",
                    "id": 43,
                },
            ],
            "flow_dissector": [],
        }
    ]
)
BPF_TCX = json.dumps(
    [
        {
            "xdp": [],
            "tc": [
                {
                    "devname": "cilium_net",
                    "ifindex": 12,
                    "kind": "tcx/ingress",
                    "name": "cil_to_host",
                    "prog_id": 901,
                },
                {
                    "devname": "lxc_health",
                    "ifindex": 16,
                    "kind": "tcx/ingress",
                    "name": "cil_from_container",
                    "prog_id": 950,
                },
            ],
        }
    ]
)


def test_routes() -> None:
    routes = parsers.parse_routes(NATIVE_ROUTES)
    r = parsers.route_to(routes, ipaddress.IPv4Network("10.10.0.32/27"))
    assert r is not None and (r.gateway, r.dev, r.protocol) == ("172.18.0.3", "eth0", "kernel")
    assert r.line() == "10.10.0.32/27 via 172.18.0.3 dev eth0 proto kernel"
    assert parsers.route_to(routes, ipaddress.IPv4Network("10.10.0.96/27")) is None
    host = parsers.route_to(routes, ipaddress.IPv4Network("10.10.0.13/32"))
    assert host is not None and host.dev == "lxc3c2ed4711743"
    ecmp = parsers.route_to(routes, ipaddress.IPv4Network("10.99.0.1/32"))
    assert ecmp is not None and len(ecmp.nexthops) == 2


@pytest.mark.parametrize("text", [BPF_TC, BPF_TCX])
def test_bpf_net_reads_both_attach_forms(text: str) -> None:
    attached = parsers.parse_bpf_net(text)
    assert all(a.direction in ("ingress", "egress") for a in attached)
    assert {a.program for a in attached} <= {"cil_from_container", "cil_from_host", "cil_to_host"}
    assert attached[0].attach in ("clsact", "tcx")


def test_program_name_forms() -> None:
    assert parsers.program_name("bpf_lxc.o:[from-container]") == "from-container"
    assert parsers.program_name("cil_hooks.o:[cil_from_container]") == "cil_from_container"
    assert parsers.program_name("cil_from_container") == "cil_from_container"
    # Cilium's legacy tc filters are named <program>-<device>.
    assert parsers.program_name("cil_from_container-lxc1a2b", "lxc1a2b") == "cil_from_container"
    assert parsers.program_name("cil_from_container-lxc1a2b", "lxc9999") == "cil_from_container-lxc1a2b"


def test_addresses_and_links() -> None:
    addr = json.dumps(
        [
            {
                "ifname": "cilium_host",
                "addr_info": [
                    {"family": "inet", "local": "10.244.1.77", "prefixlen": 32},
                    {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
                ],
            }
        ]
    )
    (a,) = parsers.parse_addresses(addr)
    assert a.ifname == "cilium_host" and str(a.interface) == "10.244.1.77/32"
    links = json.dumps(
        [
            {
                "ifname": "cilium_vxlan",
                "mtu": 1500,
                "linkinfo": {"info_kind": "vxlan", "info_data": {"port": 8472, "external": True}},
            }
        ]
    )
    (link,) = parsers.parse_links(links)
    assert (link.kind, link.data["port"]) == ("vxlan", 8472)


def test_ping_summaries() -> None:
    ok = (
        "64 bytes from 10.10.0.44: icmp_seq=1 ttl=62 time=0.229 ms\n"
        "64 bytes from 10.10.0.44: icmp_seq=2 ttl=62 time=0.371 ms\n"
        "--- 10.10.0.44 ping statistics ---\n"
        "2 packets transmitted, 2 received, 0% packet loss, time 1001ms\n"
    )
    s = parsers.parse_ping(ok)
    assert s.all_answered and s.ttls == (62, 62) and s.loss_percent == 0
    lost = (
        "From 10.10.0.33 icmp_seq=1 Destination Net Unreachable\n"
        "--- 10.10.0.44 ping statistics ---\n"
        "2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1056ms\n"
    )
    s = parsers.parse_ping(lost)
    assert not s.all_answered and s.received == 0 and s.loss_percent == 100
    assert s.errors == ("Destination Net Unreachable",)
    with pytest.raises(parsers.ParseError):
        parsers.parse_ping("ping: unknown host")


def test_ciliumnode_pools() -> None:
    node = {"spec": {"ipam": {"pools": {"allocated": [{"pool": "default", "cidrs": ["10.10.0.0/27"]}]}}}}
    assert parsers.parse_ciliumnode_pools(node) == {"default": [ipaddress.IPv4Network("10.10.0.0/27")]}
    assert parsers.parse_ciliumnode_pools({"spec": {}}) == {}


def test_not_json_is_a_parse_error() -> None:
    with pytest.raises(parsers.ParseError, match="not JSON"):
        parsers.parse_routes("Error: ipv4: FIB table does not exist.")
