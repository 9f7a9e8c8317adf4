"""The recorded worlds themselves: each is a lab its stack's checks PASS on (README's table), and
the fake probe answers only what was recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeprobe import FakeProbe, judge, load_world, worlds
from readme_checks import checks_of

from verify.checks import Status

STACK_OF = {
    "overlay": "overlay",
    "overlay-tcx": "overlay",
    "geneve": "geneve",
    "native-auto": "native-auto",
    "static": "static",
    "static-bare": "static",
    "bgp": "bgp",
    "bgp-2-routers": "bgp",
    "kind-overlay": "overlay",
    "kind-native-auto": "native-auto",
}
# What a world holds: the replica's worlds every check of their stack but Cilium's own trace
# points (the replica runs no agent); the worlds recorded from real labs that check alone (and
# `make compare`'s measurements, which tests/test_compare_*.py read).
REAL_ONLY = {"datapath.trace"}
KIND_WORLDS = {"kind-overlay", "kind-native-auto"}


def holds(world: str, check: str) -> bool:
    return (check in REAL_ONLY) == (world in KIND_WORLDS)


# What a world is not: the static lab before its routes (the write-up's 3B), and after them.
NOT_IN = {
    "static-bare": {"static.routes", "static.ping", "native.capture", "path.mtu"},
    "static": {"static.fails-without-routes"},
}


def test_every_recorded_world_is_known() -> None:
    assert worlds() == sorted(STACK_OF)


@pytest.mark.parametrize(
    ("world", "check"),
    [
        (w, c)
        for w, stack in STACK_OF.items()
        for c in checks_of(stack)
        if c not in NOT_IN.get(w, set()) and holds(w, c)
    ],
)
def test_the_world_passes_its_stacks_check(world: str, check: str, tmp_path: Path) -> None:
    verdict = judge(load_world(world), check, tmp_path)
    assert verdict.status is Status.PASS, verdict.findings


@pytest.mark.parametrize(("world", "check"), [(w, c) for w, cs in NOT_IN.items() for c in sorted(cs)])
def test_the_world_fails_what_it_is_not(world: str, check: str, tmp_path: Path) -> None:
    assert judge(load_world(world), check, tmp_path).status is Status.FAIL


def test_derived_worlds_say_so() -> None:
    for name in worlds():
        about = load_world(name).about
        derived = name in ("geneve", "overlay-tcx")
        real = name in KIND_WORLDS
        assert about["source"] == (
            "derived from overlay" if derived else "recorded from a real kind lab" if real else "recorded"
        )
        assert about["rerecord"] == "tests/fast/record.py"


def test_the_replica_has_no_trace_points_to_judge(tmp_path: Path) -> None:
    """The replica worlds hold no monitor output: datapath.trace cannot pass on them."""
    verdict = judge(load_world("overlay"), "datapath.trace", tmp_path)
    assert verdict.status is Status.FAIL
    assert any("could not collect the evidence" in f or "traced" in f for f in verdict.findings), (
        verdict.findings
    )


def test_an_unrecorded_command_is_a_missing_tool(tmp_path: Path) -> None:
    probe = FakeProbe(load_world("overlay"))
    result = probe.node_exec("replica-worker", ["ip", "-j", "route", "show", "table", "200"])
    assert (result.returncode, result.stdout) == (127, "")
    assert "has no record" in result.stderr


def test_an_unrecorded_capture_is_a_missing_device(tmp_path: Path) -> None:
    probe = FakeProbe(load_world("native-auto"))
    with pytest.raises(OSError, match="no such capture"):
        probe.capture("replica-worker", "cilium_vxlan", "", lambda: None, tmp_path / "x.pcap")


def test_a_check_asking_another_lab_fails(tmp_path: Path) -> None:
    """The native world has no tunnel device to capture on: the overlay claim cannot pass there."""
    assert judge(load_world("native-auto"), "intranode.path", tmp_path).status is Status.FAIL


def test_each_test_gets_its_own_copy() -> None:
    first = load_world("overlay")
    first.node("replica-worker", "ip", "-j", "route", "show").stdout = "[]"
    assert load_world("overlay").node("replica-worker", "ip", "-j", "route", "show").stdout != "[]"
