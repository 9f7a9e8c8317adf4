"""A figure is several samples of one measurement, reported as their median and spread.

One run of iperf3 or ping on a 2-core machine moves with whatever else the machine does: a
single number would compare the machine's moods, not the modes. Each figure keeps its samples,
so the JSON holds what the report's medians and error bars were drawn from.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """Samples of one measurement of one mode, in the order they were taken."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Figure:
        return cls(tuple(float(s) for s in samples))

    @property
    def known(self) -> bool:
        return bool(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def text(self, unit: str = "", digits: int = 1) -> str:
        """`9.4 Gbit/s (8.9..9.8, n=5)`; one sample has no spread to show; none reads `n/a`."""
        if not self.samples:
            return "n/a"
        suffix = f" {unit}" if unit else ""
        if len(self.samples) == 1:
            return f"{self.median:.{digits}f}{suffix} (n=1)"
        return (
            f"{self.median:.{digits}f}{suffix} ({self.low:.{digits}f}..{self.high:.{digits}f}, "
            f"n={len(self.samples)})"
        )

    def as_json(self) -> dict[str, object]:
        if not self.samples:
            return {"samples": [], "median": None, "low": None, "high": None}
        return {"samples": list(self.samples), "median": self.median, "low": self.low, "high": self.high}
