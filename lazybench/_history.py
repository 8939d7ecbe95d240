"""The stored runs of a results folder over time: ``python -m lazybench
history``.  Each run's environment, and one metric per variant on each
run's headline reference case (hash, seq, 100 % where the run has it):
by default ns per fault over the same run's SIGSEGV round trip, which
compares across days and machines better than absolute times.  Every
figure is one cell of that run's results.csv."""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pandas as pd

from lazybench import _results as results
from lazybench._format import sig

DEFAULT_METRIC = "fault_over_sigsegv_floor"


class HistoryError(results.ResultsError):
    """Nothing to show: no run folder, or an unknown metric."""


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    created: str
    profile: str
    environment: dict[str, str]
    values: dict[str, float]     # variant -> the metric on the reference


@dataclasses.dataclass(frozen=True)
class History:
    metric: str
    entries: list[Entry]
    skipped: list[str]           # folders that are not readable runs


def _environment(machine: dict[str, Any]) -> dict[str, str]:
    rev = machine.get("git_revision")
    rev_text = "-" if not rev else rev[:10] + (
        "+" if machine.get("git_dirty") else "")
    return {"kernel": str(machine.get("kernel", "-")),
            "cpu": str(machine.get("cpu_model") or "-"),
            "revision": rev_text}


def _entry(run: results.RunData, metric: str) -> Entry:
    from lazybench import _frames as frames, _headline as headline

    fr = frames.Frames.of(run)
    cases = fr.cases
    if metric not in cases.columns or \
            not pd.api.types.is_numeric_dtype(cases[metric]):
        raise HistoryError(f"unknown metric {metric!r} (a numeric column "
                           "of results.csv, e.g. " + DEFAULT_METRIC + ")")
    ref = headline.reference(cases, "c")
    values: dict[str, float] = {}
    for variant in dict.fromkeys(cases.variant):
        row = headline.row_of(cases, variant, ref)
        if row is not None and row[metric] == row[metric]:
            values[variant] = float(row[metric])
    meta = run.meta
    return Entry(run.folder.name, str(meta.get("created", "")),
                 str(meta.get("profile", "")),
                 _environment(meta.get("machine", {})), values)


def collect(results_dir: pathlib.Path,
            metric: str = DEFAULT_METRIC) -> History:
    """Every run folder under `results_dir` (the stored baselines too),
    oldest first; folders that do not load are named in `skipped`."""
    if not results_dir.is_dir():
        raise HistoryError(f"{results_dir}: no such results folder")
    entries, skipped = [], []
    for folder in sorted(p for p in results_dir.iterdir()
                         if p.is_dir() and not p.name.startswith(".")):
        if not (folder / results.RUN_FILE).exists():
            continue
        try:
            run = results.load_run(folder)
        except results.ResultsError as exc:
            skipped.append(f"{folder.name}: {str(exc).splitlines()[0]}")
            continue
        entries.append(_entry(run, metric))
    if not entries:
        raise HistoryError(f"{results_dir}: no readable run folder")
    entries.sort(key=lambda e: (e.created, e.name))
    return History(metric, entries, skipped)


def table(h: History) -> pd.DataFrame:
    """One row per run: name, date, profile, environment, then the metric
    per variant (as printed)."""
    variants = list(dict.fromkeys(v for e in h.entries for v in e.values))
    rows = []
    for e in h.entries:
        row = {"run": e.name, "created": e.created[:16],
               "profile": e.profile, **e.environment}
        row.update({v: sig(e.values[v]) if v in e.values else "-"
                    for v in variants})
        rows.append(row)
    return pd.DataFrame(rows)


def render(h: History) -> str:
    t = table(h)
    env = ["run", "created", "profile", "kernel", "cpu", "revision"]
    variants = [c for c in t.columns if c not in env]
    out = [f"{len(h.entries)} runs, oldest first.", "",
           t[env].to_string(index=False), "",
           f"{h.metric} on each run's reference case (hash, seq, 100 %, "
           "first pass, fault-around 1, where the run has it):"]
    for k in range(0, len(variants), 6):
        out += ["", t[["run", *variants[k:k + 6]]].to_string(index=False)]
    out += [f"skipped {s}" for s in h.skipped]
    return "\n".join(out)


def figure(h: History) -> Any:
    """One line per variant over the runs, in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lazybench import _plots as plots

    variants = list(dict.fromkeys(v for e in h.entries for v in e.values))
    style = plots.styles(variants)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(h.entries) + 3), 4.5))
    xs = list(range(len(h.entries)))
    for v in variants:
        pts = [(x, e.values[v]) for x, e in zip(xs, h.entries)
               if v in e.values]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=v,
                **style[v].kwargs())
    ax.set_yscale("log")
    ax.set_xticks(xs, [e.name for e in h.entries], rotation=30, ha="right",
                  fontsize=7)
    ax.set_ylabel(h.metric)
    ax.set_title(f"{h.metric} per run (reference case)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def write_plot(h: History, path: pathlib.Path) -> None:
    from lazybench import _plots as plots

    plots.save_png(figure(h), path, bbox_inches="tight")
