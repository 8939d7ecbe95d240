"""Figures of profiles: the phases of a fault stacked per variant with the
floors marked, and the per-fault latency CDF.  Drawn from the rows of
phases.csv and phase_histograms.csv (_profframes), nothing else."""
from __future__ import annotations

import pathlib
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lazybench import _plots as plots  # noqa: E402
from lazybench import _profile as profiling  # noqa: E402

PHASES_PNG = "phases.png"
CDF_PNG = "latency_cdf.png"
# One colour per phase kind, the same in every figure; the phase table
# says what each is for a given mechanism.
PHASE_STYLE: dict[str, tuple[str, str]] = {
    "delivery": ("#4c72b0", "delivery: access to handler (or event receipt)"),
    "resolve_a": ("#dd8452", "resolve 1: lookup and decode / compute"),
    "resolve_b": ("#c44e52", "resolve 2: force / install the page"),
    "resolve_c": ("#8c8c8c", "resolve 3: register rewrite / publish"),
    "resume": ("#55a868", "resume: to the access (redirect: to the trap)"),
    "step": ("#8172b3", "redirect: single-step handler"),
    "step_resume": ("#64b5cd", "redirect: resume after the step"),
}
# Floors drawn across the bars: the bare costs every fault path contains.
MARKED_FLOORS: tuple[tuple[str, str], ...] = (
    ("sigsegv-roundtrip", "--"), ("sigbus-uffd-roundtrip", ":"),
    ("null-syscall", "-."))


def phase_figure(phases: pd.DataFrame, floors: dict[str, float],
                 title: str) -> Any:
    """Mean ns per fault of each phase, stacked, one bar per variant (in
    the order of `phases`), with the floors as horizontal lines."""
    variants = list(dict.fromkeys(phases["variant"]))
    fig, ax = plt.subplots(figsize=(max(8.5, 0.9 * len(variants) + 6), 5.6))
    x = np.arange(len(variants))
    bottom = np.zeros(len(variants))
    for ph, (colour, label) in PHASE_STYLE.items():
        heights = np.array([
            _mean(phases, v, ph) for v in variants])
        if not np.any(heights > 0):
            continue
        ax.bar(x, heights / 1000, 0.6, bottom=bottom / 1000, color=colour,
               label=label, edgecolor="white", linewidth=0.5)
        bottom += heights
    for name, style in MARKED_FLOORS:
        ns = floors.get(name)
        if ns is not None and ns == ns:
            ax.axhline(ns / 1000, color="black", linestyle=style,
                       linewidth=1, label=f"floor {name} ({ns / 1000:.2g} us)")
    top = max([float(bottom.max()) if len(bottom) else 0.0] +
              [floors.get(n) or 0.0 for n, _ in MARKED_FLOORS])
    ax.set_ylim(0, top / 1000 * 1.08 or 1)
    ax.set_xticks(x)
    ax.set_xticklabels(variants, rotation=30, ha="right")
    ax.set_ylabel("mean us per fault")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    fig.tight_layout()
    return fig


def _mean(phases: pd.DataFrame, variant: str, phase: str) -> float:
    rows = phases[(phases["variant"] == variant) & (phases["phase"] == phase)]
    if rows.empty:
        return 0.0
    if len(rows) > 1:
        raise ValueError(f"{variant} {phase}: more than one phase row")
    value = rows["mean_ns"].iloc[0]
    return float(value) if value == value and value is not None else 0.0


def cdf_figure(histograms: pd.DataFrame, title: str,
               variants: Sequence[str] | None = None) -> Any:
    """Per-fault latency (the total phase) as a cumulative distribution,
    log x, one step line per variant, from the raw histogram buckets."""
    tot = histograms[histograms["phase"] == profiling.TOTAL]
    order = list(variants) if variants else list(dict.fromkeys(tot["variant"]))
    styles = plots.styles(order)
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    for v in order:
        rows = tot[tot["variant"] == v].sort_values("lo_ns")
        if rows.empty:
            continue
        cum = rows["count"].cumsum() / rows["count"].sum()
        xs = np.concatenate(([rows["lo_ns"].iloc[0]], rows["hi_ns"]))
        ys = np.concatenate(([0.0], cum))
        st = styles[v]
        ax.step(xs / 1000, ys, where="post", color=st.color,
                linestyle=st.linestyle, label=v, linewidth=1.3)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("us from the access to its completion (per fault)")
    ax.set_ylabel("fraction of faults")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    fig.tight_layout()
    return fig


def write(phases: pd.DataFrame, histograms: pd.DataFrame,
          floors: dict[str, float], folder: pathlib.Path,
          scope: str) -> list[pathlib.Path]:
    """Both figures into `folder`; `scope` names the case(s) in titles."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    fig = phase_figure(phases, floors,
                       f"Where a fault's time goes, mean per phase\n{scope}")
    plots.save_png(fig, folder / PHASES_PNG)
    out.append(folder / PHASES_PNG)
    fig = cdf_figure(histograms, f"Per-fault latency, CDF\n{scope}",
                     list(dict.fromkeys(phases["variant"])))
    plots.save_png(fig, folder / CDF_PNG)
    out.append(folder / CDF_PNG)
    return out
