"""bench/up_timing.py's bookkeeping: which resource counts in which phase, and the spans and table
it reports (the figures themselves come from real runs of the benchmark, README's timing table)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import up_timing

STACK = "urn:pulumi:overlay::cilium-datapath-lab::"
KIND = "pulumi:pulumi:Stack$lab:index:KindCluster"
CILIUM = "pulumi:pulumi:Stack$lab:index:CiliumRelease"


@pytest.mark.parametrize(
    ("urn", "phase"),
    [
        (f"{STACK}{KIND}$command:local:Command::lab-cluster", "cluster"),
        (f"{STACK}{KIND}$command:local:Command::lab-kubeconfig", "cluster"),
        (f"{STACK}{KIND}$command:local:Command::lab-images", "images into the nodes"),
        (f"{STACK}{CILIUM}$kubernetes:helm.sh/v3:Release::cilium-chart", "Cilium ready"),
        (f"{STACK}{CILIUM}$command:local:Command::cilium-ready", "Cilium ready"),
        (
            f"{STACK}pulumi:pulumi:Stack$lab:index:Verify$command:local:Command::check-x",
            "workloads and checks",
        ),
        (
            f"{STACK}pulumi:pulumi:Stack$docker:index/network:Network::lab-overlay-network",
            "workloads and checks",
        ),
        (f"{STACK}{KIND}::lab", None),  # a component: registered at the start, no work of its own
        (f"{STACK}pulumi:pulumi:Stack::cilium-datapath-lab-overlay", None),
        (f"{STACK}pulumi:providers:kubernetes::kind", None),
        (f"{STACK}{KIND}$pulumi:providers:kubernetes::lab-provider", None),
        ("not-a-urn", None),
    ],
)
def test_each_resource_counts_in_its_phase(urn: str, phase: str | None) -> None:
    assert up_timing.phase_of(urn) == phase


def _event(stamp: int, kind: str, urn: str) -> dict[str, object]:
    return {"sequence": stamp, "timestamp": stamp, kind: {"metadata": {"urn": urn}}}


def test_the_phases_cut_the_engine_timeline_and_add_up_to_it() -> None:
    network = f"{STACK}pulumi:pulumi:Stack$docker:index/network:Network::lab-network"
    cluster = f"{STACK}{KIND}$command:local:Command::lab-cluster"
    images = f"{STACK}{KIND}$command:local:Command::lab-images"
    chart = f"{STACK}{CILIUM}$kubernetes:helm.sh/v3:Release::cilium-chart"
    check = f"{STACK}pulumi:pulumi:Stack$lab:index:Verify$command:local:Command::verify-x"
    events = [
        {"sequence": 0, "timestamp": 100, "preludeEvent": {}},
        _event(101, "resourcePreEvent", f"{STACK}{KIND}::lab"),  # a component: no phase of its own
        _event(101, "resourcePreEvent", network),
        _event(103, "resOutputsEvent", network),  # made while the cluster starts: inside its phase
        _event(103, "resourcePreEvent", cluster),
        _event(150, "resOutputsEvent", cluster),
        _event(150, "resourcePreEvent", images),
        _event(153, "resOutputsEvent", images),
        _event(153, "resourcePreEvent", chart),
        _event(190, "resOutputsEvent", chart),
        _event(190, "resourcePreEvent", check),
        _event(230, "resOutputsEvent", check),
        {"sequence": 9, "timestamp": 231, "summaryEvent": {}},
    ]
    found = up_timing.phases(events)
    assert found == {
        "cluster": 50.0,
        "images into the nodes": 3.0,
        "Cilium ready": 37.0,
        "workloads and checks": 41.0,
    }
    assert sum(found.values()) == 231 - 100


def test_a_lab_with_nothing_to_load_has_no_image_phase() -> None:
    cluster = f"{STACK}{KIND}$command:local:Command::lab-cluster"
    chart = f"{STACK}{CILIUM}$kubernetes:helm.sh/v3:Release::cilium-chart"
    events = [
        _event(10, "resourcePreEvent", cluster),
        _event(60, "resOutputsEvent", cluster),
        _event(61, "resourcePreEvent", chart),
        _event(100, "resOutputsEvent", chart),
    ]
    assert up_timing.phases(events) == {
        "cluster": 50.0,
        "images into the nodes": 0.0,
        "Cilium ready": 40.0,
        "workloads and checks": 0.0,
    }
    assert up_timing.phases([]) == dict.fromkeys(up_timing.PHASES, 0.0)


def test_the_table_gives_medians_and_the_spread_over_runs() -> None:
    run = {"cluster": 50.0, "images into the nodes": 1.0, "Cilium ready": 40.0, "workloads and checks": 30.0}
    runs = [
        {**run, "floor": 90.0, "make up": 130.0},
        {**run, "floor": 90.0, "make up": 150.0},
        {**run, "floor": 90.0, "make up": 140.0},
    ]
    table = up_timing.table({"overlay": runs, "static": runs[:1]}).splitlines()
    assert table[0] == (
        "| stack | make's own | cluster | images into the nodes | Cilium ready | workloads and checks "
        "| make up | floor | over the floor |"
    )
    assert table[1] == "|---|---|---|---|---|---|---|---|---|"
    assert table[2] == (
        "| overlay | 19 s (9-29) | 50 s (50-50) | 1 s (1-1) | 40 s (40-40) | 30 s (30-30) "
        "| 140 s (130-150) | 90 s (90-90) | 50 s (40-60) |"
    )
    assert table[3] == "| static | 9 s | 50 s | 1 s | 40 s | 30 s | 130 s | 90 s | 40 s |"


def test_engine_events_are_told_from_make_s_own_output() -> None:
    assert up_timing._event('{"sequence": 3, "timestamp": 1}\n') == {"sequence": 3, "timestamp": 1}
    assert up_timing._event("pulumi up --stack overlay --json\n") is None
    assert up_timing._event('{"not": "an event"}\n') is None
    assert up_timing._event("{broken\n") is None
