"""Figures: repeated samples, their median/min/max, a target, and the table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional


@dataclass
class Figure:
    name: str
    unit: str
    target: str = ""  # as printed, e.g. "<= 0.3"
    check: Optional[Callable[[float], bool]] = None  # applied to the median
    samples: List[float] = field(default_factory=list)
    note: str = ""
    missing: str = ""  # why there are no samples (e.g. "n/a (not implemented yet)")
    decimals: int = 2
    p90_within: Optional[float] = None  # the p90 must also be at most this many times the median

    @property
    def p90(self) -> Optional[float]:
        if not self.samples:
            return None
        if len(self.samples) == 1:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=10, method="inclusive")[8]

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.samples) if self.samples else None

    @property
    def verdict(self) -> str:
        if self.check is None:
            return ""
        if self.median is None:
            return "n/a"
        spread_ok = self.p90_within is None or (self.p90 or 0.0) <= self.p90_within * self.median
        return "PASS" if self.check(self.median) and spread_ok else "FAIL"

    def fmt(self, value: Optional[float]) -> str:
        return "-" if value is None else f"{value:,.{self.decimals}f}"

    def row(self) -> List[str]:
        target = self.target + (f"; p90 <= {self.p90_within:g}x median" if self.p90_within else "")
        if not self.samples:
            return [self.name, self.missing or "-", "", "", "", self.unit, target, self.verdict, self.note]
        return [
            self.name,
            self.fmt(self.median),
            self.fmt(min(self.samples)),
            self.fmt(max(self.samples)),
            self.fmt(self.p90),
            self.unit,
            target,
            self.verdict,
            f"n={len(self.samples)}" + (f"; {self.note}" if self.note else ""),
        ]


class Figures(List[Figure]):
    """The figures of one bench run, in the order measured; `add` is the `fig` the
    scenarios are handed."""

    def add(
        self,
        name: str,
        unit: str,
        target: str = "",
        check: Optional[Callable[[float], bool]] = None,
        samples: Optional[Iterable[float]] = None,
        note: str = "",
        missing: str = "",
        decimals: int = 2,
        p90_within: Optional[float] = None,
    ) -> Figure:
        figure = Figure(name, unit, target, check, list(samples or []), note, missing, decimals, p90_within)
        self.append(figure)
        return figure


HEADER = ["figure", "median", "min", "max", "p90", "unit", "target", "result", "notes"]


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def text_table(figures: List[Figure]) -> str:
    rows = [HEADER] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join(cells) + "  " + row[-1])
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  -----")
    return "\n".join(lines)


def markdown_table(figures: List[Figure]) -> str:
    rows = [HEADER, ["---"] * len(HEADER)] + [f.row() for f in figures]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)
