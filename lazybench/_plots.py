"""matplotlib plots from the cases frame: time per touched element versus
touched fraction, one line per variant, log-log, one figure per
generator with a panel per workload."""
from __future__ import annotations

import io
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lazybench import _levels as levels  # noqa: E402
from lazybench._results import atomic_write  # noqa: E402

PLOTS_DIR = "plots"


def _figure(df: pd.DataFrame, generator: str, title: str) -> plt.Figure:
    sub = df[(df.generator == generator) & ~df.warm & (df.fault_around == 1)]
    workloads = list(dict.fromkeys(sub.workload))
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads),
                                                        3.6), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        w = sub[(sub.workload == workload) & (sub.ns_per_touched_element > 0)]
        for variant, line in w.groupby("variant", sort=False):
            line = line.sort_values("fraction")
            ax.plot(line.fraction * 100, line.ns_per_touched_element,
                    marker="o", label=variant)
        if not w.empty:                 # log axes need positive data
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{workload}")
        ax.set_xlabel("touched (% of the array)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("ns per touched element")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(f"{title}, generator: {generator}")
    fig.tight_layout()
    return fig


def write_plots(df: pd.DataFrame, folder: pathlib.Path) -> list[pathlib.Path]:
    if df.empty:
        return []
    out = []
    for level in levels.LEVELS.values():
        sub = df[df.level == level.key]
        name = f"{level.plot_prefix}time_per_element"
        for generator in dict.fromkeys(sub.generator):
            fig = _figure(sub, generator, level.title)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            plt.close(fig)
            path = folder / PLOTS_DIR / f"{name}_{generator}.png"
            atomic_write(path, buf.getvalue())
            out.append(path)
    return out
