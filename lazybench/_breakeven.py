"""When does laziness pay: break-even points on the cost sweep's grid
(generator cost x touched fraction), and the cheapest mechanism at a point
of it.

A case's total cost is what a user pays for one array: building it
(creating it, and for eager computing every element) plus one pass of the
workload (results.csv ``total_ns`` = ``build_ns`` + the pass's median).
A lazy variant beats eager at a grid point when its total is smaller than
eager's on the same array (same generator, size and workload) by more than
MARGIN of eager's.  Between two
touched fractions of one cost the difference of the totals is taken as
linear in the fraction (both totals grow about linearly with the elements
touched), which gives the break-even fraction; it is never extrapolated
beyond the grid.  A generator's cost per element is eager's build time per
element at that generator: computing and writing one element.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import pandas as pd

from lazybench import _format as fmt
from lazybench._case import Case

BASE = "eager"
# A lazy variant beats eager only by more than this fraction of eager's
# total: where both compute about everything (100 % touched) their totals
# differ by the spread between processes alone (a build is timed in the
# managing process, a pass in a pyperf worker): up to 10 % seen on a
# 2-vCPU VM (README, "The sweeps").
MARGIN = 0.10
SHAPE = ["workload", "generator", "spin", "n"]    # one array, one cost


def _cost_rows(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty or "sweep" not in df:
        return df.iloc[0:0]
    return df[(df.sweep == "cost") & (df.level == "c")]


def label(generator: str, spin: int) -> str:
    """A generator as case names give it (lazybench._case.Case)."""
    return Case("eager", generator, "seq", 1.0, 1, spin).generator_label


def cost_levels(df: pd.DataFrame) -> pd.DataFrame:
    """One row per generator cost of the cost sweep: workload, generator,
    spin, n, and ``cost_ns`` (eager's build_ns / n), with the eager case
    it comes from (``cost_case``), in order of cost."""
    rows = []
    cost = _cost_rows(df)
    for key, grp in cost[cost.variant == BASE].groupby(SHAPE, sort=False):
        first = grp.sort_values("fraction").iloc[0]
        rows.append({**dict(zip(SHAPE, key)),
                     "label": label(key[1], int(key[2])),
                     "cost_ns": first.build_ns / first.n,
                     "cost_case": first["name"]})
    out = pd.DataFrame(rows, columns=SHAPE + ["label", "cost_ns",
                                              "cost_case"])
    return out.sort_values(["workload", "cost_ns"]).reset_index(drop=True)


def _rows_of(cost: pd.DataFrame, level: pd.Series) -> pd.DataFrame:
    """The cost sweep's rows of one cost level (a row of
    :func:`cost_levels`): every variant on that one array."""
    return cost[(cost.workload == level.workload) &
                (cost.generator == level.generator) &
                (cost.spin == level.spin) & (cost.n == level.n)]


@dataclasses.dataclass(frozen=True)
class Crossing:
    """Where one lazy variant's total crosses eager's at one cost."""
    verdict: str            # "below", "above", "always", "never"
    fraction: float         # the break-even fraction (NaN: always, never)
    below_case: str         # the grid cases it lies between ("" if none)
    above_case: str
    crossings: int          # sign changes over the grid's fractions


def crossing(fractions: Sequence[float], lazy: Sequence[float],
             eager: Sequence[float], names: Sequence[str] = (),
             margin: float = 0.0) -> Crossing:
    """The break-even of totals `lazy` and `eager` at increasing
    `fractions` (NaN totals are left out), lazy counting as cheaper only
    when below eager's by more than `margin` (a fraction of eager's).
    "below": lazy is cheaper below the fraction, not above (the first such
    change); "above": the reverse; "always"/"never": cheaper at every / no
    fraction measured."""
    pts = [(f, a - b * (1 - margin), names[i] if names else "")
           for i, (f, a, b) in enumerate(zip(fractions, lazy, eager))
           if not (math.isnan(a) or math.isnan(b))]
    pts.sort()
    if not pts:
        return Crossing("never", math.nan, "", "", 0)
    wins = [d < 0 for _, d, _ in pts]
    changes = sum(1 for a, b in zip(wins, wins[1:]) if a != b)
    if all(wins):
        return Crossing("always", math.nan, "", "", 0)
    if not any(wins):
        return Crossing("never", math.nan, "", "", 0)
    i = next(k for k in range(len(pts) - 1) if wins[k] != wins[k + 1])
    (f0, d0, n0), (f1, d1, n1) = pts[i], pts[i + 1]
    at = f0 + d0 / (d0 - d1) * (f1 - f0)
    return Crossing("below" if wins[i] else "above", at, n0, n1, changes)


def breakeven_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (cost level, lazy variant) of the cost sweep: the
    break-even against eager (see :func:`crossing`), with the grid cases
    it lies between."""
    cost = _cost_rows(df)
    levels = cost_levels(df)
    rows = []
    for lvl in levels.itertuples():
        same = _rows_of(cost, lvl)
        eager = same[same.variant == BASE].set_index("fraction")
        for variant, grp in same[same.variant != BASE].groupby(
                "variant", sort=False):
            grp = grp.sort_values("fraction")
            fr = list(grp.fraction)
            cx = crossing(fr, list(grp.total_ns),
                          [float(eager.total_ns.get(f, math.nan))
                           for f in fr], list(grp["name"]), MARGIN)
            rows.append({"workload": lvl.workload,
                         "generator": lvl.generator, "spin": lvl.spin,
                         "n": lvl.n, "cost_ns": lvl.cost_ns,
                         "variant": variant, "verdict": cx.verdict,
                         "break_even_fraction": cx.fraction,
                         "crossings": cx.crossings,
                         "below_case": cx.below_case,
                         "above_case": cx.above_case,
                         "cost_case": lvl.cost_case})
    return pd.DataFrame(rows, columns=[
        "workload", "generator", "spin", "n", "cost_ns", "variant",
        "verdict", "break_even_fraction", "crossings", "below_case",
        "above_case", "cost_case"])


def cheapest_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point of the cost sweep: the variant with the
    smallest total, its case, the runner-up, eager's total over the
    cheapest's, and whether that beats eager by more than MARGIN (else
    the point is a tie with eager within the spread)."""
    cost = _cost_rows(df)
    levels = cost_levels(df)
    rows = []
    for lvl in levels.itertuples():
        same = _rows_of(cost, lvl)
        for f, grp in same.groupby("fraction"):
            ranked = grp.dropna(subset=["total_ns"]).sort_values("total_ns")
            if ranked.empty:
                continue
            best = ranked.iloc[0]
            second = ranked.iloc[1] if len(ranked) > 1 else None
            eager = grp[grp.variant == BASE]
            eager_total = float(eager.total_ns.iloc[0]) if len(eager) \
                else math.nan
            rows.append({
                "workload": lvl.workload, "generator": lvl.generator,
                "spin": lvl.spin, "n": lvl.n, "cost_ns": lvl.cost_ns,
                "fraction": f, "cheapest": best.variant,
                "cheapest_case": best["name"],
                "total_ns": best.total_ns,
                "runner_up": second.variant if second is not None else "",
                "runner_up_over_cheapest":
                    second.total_ns / best.total_ns
                    if second is not None else math.nan,
                "eager_over_cheapest": eager_total / best.total_ns,
                # cheaper than eager by more than the spread (MARGIN)
                "beats_eager": bool(eager_total * (1 - MARGIN)
                                    > best.total_ns)})
    return pd.DataFrame(rows, columns=[
        "workload", "generator", "spin", "n", "cost_ns", "fraction",
        "cheapest", "cheapest_case", "total_ns", "runner_up",
        "runner_up_over_cheapest", "eager_over_cheapest", "beats_eager"])


# -- one point of the grid, for `lazybench advise` -----------------------------

@dataclasses.dataclass(frozen=True)
class Estimate:
    """Each variant's total per array element at one (fraction, cost),
    interpolated from a grid, and where from."""
    totals: dict[str, float]          # variant -> ns per array element
    source: str                       # the grid cells used


def _bracket(values: Sequence[float], x: float) -> tuple[int, int] | None:
    """Indices of the grid values around x (equal if x is one), or None
    outside the grid."""
    if not values or x < values[0] * (1 - 1e-9) or \
            x > values[-1] * (1 + 1e-9):
        return None
    for i, v in enumerate(values):
        if math.isclose(v, x, rel_tol=1e-9):
            return i, i
        if v > x:
            return i - 1, i
    return len(values) - 1, len(values) - 1


def _weight(lo: float, hi: float, x: float) -> float:
    """Where x lies between lo and hi on a log scale (0 at lo)."""
    return 0.0 if lo == hi else \
        (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))


def estimate(df: pd.DataFrame, workload: str, fraction: float,
             cost_ns: float) -> Estimate | None:
    """Every variant's total per array element at (fraction, cost_ns),
    interpolated bilinearly in log fraction x log cost on log totals from
    the cost sweep's grid of `workload`; None if the grid does not hold
    the point (another workload, or outside its fractions or costs)."""
    cost = _cost_rows(df)
    levels = cost_levels(df)
    levels = levels[levels.workload == workload].reset_index(drop=True)
    if levels.empty:
        return None
    costs = list(levels.cost_ns)
    cb = _bracket(costs, cost_ns)
    if cb is None:
        return None
    wc = _weight(costs[cb[0]], costs[cb[1]], cost_ns)
    per_level = []
    for k in cb:
        lvl = levels.iloc[k]
        same = _rows_of(cost, lvl)
        fractions = sorted(set(same.fraction))
        fb = _bracket(fractions, fraction)
        if fb is None:
            return None
        wf = _weight(fractions[fb[0]], fractions[fb[1]], fraction)
        logs: dict[str, float] = {}
        for variant, grp in same.groupby("variant"):
            at = grp.set_index("fraction").total_ns / lvl.n
            lo, hi = at.get(fractions[fb[0]]), at.get(fractions[fb[1]])
            if lo is None or hi is None or not (lo > 0 and hi > 0):
                continue
            logs[variant] = (1 - wf) * math.log(lo) + wf * math.log(hi)
        per_level.append((lvl, fractions[fb[0]], fractions[fb[1]], logs))
    (l0, f00, f01, a), (l1, f10, f11, b) = per_level
    totals = {v: math.exp((1 - wc) * a[v] + wc * b[v])
              for v in a if v in b}
    source = (f"between {_pct(f00)} and {_pct(f01)} touched, "
              f"{fmt.duration_ns(l0.cost_ns)} ({l0.label}, n={l0.n}) and "
              f"{fmt.duration_ns(l1.cost_ns)} ({l1.label}, n={l1.n}) per "
              "element")
    return Estimate(totals, source)


def _pct(f: float) -> str:
    return f"{f * 100:.3g} %"
