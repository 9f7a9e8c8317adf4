"""The comparison's readers (compare/parsers.py) on recorded output: iperf3's JSON and ping's
replies from a real lab, and route tables of real and replica nodes sorted by origin. Each reader refuses output it cannot read, by name."""

from __future__ import annotations

import json

import pytest
from fakeprobe import load_world

from compare import parsers
from verify.parsers import ParseError


def _iperf3(world: str) -> str:
    (answer,) = load_world(world).find("pod", "pod-a", ["iperf3", "-c"])[:1]
    return answer.stdout


@pytest.mark.parametrize("world", ["kind-overlay", "kind-native-auto"])
def test_iperf3_reads_the_receivers_rate(world: str) -> None:
    text = _iperf3(world)
    rate = parsers.iperf3_bits_per_second(text)
    assert rate == json.loads(text)["end"]["sum_received"]["bits_per_second"]
    assert rate != json.loads(text)["end"]["sum_sent"]["bits_per_second"]  # what arrived, not what was sent


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            '{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}',
            "iperf3: unable to connect to server",
        ),
        ('{"end": {"sum_received": {"bits_per_second": 0}}}', "no end.sum_received.bits_per_second"),
        ('{"end": {}}', "no end.sum_received.bits_per_second"),
        ("iperf3: error - unable to connect", "not JSON"),
        ("[]", "not an object"),
        ("", "not JSON"),
    ],
)
def test_iperf3_refuses_a_run_that_measured_nothing(text: str, named: str) -> None:
    with pytest.raises(ParseError, match=named):
        parsers.iperf3_bits_per_second(text)


def test_ping_replies_keep_each_round_trip_and_ttl() -> None:
    text = (
        "PING 10.10.0.40 (10.10.0.40) 56(84) bytes of data.\n"
        "64 bytes from 10.10.0.40: icmp_seq=1 ttl=62 time=0.412 ms\n"
        "64 bytes from 10.10.0.40: icmp_seq=2 ttl=62 time=0.120 ms\n"
        "64 bytes from 10.10.0.40: icmp_seq=4 ttl=61 time=0.250 ms\n\n"
        "--- 10.10.0.40 ping statistics ---\n"
        "4 packets transmitted, 3 received, 25% packet loss, time 611ms\n"
    )
    replies = parsers.ping_replies(text)
    assert replies.rtts_ms == (0.412, 0.120, 0.250) and replies.ttls == (62, 62, 61)
    assert replies.median_ms == 0.250


@pytest.mark.parametrize("world", ["kind-overlay", "kind-native-auto", "overlay", "static"])
def test_ping_replies_of_recorded_labs(world: str) -> None:
    pings = load_world(world).find("pod", "pod-a", ["ping", "-n", "-c"])
    assert pings
    for answer in pings:
        if answer.returncode == 0:
            replies = parsers.ping_replies(answer.stdout)
            assert len(replies.rtts_ms) == answer.stdout.count(" bytes from ")


def test_ping_without_a_reply_is_refused() -> None:
    text = "PING 10.10.0.40 (10.10.0.40) 56(84) bytes of data.\n\n3 packets transmitted, 0 received, 100% packet loss\n"
    with pytest.raises(ParseError, match="ping: no replies"):
        parsers.ping_replies(text)


def _routes(world: str, node: int) -> str:
    w = load_world(world)
    return w.node(w.topology.nodes[node].name, "ip", "-j", "route", "show").stdout


def test_overlay_routes_by_origin() -> None:
    counts = parsers.route_origins(_routes("kind-overlay", 0))
    table = json.loads(_routes("kind-overlay", 0))
    assert sum(counts.values()) == len(table)
    assert counts["Cilium"] == sum(1 for r in table if r.get("dev", "").startswith("cilium_"))
    assert counts["Docker"] == 1 and counts["BGP"] == 0 and counts["the lab"] == 0


def test_native_auto_routes_via_node_ips_and_to_endpoints_are_ciliums() -> None:
    table = json.loads(_routes("kind-native-auto", 0))
    direct = [r for r in table if r.get("protocol") == "kernel" and "gateway" in r]
    endpoints = [r for r in table if r.get("dev", "").startswith("lxc")]
    assert len(direct) == 2 and len(endpoints) >= 2  # autoDirectNodeRoutes; one /32 per endpoint
    counts = parsers.route_origins(_routes("kind-native-auto", 0))
    assert counts == {
        "kernel": 1,
        "Cilium": len(direct) + len(endpoints),
        "the lab": 0,
        "BGP": 0,
        "Docker": 1,
    }


@pytest.mark.parametrize(
    ("route", "origin"),
    [
        ({"dst": "10.10.0.0/16", "gateway": "172.30.5.254", "dev": "eth0", "protocol": "boot"}, "the lab"),
        ({"dst": "10.10.0.32/27", "gateway": "172.30.3.3", "dev": "eth0", "protocol": "kernel"}, "Cilium"),
        (
            {"dst": "10.99.0.1", "protocol": "bgp", "nexthops": [{"gateway": "172.30.5.2", "dev": "eth0"}]},
            "BGP",
        ),
        ({"dst": "10.10.0.5", "dev": "cilium_host", "protocol": "kernel", "scope": "link"}, "Cilium"),
        ({"dst": "10.10.0.81", "dev": "lxc0478db4442f6", "protocol": "kernel", "scope": "link"}, "Cilium"),
        ({"dst": "172.30.5.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link"}, "kernel"),
        ({"dst": "default", "gateway": "172.30.5.1", "dev": "eth0"}, "Docker"),
        ({"dst": "10.10.0.64/27", "gateway": "172.30.4.4", "dev": "eth0"}, "the lab"),
    ],
)
def test_each_origin_is_told_apart(route: dict[str, object], origin: str) -> None:
    counts = parsers.route_origins(json.dumps([route]))
    assert counts == {o: int(o == origin) for o in parsers.ORIGINS}


def test_a_route_table_that_is_not_json_is_refused() -> None:
    with pytest.raises(ParseError):
        parsers.route_origins("default via 172.30.5.1 dev eth0")
