"""matplotlib plots of a run's frames.

Overview figures: time per touched element versus touched fraction, one
line per variant, log-log, one figure per level and generator with a panel
per workload.  Per-variant figures: one variant's cost per touched element
and per touched page over workloads and fractions, with eager and the
variant's own floors beside it.

Every variant has one fixed style, the same in every figure: the colour
tells its mechanism family, the marker and line style tell the variants of
a family apart.  Legends sit outside the axes.  :func:`figures` builds the
figures as objects (tests inspect them); :func:`write_plots` saves them.
"""
from __future__ import annotations

import dataclasses
import io
import pathlib
from typing import Any, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lazybench import _array as core  # noqa: E402
from lazybench import _levels as levels  # noqa: E402
from lazybench._families import (FALLBACK, FAMILIES,  # noqa: E402
                                 family_of, known_variants)
from lazybench._frames import Frames, floor_lookup  # noqa: E402
from lazybench._results import atomic_write  # noqa: E402

PLOTS_DIR = "plots"
VARIANT_PREFIX = "variant_"
BASE_VARIANT = "eager"
# The generator the page-compute floor computes a page of: a floor sum with
# page-compute only applies to that generator's cases.
PAGE_COMPUTE_GENERATOR = "hash"


# Dealt over the known variants in order: every family gets shapes that
# differ at a small size (a shape may recur in another family's colour).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "d",
           "p", "s", "^", "8", "H")
LINESTYLES = ("-", "--", ":", "-.")
# A panel with one fraction spreads its points over this factor around it.
DODGE = 1.6


@dataclasses.dataclass(frozen=True)
class Style:
    family: str
    color: str
    marker: str
    linestyle: str

    def kwargs(self) -> dict[str, object]:
        return {"color": self.color, "marker": self.marker,
                "linestyle": self.linestyle}

    def key(self) -> tuple[tuple[float, ...], str, str]:
        return (mcolors.to_rgba(self.color), self.marker, self.linestyle)


def _shade(colour: str, k: int, darker: int = 0) -> str:
    """The family colour, a little lighter for later members (by their
    rank only, so a new member moves no other), so that overlapping lines
    of a family still read apart; the hue stays.  `darker` darkens it
    instead (the last resort of a crowded family)."""
    if darker:
        return mcolors.to_hex(tuple(c * (1 - 0.1 * (1 + k % 5))
                                    for c in mcolors.to_rgb(colour)))
    t = min(0.14 * k, 0.56)
    r, g, b = mcolors.to_rgb(colour)
    return mcolors.to_hex((r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t))


def styles(variants: Sequence[str] = ()) -> dict[str, Style]:
    """A style for every known variant and every one of `variants`; the
    known variants' styles do not depend on `variants`, unknown ones are
    dealt in sorted order after them."""
    known = known_variants()
    extra = sorted(set(variants) - set(known))
    members: dict[str, list[str]] = {}
    for v in (*known, *extra):
        members.setdefault(family_of(v).key, []).append(v)
    fams = {f.key: f for f in (*FAMILIES, FALLBACK)}
    rank = {v: k for names in members.values() for k, v in enumerate(names)}
    out: dict[str, Style] = {}
    used: set[tuple] = set()
    # markers are dealt over all variants (lines of two families that
    # overlap still read apart), line styles and shades by rank in the
    # family; a (colour, marker, line style) taken already moves the marker
    for g, v in enumerate((*known, *extra)):
        key, k = family_of(v).key, rank[v]
        colour = _shade(fams[key].colour, k)
        linestyle = LINESTYLES[k % len(LINESTYLES)]
        for m in range(len(MARKERS)):
            style = Style(key, colour, MARKERS[(g + m) % len(MARKERS)],
                          linestyle)
            if style.key() not in used:
                break
        else:   # every marker taken in this colour and line style
            style = Style(key, _shade(fams[key].colour, k, 1), MARKERS[0],
                          linestyle)
        used.add(style.key())
        out[v] = style
    return out


# -- floors ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FloorLine:
    label: str
    ns: float
    color: str
    linestyle: str


def floor_lines(variant: str, generator: str, floors: pd.DataFrame,
                style: Style) -> list[FloorLine]:
    """Reference lines per touched page of a variant whose fault path is
    declared (its parts): the signal round trip, and signal + install +
    compute (only for the generator page-compute was measured with)."""
    if variant not in core.VARIANTS or floors.empty:
        return []
    parts = core.variant_info(variant).parts
    if not parts:
        return []
    floor = floor_lookup(floors)
    out = []
    rt = floor(parts[0])
    if rt == rt and rt > 0:
        out.append(FloorLine(f"floor {parts[0]}", rt, style.color, ":"))
    if generator == PAGE_COMPUTE_GENERATOR or "page-compute" not in parts:
        total = sum(floor(p) for p in parts)
        if total == total and total > 0:
            out.append(FloorLine("floor " + " + ".join(parts), total,
                                 style.color, "--"))
    return out


def _draw_floors(ax: plt.Axes, lines: list[FloorLine]) -> None:
    for fl in lines:
        ax.axhline(fl.ns, color=fl.color, linestyle=fl.linestyle,
                   linewidth=1.0, alpha=0.8, marker="None", label=fl.label)


# -- panels ---------------------------------------------------------------

def _fraction_axis(ax: plt.Axes, fractions: Sequence[float]) -> None:
    """Log x over the touched fractions, ticks at the measured ones, a
    margin either side (also when there is a single one)."""
    pct = sorted({float(f) * 100 for f in fractions if f > 0})
    ax.set_xscale("log")
    if not pct:
        return
    ax.set_xlim(pct[0] / DODGE ** 1.2, pct[-1] * DODGE ** 1.2)
    ax.set_xticks(pct)
    # a sweep's many fractions: labels turned so that they do not overlap
    crowded = len(pct) > 5
    ax.set_xticklabels([f"{p:g} %" for p in pct],
                       rotation=45 if crowded else 0,
                       ha="right" if crowded else "center")
    ax.minorticks_off()
    ax.set_xlabel("touched (% of the array)")


def _plot_series(ax: plt.Axes, df: pd.DataFrame, column: str,
                 order: Sequence[str], style: dict[str, Style]) -> None:
    """One line per variant; a panel with one fraction per variant gets
    its points dodged a little apart, so that equal values stay visible."""
    df = df[df[column] > 0]
    present = [v for v in order if v in set(df.variant)]
    single = df.fraction.nunique() == 1
    for i, variant in enumerate(present):
        line = df[df.variant == variant].sort_values("fraction")
        x = line.fraction * 100
        if single and len(present) > 1:     # a few points, closer
            n = len(present) - 1
            x = x * DODGE ** ((i - n / 2) / n * min(1.0, n / 6))
        ax.plot(x, line[column], label=variant, markersize=5,
                linewidth=1.4, **style[variant].kwargs())


def _legend(fig: plt.Figure, axes: Sequence[plt.Axes]) -> None:
    """One legend for the figure, outside every axes, no label twice."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside right upper",
                   fontsize="small")


def _order(df: pd.DataFrame) -> list[str]:
    known = known_variants()
    present = set(df.variant)
    return [v for v in known if v in present] + \
        sorted(present - set(known))


def first_pass(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df.warm & (df.fault_around == 1)]


def overview_figure(df: pd.DataFrame, generator: str, title: str,
                    floors: pd.DataFrame | None = None,
                    style: dict[str, Style] | None = None) -> plt.Figure:
    """ns per touched element over fraction, a panel per workload with
    data; where the workload touches one element per page (per element is
    per page) the variants' floors are drawn too."""
    floors = floors if floors is not None else pd.DataFrame(
        columns=["floor", "ns_per_op"])
    sub = first_pass(df[df.generator == generator])
    sub = sub[sub.ns_per_touched_element > 0]
    style = style or styles(sub.variant)
    workloads = list(dict.fromkeys(sub.workload))
    fig, axes = plt.subplots(1, max(len(workloads), 1),
                             figsize=(max(4.0 * len(workloads), 7.0) + 2.6,
                                      4.2),
                             squeeze=False, layout="constrained")
    order = _order(sub)
    for ax, workload in zip(axes[0], workloads):
        w = sub[sub.workload == workload]
        _plot_series(ax, w, "ns_per_touched_element", order, style)
        if (w.accesses == w.touched_pages).all():
            seen = set()
            for v in _order(w):
                for fl in floor_lines(v, generator, floors, style[v]):
                    if fl.label not in seen:
                        seen.add(fl.label)
                        _draw_floors(ax, [fl])
            if seen:
                workload += " (1 element per page: floors apply)"
        _fraction_axis(ax, w.fraction if w.fraction.nunique() == 1
                       else sub.fraction)
        ax.set_yscale("log")
        ax.set_title(workload, fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("ns per touched element")
    _legend(fig, axes[0])
    fig.suptitle(f"{title}, generator: {generator}")
    return fig


def _variant_scope(df: pd.DataFrame, variant: str) -> tuple[str, str]:
    """The level and generator a variant's figure shows: where it has the
    most first-pass cases, preferring the page-compute generator."""
    mine = first_pass(df[df.variant == variant])
    level = mine.level.value_counts().index[0]
    gens = list(dict.fromkeys(mine[mine.level == level].generator))
    gen = PAGE_COMPUTE_GENERATOR if PAGE_COMPUTE_GENERATOR in gens else gens[0]
    return level, gen


def variant_figure(df: pd.DataFrame, variant: str,
                   floors: pd.DataFrame | None = None,
                   style: dict[str, Style] | None = None) -> plt.Figure:
    """One variant: ns per touched element (top) and per touched page
    (bottom) over fraction, a column per workload, eager beside it, its
    floors on the per-page panels."""
    floors = floors if floors is not None else pd.DataFrame(
        columns=["floor", "ns_per_op"])
    style = style or styles(df.variant)
    level, generator = _variant_scope(df, variant)
    sub = first_pass(df[(df.level == level) & (df.generator == generator)])
    shown = [variant] + ([BASE_VARIANT] if variant != BASE_VARIANT else [])
    sub = sub[sub.variant.isin(shown)]
    workloads = list(dict.fromkeys(sub[sub.variant == variant].workload))
    fig, axes = plt.subplots(2, len(workloads),
                             figsize=(max(3.8 * len(workloads), 7.0) + 2.6,
                                      7.0),
                             squeeze=False, layout="constrained")
    fl = floor_lines(variant, generator, floors, style[variant])
    for col, workload in enumerate(workloads):
        w = sub[sub.workload == workload]
        for row, column in enumerate(("ns_per_touched_element",
                                      "ns_per_touched_page")):
            ax = axes[row][col]
            _plot_series(ax, w, column, shown, style)
            if column == "ns_per_touched_page":
                _draw_floors(ax, fl)
            _fraction_axis(ax, w.fraction if w.fraction.nunique() == 1
                           else sub.fraction)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if row == 0:
                ax.set_title(workload, fontsize="medium")
    axes[0][0].set_ylabel("ns per touched element")
    axes[1][0].set_ylabel("ns per touched page")
    _legend(fig, axes.flat)
    title = levels.LEVELS[level].title if level in levels.LEVELS else level
    fig.suptitle(f"{variant} (family: {family_title(variant)}): {title}, "
                 f"generator: {generator}")
    return fig


def family_title(variant: str) -> str:
    return family_of(variant).title


# -- all figures of a run ---------------------------------------------------

def figures(cases: pd.DataFrame, floors: pd.DataFrame | None = None
            ) -> Iterator[tuple[str, plt.Figure]]:
    """(file name under plots/, figure) of every plot of a run, built one
    at a time; the caller closes each."""
    if cases.empty:
        return
    style = styles(cases.variant)
    for level in levels.LEVELS.values():
        sub = cases[cases.level == level.key]
        name = f"{level.plot_prefix}time_per_element"
        for generator in dict.fromkeys(sub.generator):
            yield (f"{name}_{generator}.png",
                   overview_figure(sub, generator, level.title, floors, style))
    for variant in _order(first_pass(cases)):
        yield (f"{VARIANT_PREFIX}{variant}.png",
               variant_figure(cases, variant, floors, style))


def save_png(fig: Any, path: pathlib.Path, **savefig: Any) -> None:
    """Write `fig` to `path` as a PNG (110 dpi, and matplotlib's savefig
    options `savefig`) atomically, and close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, **savefig)
    finally:
        plt.close(fig)
    atomic_write(path, buf.getvalue())


def write_plots(frames: Frames, folder: pathlib.Path) -> list[pathlib.Path]:
    """Write every plot of a run's frames under folder/plots; returns the
    files."""
    out = []
    for name, fig in figures(frames.cases, frames.floors):
        path = folder / PLOTS_DIR / name
        save_png(fig, path)
        out.append(path)
    return out
