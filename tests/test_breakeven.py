"""Break-even analysis on synthetic frames with known answers, and the
advise command's input checks."""
from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from lazybench import _advise as advise
from lazybench import _breakeven as be

FRACTIONS = (0.01, 0.1, 0.5, 1.0)


def grid(totals: dict[str, object], spins=(100,), n: int = 1000,
         workload: str = "random") -> pd.DataFrame:
    """A cost sweep's rows: totals[variant](fraction, spin) -> total ns;
    eager's build is its total at the smallest fraction."""
    rows = []
    for spin in spins:
        for f in FRACTIONS:
            for variant, fn in totals.items():
                total = float(fn(f, spin))  # type: ignore[operator]
                build = float(totals["eager"](min(FRACTIONS), spin)) \
                    if variant == "eager" else 1.0   # type: ignore
                rows.append({
                    "name": f"cost/{variant}/spin{spin}/{workload}/{f}",
                    "sweep": "cost", "level": "c", "variant": variant,
                    "generator": "spin", "spin": spin, "workload": workload,
                    "fraction": f, "n": n, "build_ns": build,
                    "total_ns": total})
    return pd.DataFrame(rows)


def test_crossing_interpolates_linearly_in_fraction() -> None:
    # lazy 100 + 3000 f against eager 1000: equal at f = 0.3 exactly
    lazy = [100 + 3000 * f for f in FRACTIONS]
    cx = be.crossing(FRACTIONS, lazy, [1000.0] * 4, ["a", "b", "c", "d"])
    assert cx.verdict == "below"
    assert cx.fraction == pytest.approx(0.3)
    assert (cx.below_case, cx.above_case) == ("b", "c")
    assert cx.crossings == 1


@pytest.mark.parametrize("lazy,verdict", [
    ([1.0, 2.0, 3.0, 4.0], "always"),        # lazy always wins
    ([2000.0, 3000.0, 4000.0, 5000.0], "never"),   # never wins
])
def test_crossing_without_a_crossover(lazy: list[float],
                                      verdict: str) -> None:
    cx = be.crossing(FRACTIONS, lazy, [1000.0] * 4)
    assert cx.verdict == verdict
    assert math.isnan(cx.fraction)
    assert cx.crossings == 0


def test_crossing_the_other_way_and_twice() -> None:
    cx = be.crossing(FRACTIONS, [2000, 500, 500, 2000], [1000.0] * 4)
    assert cx.verdict == "above"
    assert cx.crossings == 2
    assert FRACTIONS[0] < cx.fraction < FRACTIONS[1]


def test_breakeven_frame_known_answers() -> None:
    df = grid({"eager": lambda f, s: 1000 * s / 100,
               "lazy-linear": lambda f, s: 100 + 3000 * f * s / 100,
               "lazy-cheap": lambda f, s: 1.0,
               "lazy-dear": lambda f, s: 1e6}, spins=(100, 200))
    out = be.breakeven_frame(df)
    assert len(out) == 2 * 3
    lin = out[out.variant == "lazy-linear"].sort_values("spin")
    # lazy must be cheaper by the margin: 100 + 3000 f = 1000 (1 - m); at
    # spin 200 both scale by 2 except the constant
    m = be.MARGIN
    assert list(lin.break_even_fraction) == pytest.approx(
        [(1000 * (1 - m) - 100) / 3000, (2000 * (1 - m) - 100) / 6000])
    assert set(out[out.variant == "lazy-cheap"].verdict) == {"always"}
    assert set(out[out.variant == "lazy-dear"].verdict) == {"never"}
    cheap = be.cheapest_frame(df)
    assert set(cheap.cheapest) == {"lazy-cheap"}
    assert len(cheap) == 2 * len(FRACTIONS)


def test_estimate_reads_grid_points_and_refuses_outside() -> None:
    df = grid({"eager": lambda f, s: 1000.0 * s,
               "lazy": lambda f, s: 5000.0 * f * s}, spins=(100, 1000))
    levels = be.cost_levels(df)
    cost = float(levels.cost_ns.iloc[0])
    est = be.estimate(df, "random", 0.1, cost)
    assert est is not None
    assert est.totals["lazy"] == pytest.approx(5000 * 0.1 * 100 / 1000)
    assert est.totals["eager"] == pytest.approx(1000 * 100 / 1000)
    # halfway (log) between the two costs: the geometric mean of totals
    mid = math.sqrt(cost * float(levels.cost_ns.iloc[1]))
    est = be.estimate(df, "random", 0.1, mid)
    assert est is not None
    assert est.totals["eager"] == pytest.approx(
        math.sqrt(100 * 1000) * 1000 / 1000)
    assert be.estimate(df, "random", 0.001, cost) is None   # below grid
    assert be.estimate(df, "random", 0.1, cost / 10) is None
    assert be.estimate(df, "seq", 0.1, cost) is None


@pytest.mark.parametrize("args,message", [
    (["--touched", "150%", "--cost", "2us"], "at most 100 %"),
    (["--touched", "0%", "--cost", "2us"], "above 0 %"),
    (["--touched", "5%", "--cost", "2us", "--pattern", "zigzag"],
     "unknown access pattern"),
    (["--touched", "5%", "--cost", "2 lightyears"], "--cost"),
])
def test_advise_bad_input_exits_2_with_one_line(args: list[str],
                                                message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "lazybench", "advise",
                           *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("text,ns", [("2us", 2000.0), ("500ns", 500.0),
                                     ("1.5ms", 1.5e6), ("0", 0.0)])
def test_cost_units(text: str, ns: float) -> None:
    assert advise.parse_cost(text) == pytest.approx(ns)


def test_margin_makes_a_tie_no_win() -> None:
    # 2 % cheaper everywhere: a win without margin, none with 5 %
    lazy = [980.0] * 4
    assert be.crossing(FRACTIONS, lazy, [1000.0] * 4).verdict == "always"
    assert be.crossing(FRACTIONS, lazy, [1000.0] * 4,
                       margin=0.05).verdict == "never"
    # 10 % cheaper at the low end, tied at the top: below, where lazy is
    # 5 % cheaper
    cx = be.crossing([0.1, 1.0], [900.0, 1000.0], [1000.0] * 2, margin=0.05)
    assert cx.verdict == "below"
    assert cx.fraction == pytest.approx(0.1 + 0.5 * 0.9)
