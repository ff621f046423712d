"""Turn the measurements of one run into table rows: ratios, targets, met or not met.

Ratios are always "slower time / faster time" read left to right as named:
numpy/graphc is graphc's speedup over numpy (> 1: graphc is faster), torch/graphc
the same against torch, and graphc/limit how far graphc is from the physical limit
(1.0: at the limit). The targets are those of the performance issue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# workload -> (unit, seconds per unit)
UNITS = {
    "W1": ("ms", 1e-3),
    "W2": ("ms", 1e-3),
    "W3 b256": ("ms", 1e-3),
    "W3 b1": ("µs", 1e-6),
    "W4": ("µs", 1e-6),
    "W5 cold": ("s", 1.0),
    "W5 warm": ("s", 1.0),
    "W6": ("ms", 1e-3),
}
ROW_ORDER = tuple(UNITS)


@dataclass(frozen=True)
class Target:
    """A goal for one row: its text, and a test of (graphc s, numpy s, limit s) -> bool."""

    text: str
    test: Callable[[float | None, float | None, float | None], bool | None]


def _speedup_and_limit(speedup: float, limit_factor: float) -> Target:
    def test(graphc: float | None, numpy: float | None, limit: float | None) -> bool | None:
        if graphc is None or numpy is None or limit is None:
            return None
        return numpy / graphc >= speedup and graphc / limit <= limit_factor

    return Target(f"≥{speedup:g}x numpy, ≤{limit_factor:g}x limit", test)


def _speedup(speedup: float) -> Target:
    def test(graphc: float | None, numpy: float | None, limit: float | None) -> bool | None:
        return None if graphc is None or numpy is None else numpy / graphc >= speedup

    return Target(f"≥{speedup:g}x numpy", test)


def _near_limit(limit_factor: float) -> Target:
    def test(graphc: float | None, numpy: float | None, limit: float | None) -> bool | None:
        return None if graphc is None or limit is None else graphc / limit <= limit_factor

    return Target(f"≤{limit_factor:g}x GEMMs alone", test)


def _at_most(seconds: float, unit: str, scale: float) -> Target:
    def test(graphc: float | None, numpy: float | None, limit: float | None) -> bool | None:
        return None if graphc is None else graphc <= seconds

    return Target(f"≤{seconds / scale:g} {unit}", test)


def target(workload: str, threads: int) -> Target | None:
    """The issue's target for a row; thread counts above 2 are held to the 2-thread one."""
    parallel = threads >= 2
    targets = {
        "W1": _speedup_and_limit(9 if parallel else 6, 2),
        "W2": _near_limit(1.2),
        "W3 b256": _near_limit(1.2),
        "W3 b1": _at_most(25e-6, "µs", 1e-6),
        "W4": _at_most(1.5e-6, "µs", 1e-6),
        "W5 cold": _at_most(3.0, "s", 1.0),
        "W5 warm": _at_most(0.6, "s", 1.0),
        "W6": _speedup(14 if parallel else 8),
    }
    return targets.get(workload)


@dataclass(frozen=True)
class Row:
    """One line of the table. Times are seconds or None; `notes` holds errors."""

    workload: str
    threads: int
    unit: str
    graphc: float | None
    numpy: float | None
    torch: float | None
    limit: float | None
    limit_how: str | None
    numpy_over_graphc: float | None
    torch_over_graphc: float | None
    graphc_over_limit: float | None
    target: str
    met: bool | None
    errors: dict[str, str]
    other_load: float | None  # the largest share of the CPUs other processes took meanwhile

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def make_row(workload: str, threads: int, cells: dict[str, dict[str, Any] | None]) -> Row:
    """`cells` maps graphc/numpy/torch/limits to that system's result (or None)."""
    seconds: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for system, result in cells.items():
        seconds[system] = None if result is None else result.get("seconds")
        if result is not None and "error" in result:
            errors[system] = result["error"]
    loads = [r["other_load"] for r in cells.values() if r and r.get("other_load") is not None]
    goal = target(workload, threads)
    graphc, numpy, limit = seconds.get("graphc"), seconds.get("numpy"), seconds.get("limits")
    limits_result = cells.get("limits") or {}
    return Row(
        workload=workload,
        threads=threads,
        unit=UNITS[workload][0],
        graphc=graphc,
        numpy=numpy,
        torch=seconds.get("torch"),
        limit=limit,
        limit_how=limits_result.get("how"),
        numpy_over_graphc=_ratio(numpy, graphc),
        torch_over_graphc=_ratio(seconds.get("torch"), graphc),
        graphc_over_limit=_ratio(graphc, limit),
        target=goal.text if goal else "",
        met=goal.test(graphc, numpy, limit) if goal else None,
        errors=errors,
        other_load=max(loads, default=None),
    )


# --- the text table ---------------------------------------------------------------------

HEADERS = (
    "workload",
    "thr",
    "unit",
    "graphc",
    "numpy",
    "torch",
    "limit",
    "numpy/graphc",
    "torch/graphc",
    "graphc/limit",
    "target",
    "met",
    "others",
)


def _time_cell(row: Row, system: str, value: float | None, torch_note: str | None) -> str:
    if value is not None:
        scaled = value / UNITS[row.workload][1]
        return f"{scaled:.3g}" if scaled < 100 else f"{scaled:.0f}"
    if system == "torch" and torch_note:
        return torch_note
    if system in row.errors:
        return "WRONG" if row.errors[system].startswith("wrong result") else "ERROR"
    return "-"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met_cell(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "-"}[met]


def format_table(rows: list[Row], torch_note: str | None) -> str:
    """A fixed-width text table; `torch_note` fills the torch column when torch is absent."""
    lines = []
    for row in rows:
        lines.append(
            (
                row.workload,
                str(row.threads),
                row.unit,
                _time_cell(row, "graphc", row.graphc, None),
                _time_cell(row, "numpy", row.numpy, None),
                _time_cell(row, "torch", row.torch, torch_note),
                _time_cell(row, "limits", row.limit, None),
                _ratio_cell(row.numpy_over_graphc),
                _ratio_cell(row.torch_over_graphc),
                _ratio_cell(row.graphc_over_limit),
                row.target,
                _met_cell(row.met),
                "-" if row.other_load is None else f"{row.other_load:.0%}",
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(HEADERS)]
    numeric = {*range(3, 10), 12}

    def render(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([render(HEADERS), rule, *(render(line) for line in lines)])
