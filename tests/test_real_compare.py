"""`make compare` for real, short: one mode (native-auto), one round, one sample of each
measurement, in a copy of the project (tests/real_lab.py). The lab comes up verified, is
measured with iperf3, ping, a capture, the DF search and the route tables, and is gone at the
end, stack and stack file included; the report, the JSON and the charts are written. The full
comparison of every mode is a benchmark: bench/compare_modes.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from real_lab import KIND_CLUSTER_LABEL, Lab, open_lab

from compare.report import CHARTS

MODE = "native-auto"
STACK = f"compare-{MODE}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from open_lab(tmp_path_factory)


def test_compare_one_mode_measures_reports_and_leaves_nothing(lab: Lab) -> None:
    out = lab.root / "artifacts" / "compare"
    lab.created.append(STACK)  # if the run dies half way, the fixture destroys and sweeps it
    said = lab.ok(
        "compare", f"MODES={MODE}", "ROUNDS=1", "SAMPLES=1", "COMPARE_FLAGS=--iperf-seconds 2 --pings 5"
    )
    lab.created.remove(STACK)
    for step in ("make up (to verified): done", "throughput, iperf3 1x2 s per path: done", "destroy: done"):
        assert f"{MODE}: {step}" in said, said
    data = json.loads((out / "compare.json").read_text())
    figures = data["modes"][MODE]["figures"]
    assert data["modes"][MODE]["failures"] == []
    for name in (
        "up_seconds",
        "throughput_gbps same node",
        "throughput_gbps across nodes",
        "latency_ms same node",
        "latency_ms across nodes",
        "wire_bytes",
        "path_mtu",
        "ttl",
    ):
        assert len(figures[name]["samples"]) == 1, name
    assert figures["wire_bytes"]["median"] == 98  # native: the echo request as it is, no tunnel
    assert figures["path_mtu"]["median"] == 1500
    assert figures["ttl"]["median"] < 64
    routes = data["modes"][MODE]["rounds"][0]["routes"]
    assert len(routes) == 3 and all(counts["Cilium"] >= 2 for counts in routes.values()), routes
    report = (out / "report.md").read_text()
    assert f"| | `{MODE}` |" in report and "TCP throughput, across nodes" in report
    for chart in CHARTS:
        assert (out / chart).read_bytes()[:4] == b"\x89PNG", chart
    # nothing left: no stack, no stack file, no container of the lab
    assert not (lab.root / "stacks" / f"Pulumi.{STACK}.yaml").exists()
    assert STACK not in lab.pulumi("stack", "ls", "--json")
    left = lab.docker("ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}=cmp-{MODE}")
    assert left.stdout.strip() == ""
