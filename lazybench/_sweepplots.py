"""Plots of the sweeps: break-even curves and the cheapest mechanism over
(generator cost x touched fraction), cost against threads, cost against
array size.  Every point is one row of results.csv, breakeven.csv or
cheapest.csv."""
from __future__ import annotations

import math
import pathlib
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lazybench import _plots as plots  # noqa: E402
from lazybench._case import format_bytes  # noqa: E402
from lazybench._breakeven import BASE, MARGIN  # noqa: E402
from lazybench._format import duration_ns, sig  # noqa: E402

# "always" and "never" drawn this far beyond the grid's fractions
BEYOND = 1.8


def _cost_axis(ax: plt.Axes, levels: pd.DataFrame) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(levels.cost_ns))
    ax.set_xticklabels(_cost_labels(levels), fontsize="small")
    ax.minorticks_off()
    ax.set_xlabel("generator cost per element (eager's build / n)")


def _cost_labels(levels: pd.DataFrame) -> list[str]:
    return [f"{duration_ns(c)}\n{lab}\nn={n}" for c, lab, n in
            zip(levels.cost_ns, levels.label, levels.n)]


def breakeven_figure(be: pd.DataFrame, levels: pd.DataFrame,
                     fractions: list[float], workload: str) -> plt.Figure:
    """Break-even touched fraction against generator cost, a line per lazy
    variant: below its line the variant costs less than eager (build plus
    one pass).  "always" sits above the grid, "never" below it."""
    fig, ax = plt.subplots(figsize=(9.6, 4.8), layout="constrained")
    style = plots.styles(be.variant)
    top, bottom = max(fractions) * BEYOND, min(fractions) / BEYOND
    for variant in plots._order(be):
        line = be[be.variant == variant].sort_values("cost_ns")
        y = [top if v == "always" else bottom if v == "never"
             else f for v, f in zip(line.verdict, line.break_even_fraction)]
        ax.plot(line.cost_ns, [v * 100 for v in y], label=variant,
                markersize=6, linewidth=1.4, **style[variant].kwargs())
    ax.axhline(max(fractions) * 100, color="grey", linewidth=0.8)
    ax.axhline(min(fractions) * 100, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylim(bottom * 100 / 1.3, top * 100 * 1.3)
    ticks = [bottom, *fractions, top]
    ax.set_yticks([f * 100 for f in ticks])
    ax.set_yticklabels(["never", *(f"{f * 100:g} %" for f in fractions),
                        "always"])
    ax.minorticks_off()
    ax.set_ylabel("break-even touched fraction\n(lazy wins below the line)")
    _cost_axis(ax, levels)
    ax.grid(True, alpha=0.3)
    plots._legend(fig, [ax])
    fig.suptitle(f"When laziness pays: total cost (build + one pass) "
                 f"against eager's, {workload} access\n(always: cheaper at "
                 "every fraction measured; never: at none)",
                 fontsize="medium")
    return fig


def cheapest_figure(cheap: pd.DataFrame, levels: pd.DataFrame,
                    workload: str) -> plt.Figure:
    """The cheapest variant at every grid point, coloured by variant, with
    eager's total over its total written in the cell."""
    style = plots.styles(cheap.cheapest)
    fractions = sorted(set(cheap.fraction))
    costs = list(levels.cost_ns)
    fig, ax = plt.subplots(figsize=(9.6, 5.2), layout="constrained")
    seen = {}
    for row in cheap.itertuples():
        x = costs.index(row.cost_ns)
        y = fractions.index(row.fraction)
        tie = row.cheapest != BASE and not row.beats_eager
        eagerish = tie or row.cheapest == BASE
        name = "eager or a tie with it" if eagerish else row.cheapest
        colour = style[BASE if eagerish else row.cheapest].color
        patch = ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1,
                                           facecolor=colour, alpha=0.55,
                                           edgecolor="white"))
        seen.setdefault(name, patch)
        label = "eager" if row.cheapest == BASE else \
            f"{sig(row.eager_over_cheapest, 2)}x"
        if tie:
            label = f"tie\n({row.cheapest}\n{label})"
        ax.text(x, y, label, ha="center", va="center", fontsize="small")
    ax.set_xlim(-0.5, len(costs) - 0.5)
    ax.set_ylim(-0.5, len(fractions) - 0.5)
    ax.set_xticks(range(len(costs)))
    ax.set_xticklabels(_cost_labels(levels), fontsize="small")
    ax.set_yticks(range(len(fractions)))
    ax.set_yticklabels([f"{f * 100:g} %" for f in fractions])
    ax.set_xlabel("generator cost per element (eager's build / n)")
    ax.set_ylabel("touched fraction")
    fig.legend(list(seen.values()), list(seen), loc="outside right upper",
               fontsize="small", title="cheapest")
    fig.suptitle(f"Cheapest mechanism (build + one pass), {workload} "
                 "access\ncells: eager's total over the cheapest's; tie: "
                 f"less than {MARGIN * 100:g} % cheaper than eager",
                 fontsize="medium")
    return fig


def threads_figure(df: pd.DataFrame) -> plt.Figure:
    """ns per touched page (top) and faults per second per thread
    (bottom) against faulting threads, a panel per placement."""
    style = plots.styles(df.variant)
    placements = ["same", "disjoint"]
    fig, axes = plt.subplots(3, 2, figsize=(11.5, 10.5), sharex=True,
                             layout="constrained")
    one = df[df.threads == 1]
    counts = sorted(set(df.threads))
    for col, placement in enumerate(placements):
        sub = pd.concat([one, df[(df.threads > 1) &
                                 (df.placement == placement)]])
        for variant in plots._order(sub):
            line = sub[sub.variant == variant].sort_values("threads")
            kw = style[variant].kwargs()
            axes[0][col].plot(line.threads, line.ns_per_touched_page,
                              label=variant, **kw)
            rate = line.faults / (line.time_s * line.threads)
            axes[1][col].plot(line.threads, rate, label=variant, **kw)
            base = line[line.threads == 1].time_s
            if len(base):
                axes[2][col].plot(line.threads,
                                  float(base.iloc[0]) / line.time_s,
                                  label=variant, **kw)
        axes[2][col].plot(counts, counts, color="grey", linewidth=0.8,
                          linestyle="--", label="ideal (disjoint)")
        what = ("every thread reads the whole array" if placement == "same"
                else "each thread its own slice")
        axes[0][col].set_title(f"{placement}: {what}", fontsize="medium")
        for ax in axes[:2, col]:
            ax.set_yscale("log")
        for ax in axes[:, col]:
            ax.grid(True, which="both", alpha=0.3)
            ax.set_xticks(counts)
        axes[2][col].set_xlabel("faulting threads")
    axes[0][0].set_ylabel("ns per touched page\n(wall time of the pass)")
    axes[1][0].set_ylabel("faults per second per thread")
    axes[2][0].set_ylabel("speedup: 1 thread's time\nover this time")
    plots._legend(fig, list(axes.flat))
    fig.suptitle("Thread scaling: hash, seq, 100 % touched", fontsize="medium")
    return fig


def size_figure(df: pd.DataFrame,
                skipped: list[dict[str, str]] = ()) -> plt.Figure:
    """ns per touched element against the array's size, log-log: the pass
    alone, and the build plus the pass; `skipped` cases (run.json
    "skipped": a size a variant cannot hold) marked where they would be."""
    style = plots.styles(df.variant)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), sharex=True,
                             layout="constrained")
    sizes = sorted(set(df.n * 8))
    for ax, column, title in (
            (axes[0], "ns_per_touched_element", "the pass alone"),
            (axes[1], "total_per_touched", "build + one pass")):
        for variant in plots._order(df):
            line = df[df.variant == variant].sort_values("n")
            y = line.ns_per_touched_element if column != "total_per_touched" \
                else line.total_ns / line.accesses.clip(lower=1)
            ax.plot(line.n * 8, y, label=variant, **style[variant].kwargs())
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([format_bytes(int(s)) for s in sizes])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("array size")
        ax.set_title(title, fontsize="medium")
    for k in skipped:
        size = k["name"].rsplit("/", 1)[-1]
        match = [s for s in sizes if format_bytes(int(s)) == size]
        if match:
            axes[1].annotate(f"{k['variant']}:\ndoes not fit",
                             (match[0], 0.93), xycoords=("data",
                                                         "axes fraction"),
                             ha="center", va="top", fontsize="small",
                             color=style[k["variant"]].color
                             if k["variant"] in style else "black")
    axes[0].set_ylabel("ns per touched element")
    plots._legend(fig, list(axes))
    frac = df.fraction.iloc[0] * 100 if len(df) else math.nan
    fig.suptitle(f"Cost against array size: {frac:g} % of the pages touched "
                 f"at random ({df.workload.iloc[0]})", fontsize="medium")
    return fig


def figures(sweeps: pd.DataFrame, be: pd.DataFrame, cheap: pd.DataFrame,
            levels: pd.DataFrame, skipped: list[dict[str, str]] = ()
            ) -> Iterator[tuple[str, plt.Figure]]:
    """(file name, figure) of every sweep plot the run has data for."""
    if sweeps.empty:
        return
    cost = sweeps[sweeps.sweep == "cost"]
    for workload in dict.fromkeys(be.workload):
        lv = levels[levels.workload == workload]
        fr = sorted(set(cost[cost.workload == workload].fraction))
        yield (f"breakeven_{workload}.png",
               breakeven_figure(be[be.workload == workload], lv, fr,
                                workload))
        yield (f"cheapest_{workload}.png",
               cheapest_figure(cheap[cheap.workload == workload], lv,
                               workload))
    threads = sweeps[sweeps.sweep == "threads"]
    if not threads.empty:
        yield "threads.png", threads_figure(threads)
    size = sweeps[sweeps.sweep == "size"]
    # one touched fraction per line: the one every size has
    if not size.empty:
        size = size[size.fraction == size.fraction.min()]
        yield "size.png", size_figure(
            size, [k for k in skipped if k["name"].startswith("size/")])


def write(sweeps: pd.DataFrame, be: pd.DataFrame, cheap: pd.DataFrame,
          levels: pd.DataFrame, folder: pathlib.Path,
          skipped: list[dict[str, str]] = ()) -> list[pathlib.Path]:
    out = []
    for name, fig in figures(sweeps, be, cheap, levels, skipped):
        path = folder / name
        plots.save_png(fig, path)
        out.append(path)
    return out
