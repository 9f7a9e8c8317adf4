"""One round of `make compare`'s measurements (compare/measure.py) through the fake probe, on the
worlds recorded from real overlay and native-auto labs: each figure is what the recorded output
says, and a measurement that fails is kept as an error naming it while the others go on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fakeprobe import Answer, FakeProbe, Key, World, load_world

from compare.measure import IPERF_PIDFILE, Round, measure_round


def _measure(
    world_name: str, tmp_path: Path, edit: Callable[[World], None] | None = None
) -> tuple[Round, list[str], FakeProbe]:
    world = load_world(world_name)
    if edit is not None:
        edit(world)
    probe = FakeProbe(world)
    said: list[str] = []
    got = measure_round(probe, tmp_path, samples=1, seconds=2, pings=5, say=said.append)
    return got, said, probe


@pytest.mark.parametrize(
    ("world", "wire", "mtu", "ttl", "cilium_routes"),
    [("kind-overlay", 148, 1450, 63, 4), ("kind-native-auto", 98, 1500, 62, 4)],
)
def test_a_round_reads_every_figure(
    world: str, wire: int, mtu: int, ttl: int, cilium_routes: int, tmp_path: Path
) -> None:
    got, said, probe = _measure(world, tmp_path)
    assert got.errors == []
    assert (got.wire_bytes, got.path_mtu, got.ttl) == (wire, mtu, ttl)
    for path in ("same node", "across nodes"):
        (rate,) = got.throughput_bps[path]
        assert rate > 1e9
        (ms,) = got.latency_ms[path]
        assert 0 < ms < 5
    routes = got.routes
    assert set(routes) == {n.name for n in probe.topology.nodes} and got.router_routes == {}
    assert all(c["Docker"] == 1 and c["kernel"] == 1 and c["Cilium"] >= 2 for c in routes.values())
    assert any(c["Cilium"] >= cilium_routes for c in routes.values())
    assert (tmp_path / "wire.pcap").exists()  # the capture is kept, to open in Wireshark
    assert "throughput, iperf3 1x2 s per path ..." in said


def test_the_iperf3_servers_are_stopped_by_the_pid_they_wrote(tmp_path: Path) -> None:
    _, _, probe = _measure("kind-overlay", tmp_path)
    servers = [k for k in probe.calls if k[2][:2] == ("iperf3", "-s")]
    stops = [k for k in probe.calls if "kill" in " ".join(k[2])]
    assert [k[1] for k in servers] == ["pod-b", "pod-c"] == [k[1] for k in stops]
    assert all(k[2][-2:] == ("-I", IPERF_PIDFILE) for k in servers)
    assert all(k[2][-1] == IPERF_PIDFILE for k in stops)


def test_a_failed_measurement_is_an_error_and_the_rest_go_on(tmp_path: Path) -> None:
    def no_server(world: World) -> None:
        def refuse(key: Key) -> Answer | None:
            if key[2][:2] == ("iperf3", "-c"):
                return Answer(1, '{"error": "unable to send control message: Connection reset by peer"}')
            return None

        world.respond(refuse)

    got, said, _ = _measure("kind-native-auto", tmp_path, no_server)
    (error,) = got.errors
    assert error.startswith("throughput, iperf3 1x2 s per path: iperf3: unable to send control message")
    assert got.throughput_bps == {"same node": [], "across nodes": []}
    assert got.wire_bytes == 98 and got.path_mtu == 1500
    assert any(line.startswith("throughput, iperf3 1x2 s per path: FAILED") for line in said)


def test_a_server_that_does_not_start_is_named(tmp_path: Path) -> None:
    def no_start(world: World) -> None:
        world.respond(
            lambda key: (
                Answer(1, "", "iperf3: error - unable to start listener for connections: Address in use")
                if key[2][:2] == ("iperf3", "-s")
                else None
            )
        )

    got, _, _ = _measure("kind-overlay", tmp_path, no_start)
    (error,) = got.errors
    assert "iperf3 server in pod-b did not start: iperf3: error - unable to start listener" in error


def test_no_echo_request_on_the_wire_is_an_error(tmp_path: Path) -> None:
    def empty_capture(world: World) -> None:
        key = next(iter(world.captures))
        world.set_packets(key, [])

    got, _, _ = _measure("kind-overlay", tmp_path, empty_capture)
    assert got.wire_bytes is None
    (error,) = got.errors
    assert error.startswith("bytes on the wire per packet (capture): no echo request pod-a -> pod-c")
