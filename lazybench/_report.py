"""The run report: its sections, each one function registered in
:data:`SECTIONS`, written to ``report.md`` and (those marked for it)
printed in the terminal; and the CSVs and plots beside it."""
from __future__ import annotations

import pathlib
import textwrap
from typing import Any, Callable

import pandas as pd
import tabulate

from lazybench import _array as core, _format as fmt
from lazybench import _headline as headline, _levels as levels
from lazybench._case import (FAULT_AROUND_AUTO, format_fault_around,
                             format_fraction)
from lazybench._families import family_of
from lazybench._frames import Frames, base_variants, floor_lookup, ratio_column
from lazybench._sections import SECTIONS, Part, Section, section
from lazybench import _profframes as profframes
from lazybench import _profplots as profplots
from lazybench import _profreport as profreport
from lazybench._pythunks import KINDS
from lazybench._results import RunData, atomic_write

CSV_FILE = "results.csv"
FLOORS_CSV_FILE = "floors.csv"
REPORT_FILE = "report.md"
PER_PAGE_CSV_FILE = "per_page.csv"
COUNTERS_CSV_FILE = "counters.csv"
BASE_VARIANT = "eager"


def fault_around_table(df: pd.DataFrame) -> pd.DataFrame:
    """First passes at the largest fraction, per variant, generator and
    workload that has fault-around twins: ns and faults per touched page
    at each fault-around (auto: adaptive), the time per page over the same
    variant's fault-around 1, and over its best fixed window on that
    workload (the adaptive window's test: within 1.1 x the best on the
    sequential scan, within 1.05 x of one page on the random gather)."""
    fa = df[~df.warm]
    around = fa[fa.fault_around != 1]
    keys = ["variant", "generator", "workload"]
    fa = fa.merge(around[keys].drop_duplicates(), on=keys)
    if fa.empty:
        return fa
    fa = fa[fa.fraction == fa.fraction.max()]
    fixed = fa[fa.fault_around != FAULT_AROUND_AUTO]
    base = fixed[fixed.fault_around == 1].set_index(keys)
    best = fixed.groupby(keys).ns_per_touched_page.min()
    out = fa[keys + ["fault_around", "ns_per_touched_page",
                     "faults_per_touched_page"]].copy()
    out["over_fault_around_1"] = [
        row.ns_per_touched_page /
        base["ns_per_touched_page"].get((row.variant, row.generator,
                                         row.workload), float("nan"))
        for row in out.itertuples()]
    out["over_best_fixed"] = [
        row.ns_per_touched_page /
        best.get((row.variant, row.generator, row.workload), float("nan"))
        for row in out.itertuples()]
    # auto last within each variant and workload
    out["order"] = out.fault_around.where(out.fault_around > 0, 10 ** 6)
    out = out.sort_values(["variant", "workload", "order"]).drop(
        columns="order")
    out["fault_around"] = [format_fault_around(k).lstrip("-")
                           for k in out.fault_around]
    return out


def page_budget_table(df: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """One row per page mechanism (core.VariantInfo.page_mechanism) on the
    sequential scan of hash at 100 % touched, fault-around 1, fastest
    first: its time per page (a results.csv cell); the floors its fault
    path is made of and their sum, and the time over that sum and over
    the same sum with the bare SIGSEGV as the signal; its least possible
    cost, the joint floor (its signal resolved by its own installation in
    a minimal handler) plus the page's computation, and the time over it.
    A mechanism that declares no floors (the handler-thread variants: no
    floor times a thread's wake-up) has its time and no ratio."""
    floor = floor_lookup(floors)
    info = {v: core.variant_info(v) for v in core.VARIANTS}
    pages = [v for v, i in info.items() if i.page_mechanism]
    # page-compute is the hash generator's page: only hash cases compare
    cases = df[~df.warm & (df.workload == "seq") & (df.fraction == 1.0) &
               (df.fault_around == 1) & (df.generator == "hash") &
               df.variant.isin(pages)]
    nan = float("nan")
    rows = []
    for rec in cases.to_dict("records"):
        variant, per_page = str(rec["variant"]), float(rec["ns_per_touched_page"])
        parts, joint = info[variant].parts, info[variant].joint_floor
        total = sum(floor(name) for name in parts) if parts else nan
        with_sigsegv = total - floor(parts[0]) + \
            floor("sigsegv-roundtrip") if parts else nan
        least = floor(joint) + floor("page-compute") if joint else nan
        rows.append({"variant": variant, "generator": rec["generator"],
                     "ns_per_touched_page": per_page,
                     "parts": " + ".join(parts),
                     "sum_of_parts_ns": total,
                     "over_sum_of_parts": per_page / total,
                     "over_sum_with_sigsegv": per_page / with_sigsegv,
                     "least": f"{joint} + page-compute" if joint else "",
                     "least_ns": least,
                     "over_least": per_page / least})
    out = pd.DataFrame(rows)
    return out if out.empty else \
        out.sort_values("ns_per_touched_page", kind="stable")


def sigbus_around_table(df: pd.DataFrame,
                        floors: pd.DataFrame) -> pd.DataFrame:
    """uffd-sigbus, hash, sequential scan at fault-around 16: time per page
    next to the least it can cost (a 16-page UFFDIO_COPY per page, the
    page's computation, a sixteenth of the SIGBUS), both over the time per
    page at fault-around 1."""
    floor = floor_lookup(floors)
    seq = df[~df.warm & (df.variant == "uffd-sigbus") &
             (df.generator == "hash") & (df.workload == "seq") &
             (df.fraction == 1.0)].set_index("fault_around")
    if 1 not in seq.index or 16 not in seq.index:
        return pd.DataFrame()
    per_page = seq["ns_per_touched_page"].astype(float).to_dict()
    fa1, fa16 = per_page[1], per_page[16]
    least = (floor("uffdio-copy-16") +
             floor("page-compute") +
             floor("sigbus-uffd-roundtrip") / 16)
    return pd.DataFrame([{
        "fa1_ns_per_page": fa1, "fa16_ns_per_page": fa16,
        "fa16_over_fa1": fa16 / fa1,
        "least_fa16_ns_per_page": least,
        "least_over_fa1": least / fa1}])


def summary_table(df: pd.DataFrame, warm: bool = False) -> pd.DataFrame:
    """ns per touched element: one row per (generator, workload, fraction),
    one column per variant; first passes, or warm passes.  One level at a
    time: each cell is one case's row of results.csv, and a duplicate case
    raises (pivot, never an averaging pivot_table)."""
    df = df[(df.warm == warm) & (df.fault_around == 1)]
    keys = ["generator", "workload", "fraction"]
    t = df.pivot(index=keys, columns="variant",
                 values="ns_per_touched_element")
    # in the order the cases ran, not sorted
    rows = list(dict.fromkeys(df[keys].itertuples(index=False, name=None)))
    t = t.reindex(index=pd.MultiIndex.from_tuples(rows, names=keys),
                  columns=list(dict.fromkeys(df.variant)))
    t.index = pd.MultiIndex.from_tuples(
        [(g, w, format_fraction(f)) for g, w, f in t.index],
        names=["generator", "workload", "touched"])
    t.columns.name = None
    return t


def redirect_table(df: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Per fault, for the redirect variants' first passes: the fault over
    the bare SIGSEGV floor, and what decoding on every fault adds next to
    Capstone's decode timed alone."""
    floor = floor_lookup(floors)
    cold = df[~df.warm & (df.faults > 0) & (df.fault_around == 1)]
    rows = []
    for (g, w, f), grp in cold.groupby(["generator", "workload", "fraction"],
                                       sort=False):
        per = grp.set_index("variant")
        if "sigsegv-redirect" not in per.index:
            continue
        times, faults = per["time_s"].to_dict(), per["faults"].to_dict()

        def per_fault(variant: str) -> float:
            return float(times[variant]) * 1e9 / float(faults[variant])

        fault = per_fault("sigsegv-redirect")
        row = {"generator": g, "workload": w,
               "touched": format_fraction(float(f)),
               "ns_per_fault": fault,
               "over_sigsegv_floor": fault / floor("sigsegv-roundtrip")}
        if "sigsegv-redirect-nocache" in per.index:
            nocache = per_fault("sigsegv-redirect-nocache")
            row["nocache_ns_per_fault"] = nocache
            row["decode_added_ns"] = nocache - fault
            row["decode_floor_ns"] = floor("decode")
        if "sigsegv-redirect-essay" in per.index:
            # the price of safety: the single step that puts the handle
            # back, against the essay's handler that leaves it moved
            essay = per_fault("sigsegv-redirect-essay")
            row["essay_ns_per_fault"] = essay
            row["single_step_added_ns"] = fault - essay
            row["safe_over_essay"] = fault / essay
        # the least a safe redirect costs: fault plus single-step trap
        row["over_sigsegv_step_floor"] = fault / floor("sigsegv-step")
        rows.append(row)
    return pd.DataFrame(rows)


def python_speedup_table(py: pd.DataFrame) -> pd.DataFrame:
    """Python-level first passes: the fastest lazy C variant read through
    its view against the fastest pure-Python thunk, per case."""
    cold = py[~py.warm]
    bases = base_variants()
    rows = []
    for (g, w, f), grp in cold.groupby(["generator", "workload", "fraction"],
                                       sort=False):
        python = grp[grp.variant.isin(KINDS)]
        c_lazy = grp[~grp.variant.isin(KINDS) & ~grp.variant.isin(bases)]
        if python.empty or c_lazy.empty:
            continue
        best_py = python.sort_values("ns_per_touched_element").iloc[0]
        best_c = c_lazy.sort_values("ns_per_touched_element").iloc[0]
        # building the array (untimed in the pass) per touched element:
        # all n Python thunk objects, against the C array's set-up
        py_build = best_py.build_ms * 1e6 / best_py.accesses
        c_build = best_c.build_ms * 1e6 / best_c.accesses
        rows.append({"generator": g, "workload": w,
                     "touched": format_fraction(float(str(f))),
                     "best_c_variant": best_c.variant,
                     "best_c_ns": best_c.ns_per_touched_element,
                     "best_python_thunk": best_py.variant,
                     "best_python_ns": best_py.ns_per_touched_element,
                     "c_times_faster": best_py.ns_per_touched_element /
                     best_c.ns_per_touched_element,
                     "python_build_ns_per_touched": py_build,
                     "c_build_ns_per_touched": c_build,
                     "c_times_faster_with_build":
                         (best_py.ns_per_touched_element + py_build) /
                         (best_c.ns_per_touched_element + c_build)})
    return pd.DataFrame(rows)





def _shown(table: pd.DataFrame, text: str = "") -> Part | None:
    """A table with its note, or None when it has no rows."""
    return None if table.empty else Part(text, (table,))


# Tables wider than this many columns are split (keys kept in each part).
MAX_COLUMNS = 10


def split_columns(table: pd.DataFrame, keys: list[str],
                  groups: list[list[str]] | None = None,
                  limit: int = MAX_COLUMNS) -> tuple[pd.DataFrame, ...]:
    """`table` as tables of at most `limit` columns, each with the `keys`
    columns first; `groups` (lists of the other columns) stay together
    where they fit, in order; columns no group names follow, one by one."""
    rest = [c for c in table.columns if c not in keys]
    named = [[c for c in g if c in rest] for g in groups or []]
    placed = {c for g in named for c in g}
    named += [[c] for c in rest if c not in placed]
    width = max(limit - len(keys), 1)
    parts: list[list[str]] = []
    for group in named:
        for k in range(0, len(group), width):
            chunk = group[k:k + width]
            if parts and len(parts[-1]) + len(chunk) <= width:
                parts[-1] += chunk
            else:
                parts.append(chunk)
    return tuple(table[keys + p] for p in parts)


def split_by_variant(table: pd.DataFrame, keys: list[str]
                     ) -> tuple[pd.DataFrame, ...]:
    """A per-variant table (a column per variant) in parts of at most
    MAX_COLUMNS columns, one or more mechanism families each, eager's
    column in each (kept beside the keys)."""
    lead = [BASE_VARIANT] if BASE_VARIANT in table.columns else []
    by_family: dict[str, list[str]] = {}
    for v in table.columns:
        if v not in keys and v not in lead:
            by_family.setdefault(family_of(v).key, []).append(v)
    return split_columns(table, keys + lead,
                         list(by_family.values())) or (table,)


@section("Headline", terminal=2)
def _headline(fr: Frames) -> Part | None:
    head = headline.build(fr.cases, fr.floors)
    if head is None:
        return None
    where = []
    if head.c_ref is not None:
        n = next((int(e.c["n"]) for e in head.entries.values()
                  if e.c is not None), 0)
        where.append(f"C workload loop: {head.c_ref.describe()}, "
                     f"{n:,} elements")
    if head.python_ref is not None:
        n = next((int(e.python["n"]) for e in head.entries.values()
                  if e.python is not None), 0)
        where.append(f"read from Python: {head.python_ref.describe()}, "
                     f"{n:,} elements")
    where_text = "Fault-around 1; " + "; ".join(where) + "."
    signal = f"{fmt.sig(head.signal_floor_ns)} ns"
    eager = ("Eager's times leave out computing its array; a lazy "
             "variant's include computing what it touches.")
    text = (f"{where_text} Each figure is one results.csv cell: "
            f"{headline.legend()}. Bare SIGSEGV round trip: {signal} "
            f"(floors.csv). {eager}")
    short = (f"{where_text} page_x_sig: over the bare SIGSEGV round trip "
             f"({signal}); x: over eager. {eager} Each figure is one "
             "results.csv cell (report.md says which).")
    return Part(text, (head.table,),
                "\n".join(f"- {s}" for s in head.sentences),
                terminal_columns=headline.COLUMNS[1:], terminal_text=short)


@section("Unavailable variants")
def _unavailable(fr: Frames) -> Part | None:
    gone = fr.run.meta.get("unavailable")
    if not gone:
        return None
    return Part("\n".join(f"- `{u['variant']}`: {u['reason']}"
                          for u in gone))


@section("Floors (ns per operation)", terminal=1)
def _floors(fr: Frames) -> Part | None:
    return Part(tables=(fr.floors,), floatfmt=".1f",
                terminal_columns=("floor", "ns_per_op"))


def _summary(level: levels.Level, warm: bool) -> Callable[[Frames],
                                                          Part | None]:
    def build(fr: Frames) -> Part | None:
        df = fr.level(level.key)
        if df.empty or (warm and not df.warm.any()):
            return None
        text = level.note.format(n=int(df.n.iloc[0])) if not warm else ""
        table = summary_table(df, warm=warm).reset_index()
        return Part(text, split_by_variant(
            table, ["generator", "workload", "touched"]))
    return build


for _level in levels.LEVELS.values():
    section(f"ns per touched element, {_level.title}, first pass"
            )(_summary(_level, warm=False))
    section(f"ns per touched element, {_level.title}, warm pass over "
            "evaluated elements")(_summary(_level, warm=True))


@section("sigsegv-redirect per fault")
def _redirect(fr: Frames) -> Part | None:
    table = redirect_table(fr.level("c"), fr.floors)
    if table.empty:
        return None
    return Part("sigsegv-redirect single-steps the redirected instruction "
                "and puts the handle back (a SIGTRAP per fault); "
                "sigsegv-redirect-essay is the essay's handler, which "
                "leaves the register moved and is safe only in the "
                "suite's own loops. single_step_added_ns is the price of "
                "that safety.",
                split_columns(table, ["generator", "workload", "touched",
                                      "ns_per_fault"],
                              [["over_sigsegv_floor",
                                "over_sigsegv_step_floor"],
                               ["nocache_ns_per_fault", "decode_added_ns",
                                "decode_floor_ns"],
                               ["essay_ns_per_fault", "single_step_added_ns",
                                "safe_over_essay"]]))


@section("The lazy page: each mechanism against its parts and its least cost")
def _page_budget(fr: Frames) -> Part | None:
    return _shown(page_budget_table(fr.level("c"), fr.floors),
                  "hash, seq, 100 %, fault-around 1, fastest first. parts: "
                  "the floors a fault is made of, timed apart; least: the "
                  "joint floor (the signal resolved by the mechanism's own "
                  "installation in a minimal handler) plus page-compute, "
                  "the least a lazy page of that mechanism can cost here.")


@section("Fault-around, fixed and adaptive")
def _fault_around(fr: Frames) -> Part | None:
    return _shown(fault_around_table(fr.level("c")))


@section("uffd-sigbus at fault-around 16 against the least it can cost")
def _sigbus_around(fr: Frames) -> Part | None:
    return _shown(sigbus_around_table(fr.level("c"), fr.floors),
                  "least = floor uffdio-copy-16 + page-compute + "
                  "sigbus-uffd-roundtrip / 16 (per page).")


PER_PAGE_COLUMNS = [
    "variant", "generator", "workload", "fraction", "warm", "fault_around",
    "ns_per_touched_page", "page_over_sigsegv_floor",
    "page_over_mprotect_floor", "faults_per_touched_page",
    "faults_per_access", "fault_over_sigsegv_floor", "second_pass_faults",
    "max_nesting"]
COUNTER_COLUMNS = [
    "variant", "generator", "workload", "fraction", "warm", "fault_around",
    "faults", "pages_materialised", "elements_materialised",
    "generator_calls", "decodes", "decode_hits", "decode_misses",
    "evicted_pages", "minor_faults", "vol_ctx_switches", "invol_ctx_switches",
    "vol_ctx_per_fault", "invol_ctx_per_fault", "build_ms"]


def per_page_frame(fr: Frames) -> pd.DataFrame:
    """Every C-level case of a lazy variant, per touched page (per_page.csv:
    results.csv's rows, these columns)."""
    df = fr.level("c")
    if df.empty:
        return df
    lazy = df[~df.variant.isin(base_variants())]
    return lazy[PER_PAGE_COLUMNS +
                [ratio_column(b) for b in base_variants()]]


def counters_frame(fr: Frames) -> pd.DataFrame:
    """Every C-level case's counters (counters.csv)."""
    df = fr.level("c")
    return df if df.empty else df[COUNTER_COLUMNS]


def case_label(row: Any) -> str:
    label = f"{row.generator}/{row.workload}/{format_fraction(row.fraction)}"
    if row.fault_around != 1:
        label += f"/fa{format_fault_around(row.fault_around)}"
    return label + ("/warm" if row.warm else "")


def per_page_summary(per_page: pd.DataFrame) -> pd.DataFrame:
    """For each lazy variant, its first passes at fault-around 1: how many,
    and the case with the lowest and the highest time per touched page
    (each one row of per_page.csv)."""
    cold = per_page[~per_page.warm & (per_page.fault_around == 1)]
    rows = []
    for variant, grp in cold.groupby("variant", sort=False):
        ordered = grp.sort_values("ns_per_touched_page")
        low, high = ordered.iloc[0], ordered.iloc[-1]
        rows.append({"variant": variant, "cases": len(grp),
                     "lowest_case": case_label(low),
                     "lowest_ns_per_page": low.ns_per_touched_page,
                     "highest_case": case_label(high),
                     "highest_ns_per_page": high.ns_per_touched_page})
    return pd.DataFrame(rows)


def _profiles(fr: Frames) -> list[dict[str, Any]]:
    return fr.run.meta.get("profiles") or []


@section("Where a fault's time goes (profiled)")
def _phases(fr: Frames) -> Part | None:
    recs = _profiles(fr)
    if not recs:
        return None
    floor = floor_lookup(fr.floors)
    beside = ", ".join(f"{name} {fmt.sig(floor(name) / 1000)} us"
                       for name, _ in profplots.MARKED_FLOORS
                       if floor(name) == floor(name))
    skipped = fr.run.meta.get("profiles_skipped") or []
    phases = profframes.phases_frame(recs)
    return Part(
        f"Every fault-driven variant profiled at "
        f"{recs[0]['generator']} {recs[0]['workload']} "
        f"{recs[0]['fraction']:.0%} touched on {recs[0]['n']:,} elements, "
        "after the timed runs (`python -m lazybench profile VARIANT` for "
        "one case in depth). Phases are stamped with the TSC (calibrated "
        "against CLOCK_MONOTONIC, profiles.csv): delivery from just "
        "before the faulting access to handler entry (uffd-thread: to "
        "the handler thread's receipt of the event), resolve (the "
        "handler's work, split: resolve 1 is lookup and decode for "
        "sigsegv-redirect, lookup and computing the page for the others; "
        "resolve 2 forcing the thunk, or installing the page; resolve 3 "
        "the register rewrite, or publishing the page), resume from "
        "handler exit (uffd-thread: UFFDIO_COPY's return) to just after "
        "the access (sigsegv-redirect: to its single-step trap, then the "
        "step handler, then after the step). The second table is the "
        "mean us per phase, the third the total's percentiles, by "
        "nearest rank over a log-bucket histogram (1/32 of a power of "
        "two per bucket); every phase's percentiles are in phases.csv, "
        "the raw histograms in phase_histograms.csv. \"us per "
        "fault\" is the case timed uninstrumented in the same profile; "
        "the round trip is the strided workload, where every access "
        "faults, timed uninstrumented and profiled in alternating rounds "
        "(trip_rounds in profiles.csv; medians), and the overhead the "
        "median of the rounds' "
        "profiled/uninstrumented ratios.",
        (profreport.summary_table(profframes.summary_frame(recs)),
         profreport.phase_means_table(phases),
         profreport.total_percentiles_table(phases)),
        after=(f"The bare floors of this run (floors.csv, medians): "
               f"{beside}." + "".join(
                   f"\n- `{r['variant']}` not profiled: {r['reason']}"
                   for r in skipped)))


@section("Switches per fault: the essay's \"two context switches\"")
def _switch_accounting(fr: Frames) -> Part | None:
    recs = _profiles(fr)
    if not recs:
        return None
    table = profreport.essay_table(profframes.switches_frame(recs),
                                   profframes.summary_frame(recs))
    return Part(
        "Per lazily computed page (element, for sigsegv-redirect), "
        "measured over the profile's uninstrumented runs (getrusage, perf "
        "software events of the whole process, handler threads included) "
        "and its profiled runs (signals and fault-path system calls, "
        "counted by the core), beside the mechanism's transition model. "
        "A kernel entry is an exception, a system call or an "
        "rt_sigreturn: two user/kernel mode transitions. A perf event "
        "that did not match a known count (user-mode-only counting under "
        "perf_event_paranoid) is shown as not permitted. Full accounting: "
        "switches.csv.",
        (table,),
        after=profreport.essay_answer(table))


@section("Lazy variants per touched page")
def _lazy(fr: Frames) -> Part | None:
    per_page = per_page_frame(fr)
    if per_page.empty:
        return None
    return Part(f"Every case of a lazy C variant ({len(per_page)} rows, "
                "warm passes and fault-around included) is in "
                f"`{PER_PAGE_CSV_FILE}`: time and faults per touched page, "
                "against the floors and eager. Here, first passes at "
                "fault-around 1: each variant's cheapest and dearest case "
                "per touched page.",
                (per_page_summary(per_page),))


@section("Counters (untimed verification pass)")
def _counters(fr: Frames) -> Part | None:
    counters = counters_frame(fr)
    if counters.empty:
        return None
    return Part(f"The counters of every C-level case ({len(counters)} rows: "
                "faults, pages and elements materialised, generator calls, "
                "decodes, minor faults and context switches of the untimed "
                f"verification pass) are in `{COUNTERS_CSV_FILE}`, and with "
                f"the Python-level cases in `{CSV_FILE}`.")


@section("Best lazy C variant against the best Python thunk, from Python")
def _python_speedup(fr: Frames) -> Part | None:
    py = fr.level("python")
    table = python_speedup_table(py) if not py.empty else py
    if table.empty:
        return None
    return Part("Best by time per touched element of the pass. The build "
                "columns spread the one-off cost of creating the array "
                "(all n thunk objects for Python; the mappings for C; one "
                "untimed measurement) over the touched elements.",
                split_columns(table, ["generator", "workload", "touched"],
                              [["best_c_variant", "best_c_ns",
                                "best_python_thunk", "best_python_ns",
                                "c_times_faster"],
                               ["python_build_ns_per_touched",
                                "c_build_ns_per_touched",
                                "c_times_faster_with_build"]]))


def _built(fr: Frames) -> list[tuple[Section, Part]]:
    return [(s, part) for s in SECTIONS
            if (part := s.build(fr)) is not None]


# Keys run.json's "machine" has had since it records more than the kernel,
# Python and library versions; a run without any of them predates that.
_MACHINE_KEYS = ("cpu_model", "tsc_hz", "mitigations", "thp", "uffd_usable",
                 "compiler", "lazybench")


def _fact(machine: dict[str, Any], key: str, fmt: str = "{}") -> str:
    if key not in machine:
        return "not recorded"
    value = machine[key]
    return "unknown" if value is None else fmt.format(value)


def _mitigation_summary(mit: dict[str, str]) -> str:
    groups: dict[str, list[str]] = {}
    for name, text in mit.items():
        kind = ("not affected" if text.startswith("Not affected") else
                "vulnerable" if text.startswith("Vulnerable") else
                "mitigated" if text.startswith("Mitigation") else "other")
        groups.setdefault(kind, []).append(name)
    parts = [f"{len(groups.pop('not affected'))} not affected"
             if "not affected" in groups else ""]
    parts += [f"{kind}: {', '.join(names)}" for kind, names in groups.items()]
    return "; ".join(p for p in parts if p) or "none listed"


def machine_block(machine: dict[str, Any]) -> list[str]:
    """The header's Machine lines (markdown), from run.json's "machine"."""
    if not any(k in machine for k in _MACHINE_KEYS):
        return ["Machine: CPU model, microcode, TSC rate, mitigations, "
                "kernel settings, userfaultfd, compiler and revision "
                "not recorded (an older run).", ""]
    f = machine
    cpuid = (f"family {_fact(f, 'cpu_family')} model "
             f"{_fact(f, 'cpu_model_number')} stepping "
             f"{_fact(f, 'cpu_stepping')}")
    under = {True: ", under a hypervisor", False: ""}.get(
        f.get("hypervisor"), "")
    mit = f.get("mitigations")
    if "uffd_usable" not in f:
        uffd = "not recorded"
    elif f["uffd_usable"]:
        uffd = f"usable, via {_fact(f, 'uffd_how')}"
    else:
        uffd = f"not usable ({_fact(f, 'uffd_refused')})"
    tsc = _fact(f, "tsc_hz")
    if isinstance(f.get("tsc_hz"), (int, float)):
        tsc = f"{f['tsc_hz'] / 1e6:.2f} MHz"
    rev = _fact(f, "git_revision")
    if f.get("git_revision"):
        rev = f["git_revision"][:12] + (
            " (dirty)" if f.get("git_dirty") else "")
    return [
        "Machine:", "",
        f"- CPU: {_fact(f, 'cpu_model')} ({_fact(f, 'cpu_vendor')} {cpuid}, "
        f"microcode {_fact(f, 'microcode')}){under}",
        f"- TSC (measured): {tsc}; cpu MHz {_fact(f, 'cpu_mhz')}, bogomips "
        f"{_fact(f, 'bogomips')}, cpufreq max "
        f"{_fact(f, 'cpufreq_max_khz', '{} kHz')}",
        f"- Kernel: THP {_fact(f, 'thp')}, vm.max_map_count "
        f"{_fact(f, 'max_map_count')}, vm.unprivileged_userfaultfd "
        f"{_fact(f, 'unprivileged_userfaultfd')}, "
        f"kernel.perf_event_paranoid {_fact(f, 'perf_event_paranoid')}",
        f"- userfaultfd: {uffd}",
        "- Mitigations: " + (_mitigation_summary(mit) if isinstance(mit, dict) else
                             _fact(f, "mitigations")),
        f"- Build: {_fact(f, 'compiler')}; lazybench "
        f"{_fact(f, 'lazybench')}, git {rev}", ""]


def _markdown_table(table: pd.DataFrame, floatfmt: str) -> str:
    return tabulate.tabulate(
        fmt.render(table, floatfmt).values.tolist(),
        headers=list(table.columns), tablefmt="pipe", disable_numparse=True,
        colalign=["right" if r else "left" for r in fmt.right_aligned(table)])


def markdown(fr: Frames, plots: list[pathlib.Path]) -> str:
    m = fr.run.meta
    out = [f"# lazybench run `{m['name']}`", "",
           f"Profile `{m['profile']}`, {m['created']}, "
           f"{m['machine'].get('cpu_count')} CPUs, kernel "
           f"{m['machine'].get('kernel')}, Python {m['machine'].get('python')},"
           f" Capstone {m['machine'].get('capstone_wheel')}.", "",
           *machine_block(m['machine'])]
    for sec, part in _built(fr):
        out += [f"## {sec.title}", ""]
        if part.text:
            out += [part.text, ""]
        for table in part.tables:
            out += [_markdown_table(table, part.floatfmt), ""]
        if part.after:
            out += [part.after, ""]
        if sec.title == "Headline":
            out += [HOW_TO_READ, ""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{p.stem}]({p.as_posix()})" for p in plots]
        out.append("")
    return "\n".join(out)


HOW_TO_READ = (
    "Times are pyperf medians of the timed pass (the C workload loop, or "
    "the Python loop for the Python level), divided by the elements (or "
    "distinct pages) the workload touched. Floors were measured in the "
    "same run: with the TSC rate they are the run's own host-sensitive "
    "reference (section Floors, floors.csv, run.json `floors`, "
    "pyperf.json). Every figure below is one row of results.csv or "
    "floors.csv; the long tables are per_page.csv and counters.csv.")


def _wrap(text: str, width: int = 79) -> str:
    lines = []
    for para in text.splitlines():
        indent = "  " if para.startswith("- ") else ""
        lines += textwrap.wrap(para, width, subsequent_indent=indent,
                               break_on_hyphens=False) or [""]
    return "\n".join(lines)


def terminal(fr: Frames) -> str:
    """The sections ranked for the terminal, in their rank order, as plain
    text: the headline comes last, so it is what a run leaves on the
    screen."""
    out = []
    ranked = sorted((s for s in SECTIONS if s.terminal),
                    key=lambda s: s.terminal)
    for sec in ranked:
        part = sec.build(fr)
        if part is None:
            continue
        out += ["", f"{sec.title}:"]
        text = part.text if part.terminal_text is None else part.terminal_text
        if text:
            out += [_wrap(text), ""]
        for table in part.tables:
            if part.terminal_columns:
                table = table[[c for c in part.terminal_columns
                               if c in table.columns]]
            out.append(fmt.plain_table(table, part.floatfmt))
        if part.after:
            out += ["", _wrap(part.after)]
    return "\n".join(out)


def write_report(run: RunData) -> tuple[Frames, list[pathlib.Path]]:
    """(Re)write the CSVs, plots and Markdown report of a run folder;
    returns the frames they were made from and the files written."""
    from lazybench import _plots as plotting
    from lazybench import _sweepplots as sweepplots

    fr = Frames.of(run)
    folder = run.folder
    atomic_write(folder / CSV_FILE,
                 fr.all_cases.to_csv(index=False).encode())
    atomic_write(folder / FLOORS_CSV_FILE,
                 fr.floors.to_csv(index=False).encode())
    atomic_write(folder / PER_PAGE_CSV_FILE,
                 per_page_frame(fr).to_csv(index=False).encode())
    atomic_write(folder / COUNTERS_CSV_FILE,
                 counters_frame(fr).to_csv(index=False).encode())
    pngs = plotting.write_plots(fr, folder)
    profile_csvs: list[pathlib.Path] = []
    if recs := _profiles(fr):
        profile_csvs = profreport.write_tables(recs, folder)
        pngs += profplots.write(
            profframes.phases_frame(recs), profframes.histograms_frame(recs),
            {f: floor_lookup(fr.floors)(f) for f, _ in profplots.MARKED_FLOORS},
            folder / plotting.PLOTS_DIR, profreport.scope(recs))
    be, cheap, levels = sweepreport.frames(fr)
    sweep_csvs = sweepreport.write_tables(fr, be, cheap, folder)
    pngs += sweepplots.write(fr.sweeps, be, cheap, levels,
                             folder / plotting.PLOTS_DIR,
                             fr.run.meta.get("skipped", []))
    rel = [p.relative_to(folder) for p in pngs]
    atomic_write(folder / REPORT_FILE, markdown(fr, rel).encode())
    return fr, [folder / CSV_FILE, folder / FLOORS_CSV_FILE,
                folder / PER_PAGE_CSV_FILE, folder / COUNTERS_CSV_FILE,
                *profile_csvs, *sweep_csvs, folder / REPORT_FILE, *pngs]


# the sweeps' sections follow the ones above
from lazybench import _sweepreport as sweepreport  # noqa: E402
