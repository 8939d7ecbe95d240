"""The report's sections on the sweeps (lazybench._sweeps): break-even
against eager, the cheapest mechanism per grid point, thread scaling and
array size; and their CSVs (breakeven.csv, cheapest.csv,
concurrent_floors.csv).  lazybench._report imports it after defining its
own sections, so that these follow them."""
from __future__ import annotations

import math
import pathlib

import pandas as pd

from lazybench import _breakeven as breakeven
from lazybench._case import format_bytes
from lazybench._format import duration_ns, sig
from lazybench._frames import Frames
from lazybench._sections import Part, section
from lazybench._results import atomic_write

BREAKEVEN_CSV = "breakeven.csv"
CHEAPEST_CSV = "cheapest.csv"
CONCURRENT_CSV = "concurrent_floors.csv"


def _pct(f: float) -> str:
    return f"{f * 100:.2g} %" if f < 0.1 else f"{f * 100:.0f} %"


def verdict_text(row: pd.Series) -> str:
    """'< 37 %' (lazy cheaper below), '> 5 %', 'always', 'never'."""
    if row.verdict == "below":
        return f"< {_pct(row.break_even_fraction)}"
    if row.verdict == "above":
        return f"> {_pct(row.break_even_fraction)}"
    return str(row.verdict)


def sentence(row: pd.Series) -> str:
    cost = duration_ns(row.cost_ns)
    where = f"at {cost} per element ({row.workload}, {row.n} elements)"
    if row.verdict == "below":
        s = (f"{row.variant} beats eager below "
             f"{_pct(row.break_even_fraction)} touched {where}")
    elif row.verdict == "above":
        s = (f"{row.variant} beats eager above "
             f"{_pct(row.break_even_fraction)} touched {where}")
    elif row.verdict == "always":
        s = f"{row.variant} beats eager at every fraction measured {where}"
    else:
        s = f"{row.variant} never beats eager {where}"
    if row.crossings > 1:
        s += f" (the totals cross {row.crossings} times)"
    return s


def frames(fr: Frames) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(break-even, cheapest, cost levels) of the run's cost sweep."""
    return (breakeven.breakeven_frame(fr.sweeps),
            breakeven.cheapest_frame(fr.sweeps),
            breakeven.cost_levels(fr.sweeps))


@section("When laziness pays: break-even against eager", terminal=3)
def _breakeven(fr: Frames) -> Part | None:
    be, _, levels = frames(fr)
    if be.empty:
        return None
    table = be.assign(cost=[f"{duration_ns(c)} ({breakeven.label(g, s)})"
                            for c, g, s in zip(be.cost_ns, be.generator,
                                               be.spin)],
                      touched=[verdict_text(r) for _, r in be.iterrows()])
    pivot = table.pivot(index=["workload", "cost_ns", "cost", "n"],
                        columns="variant", values="touched")
    pivot = pivot.sort_index(level=["workload", "cost_ns"]).reset_index() \
        .drop(columns="cost_ns")
    pivot.columns.name = None
    lines = [sentence(r) for _, r in
             be.sort_values(["workload", "cost_ns"]).iterrows()
             if r.verdict in ("below", "above")]
    text = ("Total cost of one array: its build (creating it; eager "
            "computes every element then) plus one pass of the workload. "
            "A cell is the touched fraction below which (`<`) the variant "
            f"costs less than eager by more than "
            f"{breakeven.MARGIN * 100:g} % of eager's total, interpolated between the two grid "
            "fractions around it (breakeven.csv names them); `always`: "
            "cheaper at every fraction measured, `never`: at none. The "
            "cost per element is eager's build time per element.")
    after = "\n".join(f"- {line}." for line in lines)
    return Part(text, (pivot,), after, terminal_text="")


@section("Cheapest mechanism per grid point (build + one pass)")
def _cheapest(fr: Frames) -> Part | None:
    _, cheap, _ = frames(fr)
    if cheap.empty:
        return None
    cells = cheap.assign(
        cost=[duration_ns(c) for c in cheap.cost_ns],
        touched=[_pct(f) for f in cheap.fraction],
        best=[f"{v} ({sig(x, 2)}x)" if ok or v == breakeven.BASE
              else f"tie: {v} ({sig(x, 2)}x)" for v, x, ok in
              zip(cheap.cheapest, cheap.eager_over_cheapest,
                  cheap.beats_eager)])
    table = cells.pivot(index=["workload", "touched"], columns="cost",
                        values="best")
    table = table[[duration_ns(c) for c in
                   dict.fromkeys(cheap.sort_values("cost_ns").cost_ns)]]
    order = {_pct(f): f for f in cheap.fraction}
    table = table.reset_index()
    table = table.iloc[sorted(range(len(table)),
                              key=lambda i: (table.workload.iloc[i],
                                             order[table.touched.iloc[i]]))]
    return Part("The variant with the smallest total at each point of the "
                "cost sweep, and eager's total over its total "
                "(cheapest.csv); `tie`: cheaper than eager by less than "
                f"the break-even's margin ({breakeven.MARGIN * 100:g} %).",
                (table.reset_index(drop=True),))


def threads_table(df: pd.DataFrame) -> pd.DataFrame:
    t = df[df.sweep == "threads"]
    if t.empty:
        return t
    one = t[t.threads == 1].set_index("variant").time_s
    out = pd.DataFrame({
        "variant": t.variant, "threads": t.threads,
        "placement": t.placement, "n": t.n,
        "ns_per_touched_page": t.ns_per_touched_page,
        "ns_per_touched_element": t.time_s * 1e9 / t.n,
        "faults": t.faults,
        "faults_per_s_per_thread": t.faults / (t.time_s * t.threads),
        "speedup": [one.get(v, math.nan) / s
                    for v, s in zip(t.variant, t.time_s)],
        "tlb_shootdowns_per_fault": [
            s / f if s >= 0 and f else math.nan
            for s, f in zip(t.tlb_shootdowns, t.faults)],
        "invol_ctx_per_fault": t.invol_ctx_per_fault})
    return out.reset_index(drop=True)


def concurrent_table(fr: Frames) -> pd.DataFrame:
    """run.json "concurrent_floors": floors run by several threads at
    once (lazybench._sweeps.concurrent_floors)."""
    return pd.DataFrame(fr.run.meta.get("concurrent_floors", []),
                        columns=["floor", "threads", "ns_per_op",
                                 "over_one_thread"])


@section("Thread scaling")
def _threads(fr: Frames) -> Part | None:
    table = threads_table(fr.sweeps)
    if table.empty:
        return None
    floors = concurrent_table(fr)
    after = ("" if floors.empty else
             "What the threads share, measured: the floors that may run in "
             "several threads at once, each thread on mappings of its own, "
             "released together (concurrent_floors.csv); `over_one_thread` "
             "near the thread count means the operation is serialised "
             "(mprotect takes the process's memory-map lock for writing). "
             "The signal floors install a process-wide handler and are not "
             "run this way.")
    return Part(
        "hash, seq, 100 % touched. `same`: every thread reads the whole "
        "array (they race for each page); `disjoint`: each thread reads "
        "its own slice. Time is the wall time from the threads' common "
        "start to the last one's end (results.csv time_s); speedup is "
        "the 1-thread time over it. TLB shootdowns are the machine's "
        "(/proc/interrupts) during the verification pass, per fault; "
        "involuntary context switches are the process's.",
        (table, floors) if not floors.empty else (table,), after)


def size_table(df: pd.DataFrame) -> pd.DataFrame:
    s = df[df.sweep == "size"]
    if s.empty:
        return s
    out = pd.DataFrame({
        "variant": s.variant, "size": [format_bytes(int(n) * 8)
                                       for n in s.n],
        "touched": [f"{f * 100:g} %" for f in s.fraction],
        "touched_pages": s.touched_pages,
        "ns_per_touched_element": s.ns_per_touched_element,
        "faults": s.faults, "evicted_pages": s.evicted_pages,
        "build_ms": s.build_ms,
        "peak_rss_mib": [b / 2**20 if b >= 0 else math.nan
                         for b in s.peak_rss_bytes],
        "rss_growth_mib": [b / 2**20 if b >= 0 else math.nan
                           for b in s.rss_growth_bytes]})
    return out.reset_index(drop=True)


@section("Array size")
def _size(fr: Frames) -> Part | None:
    table = size_table(fr.sweeps)
    skipped = [k for k in fr.run.meta.get("skipped", [])
               if k["name"].startswith("size/")]
    if table.empty and not skipped:
        return None
    after = "\n".join(f"- {k['name']}: {k['reason']}." for k in skipped)
    return Part(
        "hash, 0.1 % of the pages touched at random (random-pages), and "
        "for sigsegv-mprotect 1 % of the largest array: more isolated "
        "pages than its mapping budget, so it evicts the oldest "
        "(evicted_pages; an evicted page read again faults again). Every "
        "case is verified against values computed from the generator for "
        "the touched elements. Peak RSS is the process's high-water mark "
        "(VmHWM, reset before the verification pass), RSS growth what "
        "that pass left resident.",
        (table,) if not table.empty else (), after)


def write_tables(fr: Frames, be: pd.DataFrame, cheap: pd.DataFrame,
                 folder: pathlib.Path) -> list[pathlib.Path]:
    """breakeven.csv and cheapest.csv (`frames(fr)`), when the run has a
    cost sweep; concurrent_floors.csv when it has the threads sweep's
    floors."""
    out = []
    for name, table in ((BREAKEVEN_CSV, be), (CHEAPEST_CSV, cheap),
                        (CONCURRENT_CSV, concurrent_table(fr))):
        if not table.empty:
            atomic_write(folder / name, table.to_csv(index=False).encode())
            out.append(folder / name)
    return out
