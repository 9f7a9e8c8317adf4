"""The comparison's report (compare/report.py, compare/figures.py): the table's cells are the
medians and spreads of the samples, the JSON keeps every sample, the charts are PNGs a person can
open, and a mode that was skipped or failed says so instead of showing numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare import report
from compare.figures import Figure
from compare.measure import Round
from compare.run import ModeResult

SETTINGS = {"modes": ["overlay", "native-auto"], "rounds": 2, "samples": 3, "iperf_seconds": 3, "pings": 20}


def _round(gbps: list[float], ms: list[float], wire: int, mtu: int, ttl: int, cilium: int) -> Round:
    got = Round()
    got.throughput_bps = {"same node": [g * 1e9 * 2 for g in gbps], "across nodes": [g * 1e9 for g in gbps]}
    got.latency_ms = {"same node": [m / 2 for m in ms], "across nodes": ms}
    got.wire_bytes, got.path_mtu, got.ttl = wire, mtu, ttl
    got.routes = {
        "n1": {"kernel": 1, "Cilium": cilium, "the lab": 0, "BGP": 0, "Docker": 1},
        "n2": {"kernel": 1, "Cilium": cilium, "the lab": 0, "BGP": 0, "Docker": 1},
    }
    return got


def results() -> list[ModeResult]:
    overlay = ModeResult("overlay", up_seconds=[210.0, 230.0])
    overlay.turns = [{"round": 1.0, "make up": 210.4, "measure": 95.0, "tear down": 21.0}]
    overlay.rounds = [
        _round([4.0, 5.0, 6.0], [0.3, 0.4, 0.5], 148, 1450, 63, 4),
        _round([5.5, 5.0, 4.5], [0.4] * 3, 148, 1450, 63, 4),
    ]
    native = ModeResult("native-auto", up_seconds=[170.0, 180.0])
    native.rounds = [
        _round([8.0, 9.0, 10.0], [0.2, 0.2, 0.3], 98, 1500, 62, 3),
        _round([9.0] * 3, [0.25] * 3, 98, 1500, 62, 3),
    ]
    return [overlay, native, ModeResult("geneve", skipped="this kernel cannot make a Geneve device")]


def test_a_figure_is_the_median_and_spread_of_its_samples() -> None:
    fig = Figure.of([5.0, 4.0, 9.0, 6.0])
    assert (fig.median, fig.low, fig.high) == (5.5, 4.0, 9.0)
    assert fig.text("Gbit/s", 2) == "5.50 Gbit/s (4.00..9.00, n=4)"
    assert Figure.of([3.0]).text("s", 0) == "3 s (n=1)"
    assert Figure.of([]).text("ms") == "n/a" and Figure.of([]).as_json()["median"] is None


def test_the_table_puts_the_modes_side_by_side() -> None:
    table = report.table(results())
    lines = table.splitlines()
    assert lines[0] == "| | `overlay` | `native-auto` |"  # a skipped mode has no column
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in lines[2:]}
    assert rows["make up to verified"] == ["220 s (210..230, n=2)", "175 s (170..180, n=2) |"]
    assert rows["TCP throughput, across nodes"][0] == "5.00 Gbit/s (4.00..6.00, n=6)"
    assert rows["TCP throughput, same node"][1] == "18.00 Gbit/s (16.00..20.00, n=6) |"
    assert rows["ping latency, across nodes"][1] == "0.250 ms (0.200..0.300, n=6) |"
    assert rows["an 84-byte ping on the wire"] == ["148 B (+50 B)", "98 B |"]
    assert rows["path MTU (largest DF packet)"] == [
        "1450 B (n=2)".replace("(n=2)", "(1450..1450, n=2)"),
        "1500 B (1500..1500, n=2) |",
    ]
    assert rows["hops that took one off the TTL"] == ["1", "2 |"]
    assert rows["routes per node (by origin)"] == [
        "6 (kernel 1, Cilium 4, Docker 1)",
        "5 (kernel 1, Cilium 3, Docker 1) |",
    ]
    assert "routes per router" not in rows


def test_routers_get_a_row_of_their_own() -> None:
    bgp = ModeResult("bgp", up_seconds=[190.0])
    bgp.rounds = [_round([8.0], [0.3], 98, 1500, 62, 0)]
    bgp.rounds[0].router_routes = {
        "cmp-bgp-frr0": {"kernel": 1, "Cilium": 0, "the lab": 0, "BGP": 4, "Docker": 1}
    }
    rows = report.table([bgp]).splitlines()
    assert rows[-1] == "| routes per router | 6 (kernel 1, BGP 4, Docker 1) |"
    assert rows[-2] == "| routes per node (by origin) | 2 (kernel 1, Docker 1) |"


def test_write_leaves_json_charts_and_a_report(tmp_path: Path) -> None:
    path = report.write(results(), SETTINGS, tmp_path)
    assert path == tmp_path / "report.md"
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["settings"] == SETTINGS and data["machine"]["cpus"] >= 1
    overlay = data["modes"]["overlay"]
    assert overlay["figures"]["up_seconds"] == {
        "samples": [210.0, 230.0],
        "median": 220.0,
        "low": 210.0,
        "high": 230.0,
    }
    assert overlay["rounds"][1]["throughput_bps"]["across nodes"] == [5.5e9, 5.0e9, 4.5e9]
    assert data["modes"]["geneve"]["skipped"] == "this kernel cannot make a Geneve device"
    import matplotlib.image  # noqa: PLC0415

    for name in report.CHARTS:
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        height, width = matplotlib.image.imread(png).shape[:2]
        assert (width, height) == (880, 495), name
    text = path.read_text()
    assert report.table(results()) in text
    assert all(f"![{name}]({name})" in text for name in report.CHARTS)
    assert "the ratios\n  between modes carry over to other machines, the absolute numbers do not" in text
    assert "- `geneve`: skipped, this kernel cannot make a Geneve device" in text
    assert "| `overlay` | 1 | 210 s | 95 s | 21 s |" in text
    assert data["modes"]["overlay"]["turns"] == [
        {"round": 1.0, "make up": 210.4, "measure": 95.0, "tear down": 21.0}
    ]


def test_routes_averaged_over_nodes_read_to_one_decimal() -> None:
    native = ModeResult("native-auto", up_seconds=[160.0])
    native.rounds = [_round([9.0], [0.2], 98, 1500, 62, 4)]
    native.rounds[0].routes["n3"] = {"kernel": 1, "Cilium": 5, "the lab": 0, "BGP": 0, "Docker": 1}
    (row,) = [line for line in report.table([native]).splitlines() if "routes per node" in line]
    assert row == "| routes per node (by origin) | 6.3 (kernel 1, Cilium 4.3, Docker 1) |"


def test_the_report_is_drawn_again_from_its_json(tmp_path: Path) -> None:
    """compare.json holds everything the report shows: read back, it gives the same report."""
    first = report.write(results(), SETTINGS, tmp_path / "first").read_text()
    data = json.loads((tmp_path / "first" / "compare.json").read_text())
    data["machine"] = {"kernel": "6.1.0-elsewhere", "machine": "x86_64", "cpus": 8}
    again = report.write(
        report.results_from_json(data), data["settings"], tmp_path / "again", data["machine"]
    )
    assert again.read_text() == first.replace("(2 cores, kernel", "(8 cores, kernel").replace(
        json.loads((tmp_path / "first" / "compare.json").read_text())["machine"]["kernel"], "6.1.0-elsewhere"
    )
    assert json.loads((tmp_path / "again" / "compare.json").read_text())["machine"]["cpus"] == 8


def test_the_cli_redraws_from_a_json_and_refuses_another_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from compare.__main__ import main  # noqa: PLC0415

    report.write(results(), SETTINGS, tmp_path / "run")
    assert (
        main(["--report-from", str(tmp_path / "run" / "compare.json"), "--out", str(tmp_path / "redrawn")])
        == 0
    )
    assert (tmp_path / "redrawn" / "report.md").read_text() == (tmp_path / "run" / "report.md").read_text()
    (tmp_path / "other.json").write_text('{"modes": []}')
    assert main(["--report-from", str(tmp_path / "other.json")]) == 2
    assert "not a compare.json" in capsys.readouterr().err


def test_a_failed_step_is_named_in_the_report(tmp_path: Path) -> None:
    broken = results()
    broken[1].failures.append("round 2: make up failed (logs/native-auto-round2-up.log)")
    text = report.write(broken, SETTINGS, tmp_path).read_text()
    assert "- `native-auto`: round 2: make up failed (logs/native-auto-round2-up.log)" in text


@pytest.mark.parametrize("missing", ["wire_bytes", "path_mtu", "ttl"])
def test_a_figure_never_measured_reads_n_a(missing: str) -> None:
    only = results()[1]
    for r in only.rounds:
        setattr(r, missing, None)
    table = report.table([only])
    label = {"wire_bytes": "an 84-byte ping on the wire", "path_mtu": "path MTU", "ttl": "TTL of replies"}[
        missing
    ]
    (row,) = [line for line in table.splitlines() if label in line]
    assert row.endswith("| n/a |")
