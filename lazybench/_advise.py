"""``python -m lazybench advise``: the cheapest mechanism on this machine
for a touched fraction, a generator cost per element and an access
pattern, and by how much.

It reads the newest stored run of this machine (same CPU model, CPU
count, kernel) whose cost sweep (``--suite cost`` or ``full``) holds the
point, interpolating its grid
(:func:`lazybench._breakeven.estimate`); when none does, it measures the
point itself: every variant of the cost sweep built and passed over a few
times in this process (no pyperf), its checksum checked against values
computed from the generator.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re

from lazybench import _array as core
from lazybench import _breakeven as breakeven
from lazybench import _sweeps as sweeps
from lazybench._format import duration_ns, plain_table

import pandas as pd

UNITS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
# the short run: each pass timed over loops lasting about this long
SHORT_PASS_NS = 20_000_000
SHORT_REPEATS = 3


class AdviceError(ValueError):
    """Bad input to advise: one line."""


def parse_touched(text: str) -> float:
    """'5%' or '5' (percent) -> 0.05; in (0, 100] %."""
    try:
        pct = float(text.strip().rstrip("%"))
    except ValueError:
        raise AdviceError(f"--touched {text!r}: not a percentage") from None
    if not 0 < pct <= 100:
        raise AdviceError(f"--touched {text!r}: a touched fraction must be "
                          "above 0 % and at most 100 %")
    return pct / 100


def parse_cost(text: str) -> float:
    """'2us', '500ns', '1.5ms', '0' -> nanoseconds per element."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*([a-zµ]*)\s*",
                     text)
    if not m:
        raise AdviceError(f"--cost {text!r}: not a time (e.g. 2us, 500ns)")
    value, unit = float(m.group(1)), m.group(2)
    if not unit and value == 0:
        return 0.0
    if unit not in UNITS:
        raise AdviceError(f"--cost {text!r}: unknown unit {unit or 'none'!r}"
                          f" (choose from {', '.join(UNITS)})")
    ns = value * UNITS[unit]
    if ns > 1e9:
        raise AdviceError(f"--cost {text!r}: more than 1 s per element")
    return ns


def parse_pattern(text: str) -> str:
    if text not in core.WORKLOADS:
        raise AdviceError(f"--pattern {text!r}: unknown access pattern "
                          f"(choose from {', '.join(core.WORKLOADS)})")
    return text


@dataclasses.dataclass(frozen=True)
class Advice:
    totals: dict[str, float]      # variant -> ns per array element
    source: str                   # where the figures come from


# A stored run is of this machine when these facts agree.
SAME_MACHINE = ("cpu_model", "cpu_count", "kernel", "machine")


def this_machine() -> dict[str, object]:
    import os
    import platform

    from lazybench import _machine as machine

    return {"cpu_model": machine.cpuinfo().get("model name"),
            "cpu_count": os.cpu_count(), "kernel": platform.release(),
            "machine": platform.machine()}


def _stored_runs(results_dir: pathlib.Path) -> list[pathlib.Path]:
    """Run folders with a cost sweep taken on this machine (SAME_MACHINE),
    newest first (by run.json's creation time); unreadable ones are
    passed over."""
    found = []
    if not results_dir.is_dir():
        return []
    here = this_machine()
    for folder in results_dir.iterdir():
        meta_file = folder / "run.json"
        try:
            meta = json.loads(meta_file.read_text())
            has = any(rec.get("case", {}).get("sweep") == "cost"
                      for rec in meta.get("cases", []))
            there = meta.get("machine", {})
            same = all(there.get(k) == v for k, v in here.items())
        except (OSError, ValueError, AttributeError):
            continue
        if has and same:
            found.append((str(meta.get("created", "")), folder))
    return [f for _, f in sorted(found, reverse=True)]


def from_stored(results_dir: pathlib.Path, workload: str, fraction: float,
                cost_ns: float) -> Advice | None:
    from lazybench import _results as results
    from lazybench._frames import Frames

    for folder in _stored_runs(results_dir):
        try:
            fr = Frames.of(results.load_run(folder))
        except (results.ResultsError, ValueError):
            continue
        est = breakeven.estimate(fr.sweeps, workload, fraction, cost_ns)
        if est is not None and est.totals:
            return Advice(est.totals, f"stored run {folder} (cost sweep, "
                          f"{fr.run.meta.get('created', '')}): interpolated "
                          f"{est.source}")
    return None


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2]


def ns_per_round() -> float:
    """spin's cost per round and element here: eager builds of spin 1000
    against spin 0, on 8 pages."""
    n = 8 * core.PAGE_ELEMENTS
    slow = _median([core.build_ns("eager", n, "spin", 1000)
                    for _ in range(3)])
    fast = _median([core.build_ns("eager", n, "spin", 0) for _ in range(3)])
    return max(slow - fast, 1) / n / 1000


def measure(workload: str, fraction: float, cost_ns: float) -> Advice:
    """Every cost-sweep variant at the point, measured now: the median of
    builds, the best of SHORT_REPEATS mean passes, each pass on a fresh
    array, the checksum checked."""
    hash_ns = _median([core.build_ns("eager", sweeps.COST_N, "hash")
                       for _ in range(3)]) / sweeps.COST_N
    if cost_ns <= hash_ns:
        generator, spin = "hash", 100
    else:
        generator = "spin"
        spin = min(core.MAX_SPIN, max(1, round(cost_ns / ns_per_round())))
    n = sweeps.cost_n(generator, spin)
    expected = core.expected_checksum(n, generator, workload, fraction, spin)
    totals: dict[str, float] = {}
    for variant in sweeps.COST_VARIANTS:
        if not core.availability(variant).available or \
                not core.supports(variant, generator).available:
            continue
        build = _median([core.build_ns(variant, n, generator, spin)
                         for _ in range(SHORT_REPEATS)])
        with core.LazyArray(variant, n, generator, spin) as arr:
            first = arr.bench(workload, fraction, 1, 1)
            if first.checksum != expected:
                raise core.LazyBenchError(
                    f"{variant}: checksum {first.checksum:#x} differs from "
                    f"the generator's {expected:#x}")
            loops = max(1, min(1000, SHORT_PASS_NS //
                               max(first.elapsed_ns, 1)))
            best = min(arr.bench(workload, fraction, 1, loops).elapsed_ns
                       / loops for _ in range(SHORT_REPEATS))
        totals[variant] = (build + best) / n
    label = generator if generator == "hash" else f"spin{spin}"
    return Advice(totals, f"measured now (no stored cost sweep holds the "
                  f"point): {label}, {n} elements, median of "
                  f"{SHORT_REPEATS} builds plus the best of {SHORT_REPEATS}"
                  " mean passes, each on a fresh array")


def advise(results_dir: pathlib.Path, touched: str, cost: str,
           pattern: str) -> str:
    fraction, cost_ns = parse_touched(touched), parse_cost(cost)
    workload = parse_pattern(pattern)
    advice = from_stored(results_dir, workload, fraction, cost_ns) or \
        measure(workload, fraction, cost_ns)
    return render(advice, fraction, cost_ns, workload)


def render(advice: Advice, fraction: float, cost_ns: float,
           workload: str) -> str:
    ranked = sorted(advice.totals.items(), key=lambda kv: kv[1])
    best, best_ns = ranked[0]
    lines = [f"{fraction * 100:g} % touched, {duration_ns(cost_ns)} per "
             f"element, {workload} access:"]
    eager = advice.totals.get(breakeven.BASE, math.nan)
    if best == breakeven.BASE:
        head = "cheapest here: eager (compute everything first)"
    else:
        head = (f"cheapest here: {best}, {eager / best_ns:.3g}x cheaper "
                "than eager")
    if len(ranked) > 1:
        nxt, nxt_ns = ranked[1]
        head += f"; the next, {nxt}, costs {nxt_ns / best_ns:.3g}x as much"
    lines.append(head)
    table = pd.DataFrame({
        "variant": [v for v, _ in ranked],
        "ns_per_element": [t for _, t in ranked],
        "x_cheapest": [t / best_ns for _, t in ranked]})
    lines += ["", plain_table(table), "",
              "(total cost of one array, build plus one pass, per element "
              "of the array)", f"from: {advice.source}"]
    return "\n".join(lines)
