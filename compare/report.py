"""The comparison written down: compare.json (every sample), report.md (the modes side by side)
and PNG charts (throughput and latency with their spread, bytes on the wire per packet)."""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compare.figures import Figure
from compare.measure import ETHERNET_BYTES, ICMP_IP_BYTES, LINUX_TTL, PATHS, Round
from compare.parsers import ORIGINS
from compare.run import ModeResult

CHARTS = ("throughput.png", "latency.png", "wire-bytes.png", "up-time.png")


def _figures(result: ModeResult) -> dict[str, Figure]:
    """Every figure of a mode, pooled over its rounds."""
    figures = {"up_seconds": Figure.of(result.up_seconds)}
    for path in PATHS:
        figures[f"throughput_gbps {path}"] = Figure.of(
            [s / 1e9 for r in result.rounds for s in r.throughput_bps[path]]
        )
        figures[f"latency_ms {path}"] = Figure.of([s for r in result.rounds for s in r.latency_ms[path]])
    for name in ("wire_bytes", "path_mtu", "ttl"):
        figures[name] = Figure.of([v for r in result.rounds if (v := getattr(r, name)) is not None])
    return figures


def _routes(result: ModeResult, routers: bool = False) -> dict[str, dict[str, int]]:
    """The last round's routes per node (or router): the same each round, by the lab's design."""
    if not result.rounds:
        return {}
    return result.rounds[-1].router_routes if routers else result.rounds[-1].routes


def results_from_json(data: dict[str, Any]) -> list[ModeResult]:
    """compare.json read back: the report and charts drawn again without bringing a lab up."""
    return [
        ModeResult(
            mode,
            up_seconds=body["figures"]["up_seconds"]["samples"],
            rounds=[Round(**r) for r in body["rounds"]],
            failures=body["failures"],
            turns=body["turns"],
            skipped=body["skipped"] or "",
        )
        for mode, body in data["modes"].items()
    ]


def this_machine() -> dict[str, Any]:
    return {"kernel": platform.release(), "machine": platform.machine(), "cpus": _cpus()}


def as_json(
    results: Sequence[ModeResult], settings: dict[str, Any], machine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every sample, per mode and round; `machine` is where they were taken (this one by default)."""
    modes: dict[str, Any] = {}
    for result in results:
        modes[result.mode] = {
            "skipped": result.skipped or None,
            "failures": result.failures,
            "figures": {name: fig.as_json() for name, fig in _figures(result).items()},
            "turns": result.turns,
            "rounds": [dataclasses.asdict(r) for r in result.rounds],
        }
    return {"settings": settings, "machine": machine or this_machine(), "modes": modes}


def _cpus() -> int:
    import os  # noqa: PLC0415

    return len(os.sched_getaffinity(0))


def _hops(ttl: Figure) -> str:
    return "n/a" if not ttl.known else f"{LINUX_TTL - int(ttl.median)}"


def _wire(fig: Figure) -> str:
    if not fig.known:
        return "n/a"
    extra = int(fig.median) - ICMP_IP_BYTES - ETHERNET_BYTES
    return f"{int(fig.median)} B (+{extra} B)" if extra else f"{int(fig.median)} B"


def _count(n: float) -> str:
    """A count per node, averaged: whole where it is whole, else to one decimal."""
    return f"{n:.0f}" if n == round(n) else f"{n:.1f}"


def _route_cell(routes: dict[str, dict[str, int]]) -> str:
    """`6 (kernel 1, Cilium 4, Docker 1)`: routes per place, averaged, by origin."""
    if not routes:
        return "-"
    totals = {o: sum(c.get(o, 0) for c in routes.values()) for o in ORIGINS}
    per = {o: n / len(routes) for o, n in totals.items() if n}
    parts = ", ".join(f"{o} {_count(n)}" for o, n in per.items())
    return f"{_count(sum(per.values()))} ({parts})"


def table(results: Sequence[ModeResult]) -> str:
    """The modes side by side, one row per figure: median (low..high, n)."""
    ran = [r for r in results if not r.skipped]
    figures = {r.mode: _figures(r) for r in ran}
    rows: list[tuple[str, Callable[[dict[str, Figure]], str]]] = [
        ("make up to verified", lambda f: f["up_seconds"].text("s", 0)),
        ("TCP throughput, same node", lambda f: f["throughput_gbps same node"].text("Gbit/s", 2)),
        ("TCP throughput, across nodes", lambda f: f["throughput_gbps across nodes"].text("Gbit/s", 2)),
        ("ping latency, same node", lambda f: f["latency_ms same node"].text("ms", 3)),
        ("ping latency, across nodes", lambda f: f["latency_ms across nodes"].text("ms", 3)),
        ("an 84-byte ping on the wire", lambda f: _wire(f["wire_bytes"])),
        ("path MTU (largest DF packet)", lambda f: f["path_mtu"].text("B", 0)),
        ("TTL of replies across nodes", lambda f: f["ttl"].text("", 0)),
        ("hops that took one off the TTL", lambda f: _hops(f["ttl"])),
    ]
    head = "| | " + " | ".join(f"`{r.mode}`" for r in ran) + " |"
    lines = [head, "|---" * (len(ran) + 1) + "|"]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(figures[r.mode]) for r in ran) + " |")
    lines.append("| routes per node (by origin) | " + " | ".join(_route_cell(_routes(r)) for r in ran) + " |")
    if any(_routes(r, routers=True) for r in ran):
        cells = " | ".join(_route_cell(_routes(r, routers=True)) for r in ran)
        lines.append(f"| routes per router | {cells} |")
    return "\n".join(lines)


MEANING = """\
What the numbers mean, and what they do not:

- Every lab ran on this one machine ({cpus} cores, kernel {kernel}), one after the other, with
  the same nodes, pods and tools: the differences between the columns are the modes'. The
  machine is small and its underlay is veth pairs on a Linux bridge, not a wire: the ratios
  between modes carry over to other machines, the absolute numbers do not.
- Throughput is one TCP stream (iperf3) from pod-a; on one node it never leaves the host, so it
  shows what the mode costs in the host's own datapath. Latency is the median round trip of each
  ping run. A figure reads `median (lowest..highest, n=samples)`.
- "On the wire" is one cross-node echo request as pod-a's node sends it on eth0, Ethernet header
  included: 98 bytes natively, 50 more with VXLAN or Geneve (outer IPv4, UDP, tunnel header and
  the inner Ethernet header).
- Hops count the routers that took one off the TTL on the way back (Linux starts at 64).
- Routes are the main table's, grouped by where they come from (compare/parsers.py says how each
  is told apart); per node, averaged over the nodes.
"""


def markdown(results: Sequence[ModeResult], settings: dict[str, Any], machine: dict[str, Any]) -> str:
    parts = [
        "# Routing modes side by side",
        "",
        f"`make compare`: {settings['rounds']} round(s) per mode, {settings['samples']} sample(s) of "
        f"each measurement per round (iperf3 {settings['iperf_seconds']} s, ping {settings['pings']} "
        "packets).",
        "",
        table(results),
        "",
    ]
    parts += [f"![{name}]({name})" for name in CHARTS] + [""]
    parts.append(MEANING.format(cpus=machine["cpus"], kernel=machine["kernel"]))
    turns = [(r.mode, t) for r in results for t in r.turns]
    if turns:
        parts += ["## How long each lab's turn took", "", "| mode | round | make up | measure | tear down |"]
        parts.append("|---|---:|---:|---:|---:|")
        for mode, took in turns:
            cells = [f"{took[k]:.0f} s" if k in took else "-" for k in ("make up", "measure", "tear down")]
            parts.append(f"| `{mode}` | {int(took['round'])} | " + " | ".join(cells) + " |")
        parts.append("")
    skipped = [r for r in results if r.skipped]
    failed = [r for r in results if r.failures]
    if skipped or failed:
        parts.append("## Not measured")
        parts.append("")
        parts += [f"- `{r.mode}`: skipped, {r.skipped}" for r in skipped]
        parts += [f"- `{r.mode}`: {f}" for r in failed for f in r.failures]
        parts.append("")
    return "\n".join(parts)


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 (only the report needs it)

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _spread(figs: Sequence[Figure]) -> tuple[list[float], list[list[float]]]:
    """Medians and the asymmetric error bars (down to the lowest, up to the highest sample)."""
    medians = [f.median if f.known else 0.0 for f in figs]
    errors = [
        [f.median - f.low if f.known else 0.0 for f in figs],
        [f.high - f.median if f.known else 0.0 for f in figs],
    ]
    return medians, errors


def _save(fig: Any, ax: Any, path: Path, title: str, ylabel: str) -> Path:
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _paths_chart(
    modes: list[str], figures: list[dict[str, Figure]], key: str, path: Path, title: str, unit: str
) -> Path:
    """Bars per mode, one per path (same node, across nodes), with their spread."""
    fig, ax = _pyplot().subplots(figsize=(8, 4.5))
    width = 0.38
    for i, where in enumerate(PATHS):
        medians, errors = _spread([f[f"{key} {where}"] for f in figures])
        xs = [x + (i - 0.5) * width for x in range(len(modes))]
        ax.bar(xs, medians, width, yerr=errors, capsize=4, label=where)
    ax.set_xticks(range(len(modes)), modes)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, ax, path, title, f"{unit} (median; bars: lowest..highest)")


def _wire_chart(modes: list[str], figures: list[dict[str, Figure]], path: Path) -> Path:
    """The frame stacked: the pod's packet, the Ethernet header, what encapsulation adds."""
    fig, ax = _pyplot().subplots(figsize=(8, 4.5))
    wire = [int(f["wire_bytes"].median) if f["wire_bytes"].known else 0 for f in figures]
    packet = [ICMP_IP_BYTES if w else 0 for w in wire]
    ethernet = [ETHERNET_BYTES if w else 0 for w in wire]
    tunnel = [max(w - ICMP_IP_BYTES - ETHERNET_BYTES, 0) for w in wire]
    ax.bar(modes, packet, label="the pod's packet (IPv4 + ICMP + 56 B)")
    ax.bar(modes, ethernet, bottom=packet, label="Ethernet header")
    ax.bar(
        modes, tunnel, bottom=[p + e for p, e in zip(packet, ethernet, strict=True)], label="encapsulation"
    )
    for x, w in enumerate(wire):
        ax.annotate(f"{w} B" if w else "n/a", (x, w), ha="center", va="bottom")
    ax.set_ylim(0, max([*wire, 1]) * 1.45)  # room above the bars for the legend
    ax.legend(loc="upper right")
    return _save(fig, ax, path, "one cross-node echo request on the wire", "bytes per frame on eth0")


def _up_chart(modes: list[str], figures: list[dict[str, Figure]], path: Path) -> Path:
    fig, ax = _pyplot().subplots(figsize=(8, 4.5))
    medians, errors = _spread([f["up_seconds"] for f in figures])
    ax.bar(modes, medians, yerr=errors, capsize=4)
    ax.grid(axis="y", alpha=0.3)
    return _save(
        fig, ax, path, "make up to verified (every check passed)", "seconds (median; bars: lowest..highest)"
    )


def charts(results: Sequence[ModeResult], out: Path) -> list[Path]:
    """The four PNGs of CHARTS, for the modes that ran."""
    ran = [r for r in results if not r.skipped and r.rounds]
    modes = [r.mode for r in ran]
    figures = [_figures(r) for r in ran]
    return [
        _paths_chart(
            modes, figures, "throughput_gbps", out / CHARTS[0], "TCP throughput, pod to pod", "Gbit/s"
        ),
        _paths_chart(modes, figures, "latency_ms", out / CHARTS[1], "ping round trip, pod to pod", "ms"),
        _wire_chart(modes, figures, out / CHARTS[2]),
        _up_chart(modes, figures, out / CHARTS[3]),
    ]


def write(
    results: Sequence[ModeResult], settings: dict[str, Any], out: Path, machine: dict[str, Any] | None = None
) -> Path:
    """compare.json, the charts and report.md in `out`; returns report.md's path."""
    out.mkdir(parents=True, exist_ok=True)
    data = as_json(results, settings, machine)
    (out / "compare.json").write_text(json.dumps(data, indent=1) + "\n")
    charts(results, out)
    report = out / "report.md"
    report.write_text(markdown(results, settings, data["machine"]))
    return report
