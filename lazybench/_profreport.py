"""Profiles for people: the phase table with percentiles, the switch
accounting beside the model, the floors, and the folder ``profile``
writes (CSV, JSON, figures).  Every figure comes from one row of the
frames in _profframes."""
from __future__ import annotations

import json
import pathlib
import time
from typing import Any, Sequence

import pandas as pd

from lazybench import _format as fmt
from lazybench import _profframes as frames
from lazybench import _profile as profiling
from lazybench import _profplots as profplots
from lazybench._results import RunFolder, atomic_write

PROFILE_JSON = "profile.json"
FLOORS_CSV = "floors.csv"


def phase_table(phases: pd.DataFrame) -> pd.DataFrame:
    """The phase table as printed: us per fault, one row per variant and
    phase (percentiles by nearest rank over the faults timed)."""
    t = phases.copy()
    out = pd.DataFrame({
        "variant": t["variant"], "phase": t["label"],
        "faults": t["count"].astype(int),
        "mean us": t["mean_ns"] / 1000, "p50 us": t["p50_ns"] / 1000,
        "p90 us": t["p90_ns"] / 1000, "p99 us": t["p99_ns"] / 1000,
        "max us": t["max_ns"] / 1000,
        "share %": t["share"] * 100})
    return out.reset_index(drop=True)


# Short column names of the phases, for the report's one-row-per-variant
# table (what each is per mechanism: the README's phase table).
PHASE_COLUMNS: dict[str, str] = {
    "delivery": "delivery", "resolve_a": "resolve 1",
    "resolve_b": "resolve 2", "resolve_c": "resolve 3",
    "resume": "resume", "step": "step handler",
    "step_resume": "after step", "total": "total"}


def phase_means_table(phases: pd.DataFrame) -> pd.DataFrame:
    """Mean us per fault of each phase, one row per variant (each cell
    one phases.csv row; DataFrame.pivot refuses duplicates rather than
    averaging them)."""
    wide = phases.pivot(index="variant", columns="phase", values="mean_ns")
    wide = wide.reindex(index=list(dict.fromkeys(phases["variant"])),
                        columns=[c for c in PHASE_COLUMNS
                                 if c in wide.columns]) / 1000
    wide.columns = [PHASE_COLUMNS[c] + " us" for c in wide.columns]
    return wide.reset_index()


def total_percentiles_table(phases: pd.DataFrame) -> pd.DataFrame:
    """The total per fault with its percentiles, one row per variant."""
    t = phase_table(phases[phases["phase"] == profiling.TOTAL])
    return t.drop(columns=["phase", "share %"])


def switch_table(switches: pd.DataFrame) -> pd.DataFrame:
    t = switches.copy()

    def verdict(v: Any) -> str:
        return "-" if v is None or v != v else ("yes" if v else "NO")
    return pd.DataFrame({
        "variant": t["variant"], "per fault": t["what"],
        "measured": t["per_fault"].astype(float),
        "model": t["model"].astype(float),
        "agrees": t["agrees"].map(verdict), "source": t["source"]}
    ).reset_index(drop=True)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    return pd.DataFrame({
        "variant": s["variant"],
        "us per fault": s["plain_ns_per_fault"] / 1000,
        "x sigsegv round trip": s["over_round_trip"],
        "faults timed": s["faults_timed"].astype(int),
        "round trip us": s["roundtrip_plain_ns"] / 1000,
        "profiled us": s["roundtrip_profiled_ns"] / 1000,
        "overhead %": s["overhead"] * 100,
        "kernel entries (model)": s["model_kernel_entries"],
        "context switches (model)": s["model_switches"]}
    ).reset_index(drop=True)


def text(record: dict[str, Any]) -> str:
    """What ``profile`` prints for one case."""
    recs = [record]
    s = record["summary"]
    case = (f"{record['variant']}, {record['generator']} {record['workload']}"
            f" {record['fraction']:.0%} touched, {record['n']} elements")
    floors = frames.floors_frame(recs)
    lines = [
        f"profile of {case}",
        f"TSC {s['tsc_hz'] / 1e9:.4f} GHz against CLOCK_MONOTONIC "
        f"(drift {_pct(s['tsc_drift'])} over the profile)", "",
        "phases per fault (delivery, resolve, resume), us:",
        fmt.plain_table(phase_table(frames.phases_frame(recs)).drop(
            columns=["variant"])), "",
        f"cost: {fmt.sig(s['plain_ns_per_fault'] / 1000)} us per fault "
        f"uninstrumented = {fmt.sig(s['over_round_trip'] or float('nan'))} x "
        f"the bare SIGSEGV round trip "
        f"({fmt.sig(record['floors'].get(profiling.ROUND_TRIP, float('nan')) / 1000)}"
        f" us, same run)",
        f"instrumentation overhead on the round trip (strided, every access "
        f"faults; medians of {s.get('trip_rounds', '-')} rounds): "
        f"{fmt.sig(s['roundtrip_profiled_ns'] / 1000)} us profiled against "
        f"{fmt.sig(s['roundtrip_plain_ns'] / 1000)} us uninstrumented, "
        f"{_pct(s['overhead'])} (the median of the rounds' ratios)",
        f"faults timed {s['faults_timed']}, incomplete {s['incomplete']}, "
        f"resumed before the copy returned {s['early']}, "
        f"out of order {s['skewed']}", "",
        "floors (same run, us per operation):",
        fmt.plain_table(pd.DataFrame({"floor": floors["floor"],
                             "us": floors["ns_per_op"] / 1000})), "",
        f"switch accounting per fault ({s['mechanism']}: {s['model_path']}):",
        fmt.plain_table(switch_table(frames.switches_frame(recs)).drop(
            columns=["variant"])), "",
        f"model: {fmt.sig(s['model_kernel_entries'])} kernel entries "
        f"({fmt.sig(2 * s['model_kernel_entries'])} user/kernel mode "
        f"transitions) and {fmt.sig(s['model_switches'])} scheduler context "
        "switches per fault",
    ]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.2f} %"


def write_folder(record: dict[str, Any], results_dir: pathlib.Path,
                 name: str | None = None) -> pathlib.Path:
    """The profile's folder under `results_dir`: profile.json, the CSVs
    and both figures, written as a run folder is (a temporary folder
    renamed at the end)."""
    folder = RunFolder(results_dir, name or (
        f"profile-{time.strftime('%Y%m%d-%H%M%S')}-{record['variant']}"))
    tmp = folder.path
    try:
        write_tables([record], tmp)
        atomic_write(tmp / PROFILE_JSON,
                     json.dumps(record, indent=2).encode())
        atomic_write(tmp / FLOORS_CSV, frames.floors_frame(
            [record]).to_csv(index=False).encode())
        phases = frames.phases_frame([record])
        profplots.write(phases, frames.histograms_frame([record]),
                        record["floors"], tmp, scope([record]))
        return folder.commit()
    except BaseException:
        folder.discard()
        raise


def write_tables(records: Sequence[dict[str, Any]],
                 folder: pathlib.Path) -> list[pathlib.Path]:
    """phases.csv, phase_histograms.csv, switches.csv and profiles.csv."""
    out = []
    for name, frame in ((frames.PHASES_CSV, frames.phases_frame(records)),
                        (frames.HISTOGRAMS_CSV,
                         frames.histograms_frame(records)),
                        (frames.SWITCHES_CSV, frames.switches_frame(records)),
                        (frames.PROFILES_CSV, frames.summary_frame(records))):
        atomic_write(folder / name, frame.to_csv(index=False).encode())
        out.append(folder / name)
    return out


def scope(records: Sequence[dict[str, Any]]) -> str:
    cases = {(r["generator"], r["workload"], r["fraction"], r["n"])
             for r in records}
    if len(cases) == 1:
        g, w, f, n = cases.pop()
        return f"{g} {w} {f:.0%} touched, {n} elements"
    return "several cases"


# The counts the essay table shows, by their row in switches.csv:
# (column, row of switches.csv).
ESSAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("context switches", "context switches, all"),
    ("page faults", "perf page-faults"),
    ("signals", "signals delivered"),
    ("system calls", "system calls on the fault path"),
)


def essay_table(switches: pd.DataFrame, summary: pd.DataFrame
                ) -> pd.DataFrame:
    """Per variant: each count of ESSAY_COLUMNS per fault, measured and
    (in parentheses' column) as modelled, and the kernel entries the model
    implies: one row per variant, each cell one row of switches.csv or
    profiles.csv."""
    rows = []
    extra: dict[str, tuple[str, float]] = {}
    for v in dict.fromkeys(summary["variant"]):
        mine = switches[switches["variant"] == v].set_index("what")
        srow = summary[summary["variant"] == v].iloc[0]
        row: dict[str, Any] = {"variant": v}
        agree = True
        for col, what in ESSAY_COLUMNS:
            r = mine.loc[what]
            measured = r["per_fault"]
            row[col] = (float(measured) if measured is not None
                        and measured == measured else "not permitted")
            row[f"{col} model"] = r["model"]
            if r["agrees"] is False:
                agree = False
        row["model holds"] = "yes" if agree else "NO"
        # kept for the answer below (the summary table shows them)
        extra[v] = (srow["mechanism"], srow["model_kernel_entries"])
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["mechanism"] = {v: m for v, (m, _) in extra.items()}
    table.attrs["kernel entries"] = {v: k for v, (_, k) in extra.items()}
    return table


def essay_answer(table: pd.DataFrame) -> str:
    """The answer to the essay's "a signal involves two context
    switches", in words, from the table's figures."""
    if table.empty:
        return ""
    mech = table.attrs.get("mechanism", {})
    entries = table.attrs.get("kernel entries", {})
    sig = table[table["signals"].map(
        lambda x: isinstance(x, float) and x > 0)]
    thr = table[table["variant"].map(mech) == "uffd-thread"]
    out = []

    def span(col: str, rows: pd.DataFrame) -> str:
        vals = [x for x in (rows["variant"].map(entries)
                            if col == "kernel entries" else rows[col])
                if isinstance(x, float)]
        if not vals:
            return "not permitted"
        lo, hi = min(vals), max(vals)
        return (fmt.sig(lo) if fmt.sig(lo) == fmt.sig(hi)
                else f"{fmt.sig(lo)} to {fmt.sig(hi)}")
    if not sig.empty:
        out.append(
            f"Signal mechanisms ({', '.join(sig['variant'])}): "
            f"{span('context switches', sig)} scheduler context switches "
            f"per fault, measured, and {span('kernel entries', sig)} "
            "kernel entries in their model, each a round trip across the "
            "user/kernel boundary (the fault, each system call of the "
            "handler, an rt_sigreturn per signal). A bare SIGSEGV round "
            "trip enters the kernel twice (the fault, rt_sigreturn): the "
            "essay's \"two context switches\" hold only if a context "
            "switch means such a round trip between modes; no scheduler "
            "context switch happens.")
    if not thr.empty:
        out.append(
            f"A handler thread (the kernel's lazy pages the essay wished "
            f"for, {', '.join(thr['variant'])}) is where two context "
            f"switches per fault really happen: "
            f"{span('context switches', thr)} measured, 2 in the model "
            "(the faulting thread sleeps, the handler thread sleeps again "
            "after UFFDIO_COPY), on top of "
            f"{span('kernel entries', thr)} kernel entries.")
    if (table["model holds"] == "NO").any():
        bad = ", ".join(table[table["model holds"] == "NO"]["variant"])
        out.append(f"The model does not hold for {bad}: see switches.csv.")
    return " ".join(out)
