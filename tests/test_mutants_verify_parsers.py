"""verify/parsers.py cases a mutation run (`make mutation`) found no test for.

What a parser says when output is not what its tool prints (a check shows that text as its
evidence), what it makes of fields a tool leaves out, and bpftool's `<program>-<device>` form
as parse_bpf_net sees it (the recorded worlds hold only tcx and object-file names).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

import pytest

from verify import parsers
from verify.parsers import ParseError, Route

JSON_PARSERS: dict[str, Callable[[str], Any]] = {
    "ip -j route": parsers.parse_routes,
    "ip -j addr": parsers.parse_addresses,
    "ip -j -d link": parsers.parse_links,
    "bpftool -j net show": parsers.parse_bpf_net,
    "kubectl get -o json": parsers.parse_kube_list,
}


@pytest.mark.parametrize("what", JSON_PARSERS)
def test_output_that_is_not_json_names_the_tool_and_shows_the_start(what: str) -> None:
    parse = JSON_PARSERS[what]
    with pytest.raises(ParseError) as empty:
        parse("  \n")
    assert str(empty.value) == f"{what}: not JSON (Expecting value): (empty)"
    with pytest.raises(ParseError) as long:
        parse("Error: " + "x" * 300)
    assert str(long.value) == f"{what}: not JSON (Expecting value): Error: {'x' * 193}"


def test_ping_without_a_statistics_line_shows_the_start_of_what_it_printed() -> None:
    with pytest.raises(ParseError) as empty:
        parsers.parse_ping("")
    assert str(empty.value) == "ping: no statistics line in output: (empty)"
    with pytest.raises(ParseError) as long:
        parsers.parse_ping("ping: sendmsg: " + "y" * 300)
    assert str(long.value) == f"ping: no statistics line in output: ping: sendmsg: {'y' * 185}"


def test_json_of_the_wrong_shape_is_refused_by_name() -> None:
    with pytest.raises(ParseError) as routes:
        parsers.parse_routes('{"dst": "default"}')
    assert str(routes.value) == "ip -j route: expected a list"
    for not_a_list in ("[]", '{"kind": "List"}', '{"items": {}}'):
        with pytest.raises(ParseError) as kube:
            parsers.parse_kube_list(not_a_list)
        assert str(kube.value) == "kubectl get -o json: no items list"


def test_a_route_keeps_its_scope_and_prints_it_where_ip_route_does() -> None:
    text = json.dumps(
        [
            {"dst": "10.10.0.0/27", "dev": "cilium_host", "protocol": "kernel", "scope": "link"},
            {"dst": "default", "gateway": "172.30.4.1", "dev": "eth0"},
        ]
    )
    link, default = parsers.parse_routes(text)
    assert link == Route("10.10.0.0/27", "cilium_host", None, "kernel", "link")
    assert link.line() == "10.10.0.0/27 dev cilium_host proto kernel scope link"
    assert default.scope is None and default.line() == "default via 172.30.4.1 dev eth0"


def test_fields_a_tool_leaves_out() -> None:
    """A link with no address, no MTU or no linkinfo; a bpftool section with no tc list."""
    assert parsers.parse_addresses('[{"ifname": "lo"}]') == []
    (link,) = parsers.parse_links('[{"ifname": "dummy0"}]')
    assert (link.kind, link.mtu, link.data) == (None, 0, {})
    assert parsers.parse_bpf_net('[{"xdp": []}, {"flow_dissector": []}]') == []
    (bare,) = parsers.parse_bpf_net('[{"tc": [{"id": 7}]}]')
    assert bare == parsers.BpfAttachment(device="", direction="", attach="", program="")


def test_a_tc_filter_named_after_its_device_is_read_as_the_program() -> None:
    """Cilium names its tc filters `<program>-<device>` (bpftool prints that as the name)."""
    entries = [
        {"devname": "lxc1a2b", "ifindex": 9, "kind": "clsact/ingress", "name": "cil_from_container-lxc1a2b"},
        {"devname": "eth0", "ifindex": 2, "kind": "tcx/egress", "name": "cil_to_netdev"},
    ]
    lxc, eth0 = parsers.parse_bpf_net(json.dumps([{"tc": entries}]))
    assert lxc == parsers.BpfAttachment("lxc1a2b", "ingress", "clsact", "cil_from_container")
    assert eth0 == parsers.BpfAttachment("eth0", "egress", "tcx", "cil_to_netdev")


def test_ciliumnode_pools_with_parts_missing() -> None:
    assert parsers.parse_ciliumnode_pools({"metadata": {"name": "n"}}) == {}
    allocated = [{"pool": "default"}, {"cidrs": ["10.10.0.0/27", "fd00::/120"]}]
    got = parsers.parse_ciliumnode_pools({"spec": {"ipam": {"pools": {"allocated": allocated}}}})
    assert got == {"default": [], "": [ipaddress.IPv4Network("10.10.0.0/27")]}
