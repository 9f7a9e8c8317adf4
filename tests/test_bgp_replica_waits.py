"""The BGP daemon runner's waits, against a scripted FRR: no root, no daemons, deterministic.

Why: with real daemons the races these waits close show up once in several runs (issue 10):
FRR drops a dead node's dynamic peer from its summary at once but withdraws the node's routes
later, and selects a route before the kernel has it installed. Here FRR's answers change on a
virtual clock, one step per poll, so a wait that stops too early is caught every time.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from verify import bgp_replica
from verify.bgp_replica import BgpDaemonError, BgpDaemons, Speaker, _Process, replica_lab_config
from verify.probe import CommandResult
from verify.replica import Replica


class ScriptedLab:
    """What vtysh, `ip -j route` and `gobgp ... adj-out` answer, per router; `changes[step]`
    runs when the runner has slept `step` times (each sleep is one poll interval)."""

    def __init__(self, daemons: BgpDaemons) -> None:
        self.daemons = daemons
        self.now = 0.0
        self.sleeps = 0
        self.changes: dict[int, list[Any]] = {}
        self.peers = {r.name: {str(s.ip): "Established" for s in daemons.speakers} for r in daemons.routers}
        self.rib: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.kernel: dict[str, dict[str, list[str]]] = {}
        for router in daemons.routers:
            self.rib[router.name] = {}
            self.kernel[router.name] = {}
            for speaker in daemons.speakers:
                self.announce(router.name, speaker)

    # the lab's state
    def announce(self, router: str, speaker: Speaker, *, installed: bool = True) -> None:
        for prefix in speaker.prefixes:
            entries = self.rib[router].setdefault(str(prefix), [])
            if not entries:
                entries.append({"prefix": str(prefix), "protocol": "bgp", "selected": True, "nexthops": []})
            entries[0]["installed"] = installed
            entries[0]["nexthops"].append({"ip": str(speaker.ip), "afi": "ipv4", "active": True})
            if installed:
                self.kernel[router].setdefault(str(prefix), []).append(str(speaker.ip))

    def withdraw_rib(self, router: str, speaker: Speaker) -> None:
        for prefix in speaker.prefixes:
            for entry in self.rib[router].get(str(prefix), []):
                entry["nexthops"] = [nh for nh in entry["nexthops"] if nh["ip"] != str(speaker.ip)]
            self.rib[router][str(prefix)] = [
                e for e in self.rib[router].get(str(prefix), []) if e["nexthops"]
            ]

    def withdraw_kernel(self, router: str, speaker: Speaker) -> None:
        for prefix in speaker.prefixes:
            gateways = self.kernel[router].get(str(prefix), [])
            self.kernel[router][str(prefix)] = [g for g in gateways if g != str(speaker.ip)]

    def holds(self, speaker: Speaker) -> list[str]:
        """Every place a router still routes one of the speaker's prefixes to it."""
        ip = str(speaker.ip)
        held = []
        for router in self.rib:
            for prefix in map(str, speaker.prefixes):
                if any(nh["ip"] == ip for e in self.rib[router].get(prefix, []) for nh in e["nexthops"]):
                    held.append(f"{router} RIB {prefix}")
                if ip in self.kernel[router].get(prefix, []):
                    held.append(f"{router} kernel {prefix}")
        return held

    # the clock the runner polls on
    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        for change in self.changes.pop(self.sleeps, []):
            change()

    # the commands the runner sends
    def vtysh(self, command: str, router: str = "rtr") -> CommandResult:
        if command == "show bgp summary json":
            peers = {ip: {"state": state, "dynamicPeer": True} for ip, state in self.peers[router].items()}
            out: Any = {"ipv4Unicast": {"peers": peers}}
        elif command == "show ip route json":
            out = self.rib[router]
        else:
            raise AssertionError(f"unscripted vtysh command {command!r}")
        return _result(router, ["vtysh", "-c", command], json.dumps(out))

    def router_exec(
        self, argv: Sequence[str], timeout: float = 30.0, *, router: str = "rtr"
    ) -> CommandResult:
        if list(argv[:4]) != ["ip", "-j", "route", "show"]:
            raise AssertionError(f"unscripted router command {argv}")
        gateways = self.kernel[router].get(argv[4], [])
        routes: list[dict[str, Any]] = []
        if len(gateways) == 1:
            routes = [{"dst": argv[4], "gateway": gateways[0], "protocol": "bgp"}]
        elif gateways:
            routes = [{"dst": argv[4], "protocol": "bgp", "nexthops": [{"gateway": g} for g in gateways]}]
        return _result(router, argv, json.dumps(routes))

    def node_exec(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        if "adj-out" not in argv:
            raise AssertionError(f"unscripted node command {argv}")
        prefixes = self.daemons.speaker(node).prefixes
        return _result(node, argv, "\n".join(f"*> {p}  {self.daemons.speaker(node).ip}" for p in prefixes))


def _result(where: str, argv: Sequence[str], stdout: str) -> CommandResult:
    return CommandResult(where, tuple(argv), 0, stdout, "")


@pytest.fixture(params=[1, 2], ids=["one-router", "two-routers"])
def scripted(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedLab]:
    """A BgpDaemons that believes it runs (a `sleep` stands in for each gobgpd), answered by a
    ScriptedLab instead of daemons."""
    rep = Replica("bgp", prefix="cdlbgpw-", routers=request.param, router_static_routes=False)
    daemons = BgpDaemons(rep, replica_lab_config(rep))
    lab = ScriptedLab(daemons)
    monkeypatch.setattr(bgp_replica, "time", lab)
    monkeypatch.setattr(daemons, "router_vtysh", lab.vtysh)
    monkeypatch.setattr(rep, "router_exec", lab.router_exec)
    monkeypatch.setattr(rep, "node_exec", lab.node_exec)
    daemons.runtime = Path("/nonexistent")  # never read: every command is scripted
    for speaker in daemons.speakers:
        stand_in = subprocess.Popen(["sleep", "60"], start_new_session=True)
        daemons._processes[f"gobgpd {speaker.node}"] = _Process(speaker.node, stand_in, Path("/dev/null"))
    try:
        yield lab
    finally:
        for process in daemons._processes.values():
            process.proc.kill()
            process.proc.wait()


def _dies(lab: ScriptedLab, speaker: Speaker, *, rib_after: int, kernel_after: int) -> None:
    """The speaker's sessions go at once; FRR withdraws its routes `rib_after` polls later and
    the kernel follows `kernel_after` polls later."""
    for router in lab.rib:
        del lab.peers[router][str(speaker.ip)]
    routers = list(lab.rib)
    lab.changes.setdefault(rib_after, []).extend(lambda r=r: lab.withdraw_rib(r, speaker) for r in routers)
    lab.changes.setdefault(kernel_after, []).extend(
        lambda r=r: lab.withdraw_kernel(r, speaker) for r in routers
    )


# --- stop_speaker waits for the withdrawal, not only the session --------------------------------


def test_stop_speaker_returns_only_once_every_router_withdrew_the_routes(scripted: ScriptedLab) -> None:
    gone = scripted.daemons.speakers[2]
    _dies(scripted, gone, rib_after=2, kernel_after=4)
    assert scripted.holds(gone)  # the session is gone, the routes are not
    seconds = scripted.daemons.stop_speaker(gone.node)
    assert scripted.holds(gone) == []
    assert scripted.sleeps == 4
    assert seconds == pytest.approx(4 * bgp_replica.POLL_INTERVAL)
    assert f"gobgpd {gone.node}" not in scripted.daemons._processes


def test_stop_speaker_waits_for_the_rib_even_when_the_kernel_is_first(scripted: ScriptedLab) -> None:
    gone = scripted.daemons.speakers[0]
    _dies(scripted, gone, rib_after=3, kernel_after=1)
    scripted.daemons.stop_speaker(gone.node)
    assert scripted.holds(gone) == [] and scripted.sleeps == 3


def test_stop_speaker_waits_while_a_session_is_still_established(scripted: ScriptedLab) -> None:
    gone = scripted.daemons.speakers[1]
    _dies(scripted, gone, rib_after=1, kernel_after=1)
    last = scripted.daemons.routers[-1].name
    scripted.peers[last][str(gone.ip)] = "Established"  # this router has not noticed yet
    scripted.changes.setdefault(5, []).append(lambda: scripted.peers[last].pop(str(gone.ip)))
    scripted.daemons.stop_speaker(gone.node)
    assert scripted.sleeps == 5


def test_routes_never_withdrawn_time_out_naming_them(scripted: ScriptedLab) -> None:
    gone = scripted.daemons.speakers[2]
    _dies(scripted, gone, rib_after=10**6, kernel_after=10**6)
    with pytest.raises(
        BgpDaemonError, match=r"withdraw its routes: routes via 172\.31\.5\.\d+ not yet"
    ) as err:
        scripted.daemons.stop_speaker(gone.node)
    assert f"{gone.prefixes[0]} in FRR's RIB" in str(err.value)
    assert f"{gone.prefixes[0]} in the kernel" in str(err.value)


def test_other_speakers_routes_do_not_count_as_held(scripted: ScriptedLab) -> None:
    """The VIP stays routed via the other nodes: only nexthops through the dead one are waited on."""
    gone = scripted.daemons.speakers[2]
    _dies(scripted, gone, rib_after=1, kernel_after=1)
    scripted.daemons.stop_speaker(gone.node)
    vip = str(gone.prefixes[1])
    for router in scripted.rib:
        assert len(scripted.kernel[router][vip]) == 2 and scripted.rib[router][vip]


# --- convergence includes "installed" ------------------------------------------------------------


def test_not_converged_while_a_pod_cidr_is_selected_but_not_installed(scripted: ScriptedLab) -> None:
    daemons = scripted.daemons
    assert daemons._converged() == (True, "")
    router, node = daemons.routers[-1].name, daemons.speakers[1]
    entry = scripted.rib[router][str(node.prefixes[0])][0]
    entry["installed"] = False
    ok, why = daemons._converged()
    assert not ok
    assert why == f"{router}: {node.prefixes[0]} selected but not yet installed in the kernel"


def test_not_converged_while_the_vip_is_selected_but_not_installed(scripted: ScriptedLab) -> None:
    daemons = scripted.daemons
    vip = str(ipaddress.IPv4Network(f"{daemons.vip}/32"))
    scripted.rib[daemons.routers[0].name][vip][0]["installed"] = False
    ok, why = daemons._converged()
    assert not ok and why.endswith(f"{vip} selected but not yet installed in the kernel")
