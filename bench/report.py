"""Turn the measurements of one run into table rows: ratios, targets, met or not met.

Ratios are one time over another, read left to right as named: numpy/graphc is
graphc's speedup over numpy (> 1: graphc is faster), torch/graphc the same against
torch, graphc/limit how far graphc is from the physical limit (1.0: at the limit), and
graphc/fastest peer graphc's time over the fastest of torch eager, jax.jit and
onnxruntime that ran the row (< 1: graphc is faster). The targets, against numpy and
the limits and against the peers, are those of the performance issue.
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
# the peers, as their time columns are named, and as the tables name them otherwise
PEERS = ("torch", "jax", "ort")
PEER_NAMES = {"torch": "torch", "jax": "jax.jit", "ort": "onnxruntime"}


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
class PeerTarget:
    """A goal against the peers: its text, and a test of (graphc s, {peer: s}) -> bool,
    where the dict holds the peers that ran the row."""

    text: str
    test: Callable[[float | None, dict[str, float]], bool | None]


def _ahead_of(peer: str) -> PeerTarget:
    def test(graphc: float | None, peers: dict[str, float]) -> bool | None:
        return None if graphc is None or peer not in peers else graphc < peers[peer]

    return PeerTarget(f"ahead of {PEER_NAMES[peer]}", test)


def _ahead_of_fastest_peer() -> PeerTarget:
    def test(graphc: float | None, peers: dict[str, float]) -> bool | None:
        return None if graphc is None or not peers else graphc < min(peers.values())

    return PeerTarget("ahead of the fastest peer", test)


def _per_call_at_most(seconds: float, unit: str, scale: float) -> PeerTarget:
    def test(graphc: float | None, peers: dict[str, float]) -> bool | None:
        return None if graphc is None else graphc <= seconds

    return PeerTarget(f"≤{seconds / scale:g} {unit} per call", test)


def peer_target(workload: str) -> PeerTarget | None:
    """The issue's target against the peers for a row (the same at any thread count)."""
    targets = {
        "W1": _ahead_of("jax"),
        "W2": _ahead_of_fastest_peer(),
        "W3 b256": _ahead_of("ort"),
        "W4": _per_call_at_most(0.6e-6, "µs", 1e-6),
        "W6": _ahead_of("ort"),
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
    jax: float | None
    ort: float | None
    limit: float | None
    limit_how: str | None
    numpy_over_graphc: float | None
    torch_over_graphc: float | None
    graphc_over_limit: float | None
    target: str
    met: bool | None
    fastest_peer: str | None  # torch, jax or ort: the fastest of those that ran the row
    fastest_peer_s: float | None
    graphc_over_fastest_peer: float | None
    peer_target: str
    peer_met: bool | None
    errors: dict[str, str]
    not_applicable: dict[str, str]  # system -> why it does not run this row
    other_load: float | None  # the largest share of the CPUs other processes took meanwhile

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def make_row(workload: str, threads: int, cells: dict[str, dict[str, Any] | None]) -> Row:
    """`cells` maps graphc/numpy/torch/jax/ort/limits to that system's result (or None)."""
    seconds: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    not_applicable: dict[str, str] = {}
    for system, result in cells.items():
        seconds[system] = None if result is None else result.get("seconds")
        if result is not None and "error" in result:
            errors[system] = result["error"]
        if result is not None and "not_applicable" in result:
            not_applicable[system] = result["not_applicable"]
    loads = [r["other_load"] for r in cells.values() if r and r.get("other_load") is not None]
    goal = target(workload, threads)
    graphc, numpy, limit = seconds.get("graphc"), seconds.get("numpy"), seconds.get("limits")
    limits_result = cells.get("limits") or {}
    ran = {peer: value for peer in PEERS if (value := seconds.get(peer)) is not None}
    fastest = min(ran, key=ran.__getitem__, default=None)
    fastest_s = None if fastest is None else ran[fastest]
    peer_goal = peer_target(workload)
    return Row(
        workload=workload,
        threads=threads,
        unit=UNITS[workload][0],
        graphc=graphc,
        numpy=numpy,
        torch=seconds.get("torch"),
        jax=seconds.get("jax"),
        ort=seconds.get("ort"),
        limit=limit,
        limit_how=limits_result.get("how"),
        numpy_over_graphc=_ratio(numpy, graphc),
        torch_over_graphc=_ratio(seconds.get("torch"), graphc),
        graphc_over_limit=_ratio(graphc, limit),
        target=goal.text if goal else "",
        met=goal.test(graphc, numpy, limit) if goal else None,
        fastest_peer=fastest,
        fastest_peer_s=fastest_s,
        graphc_over_fastest_peer=_ratio(graphc, fastest_s),
        peer_target=peer_goal.text if peer_goal else "",
        peer_met=peer_goal.test(graphc, ran) if peer_goal else None,
        errors=errors,
        not_applicable=not_applicable,
        other_load=max(loads, default=None),
    )


# --- the text table ---------------------------------------------------------------------

# The main table: every system's time, the ratios against numpy, torch and the limit,
# and the targets against numpy and the limits.
HEADERS = (
    "workload",
    "thr",
    "unit",
    "graphc",
    "numpy",
    "torch",
    "jax",
    "ort",
    "limit",
    "numpy/graphc",
    "torch/graphc",
    "graphc/limit",
    "target",
    "met",
    "others",
)
# The peers' table: graphc against the fastest peer, and the targets against the peers.
PEER_HEADERS = (
    "workload",
    "thr",
    "unit",
    "graphc",
    "fastest peer",
    "its time",
    "graphc/fastest peer",
    "peer target",
    "met",
)
LEFT_ALIGNED = {"workload", "thr", "unit", "target", "peer target", "met", "fastest peer"}


def _time_cell(row: Row, system: str, value: float | None, missing: dict[str, str]) -> str:
    if value is not None:
        scaled = value / UNITS[row.workload][1]
        return f"{scaled:.3g}" if scaled < 100 else f"{scaled:.0f}"
    if system in missing:
        return missing[system]
    if system in row.errors:
        return "WRONG" if row.errors[system].startswith("wrong result") else "ERROR"
    if system in row.not_applicable:
        return "n/a"
    return "-"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met_cell(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "-"}[met]


def _render(headers: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]

    def render(cells: tuple[str, ...]) -> str:
        parts = [
            c.ljust(w) if h in LEFT_ALIGNED else c.rjust(w)
            for h, c, w in zip(headers, cells, widths, strict=True)
        ]
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([render(headers), rule, *(render(line) for line in lines)])


def format_table(rows: list[Row], missing: dict[str, str]) -> str:
    """The main fixed-width text table; `missing` maps a system that could not be
    imported (torch, jax, ort) to the text of its column ("not installed")."""
    lines = [
        (
            row.workload,
            str(row.threads),
            row.unit,
            _time_cell(row, "graphc", row.graphc, {}),
            _time_cell(row, "numpy", row.numpy, {}),
            _time_cell(row, "torch", row.torch, missing),
            _time_cell(row, "jax", row.jax, missing),
            _time_cell(row, "ort", row.ort, missing),
            _time_cell(row, "limits", row.limit, {}),
            _ratio_cell(row.numpy_over_graphc),
            _ratio_cell(row.torch_over_graphc),
            _ratio_cell(row.graphc_over_limit),
            row.target,
            _met_cell(row.met),
            "-" if row.other_load is None else f"{row.other_load:.0%}",
        )
        for row in rows
    ]
    return _render(HEADERS, lines)


def format_peer_table(rows: list[Row]) -> str:
    """The table of graphc against the fastest peer that ran each row, with the targets
    against the peers."""
    lines = [
        (
            row.workload,
            str(row.threads),
            row.unit,
            _time_cell(row, "graphc", row.graphc, {}),
            "-" if row.fastest_peer is None else PEER_NAMES[row.fastest_peer],
            _time_cell(row, "fastest", row.fastest_peer_s, {}),
            _ratio_cell(row.graphc_over_fastest_peer),
            row.peer_target,
            _met_cell(row.peer_met),
        )
        for row in rows
    ]
    return _render(PEER_HEADERS, lines)
