"""Tidy tables from a run: one row per case, one per floor; CSV and
Markdown.  Times are pyperf's medians of the per-loop workload time."""
from __future__ import annotations

import pathlib
from typing import Any, Callable

import pandas as pd

from lazybench.results import RunData, atomic_write
from lazybench.suite import format_fraction

CSV_FILE = "results.csv"
FLOORS_CSV_FILE = "floors.csv"
REPORT_FILE = "report.md"


def _stats(run: RunData, name: str) -> dict[str, float]:
    bench = run.benchmark(name)
    if bench is None or bench.get_nvalue() == 0:
        return {"time_s": float("nan"), "time_mean_s": float("nan"),
                "time_stdev_s": float("nan"), "values": 0}
    values = bench.get_values()
    return {"time_s": bench.median(), "time_mean_s": bench.mean(),
            "time_stdev_s": bench.stdev() if len(values) > 1 else 0.0,
            "values": len(values)}


def floors_frame(run: RunData) -> pd.DataFrame:
    rows = []
    for name, text in run.meta.get("floors", {}).items():
        s = _stats(run, f"floor/{name}")
        rows.append({"floor": name, "ns_per_op": s["time_s"] * 1e9,
                     "stdev_ns": s["time_stdev_s"] * 1e9,
                     "values": s["values"], "what": text})
    return pd.DataFrame(rows, columns=["floor", "ns_per_op", "stdev_ns",
                                       "values", "what"])


def floor_lookup(floors: pd.DataFrame) -> Callable[[str], float]:
    """ns per operation of a floor of this run; NaN where it was not
    measured (a refused kernel feature, an older run)."""
    table = {str(k): float(v) for k, v in
             floors.set_index("floor")["ns_per_op"].to_dict().items()}
    return lambda name: table.get(name, float("nan"))


def cases_frame(run: RunData) -> pd.DataFrame:
    floor = floor_lookup(floors_frame(run))
    rows: list[dict[str, Any]] = []
    for rec in run.meta["cases"]:
        case = rec["case"]
        s = _stats(run, rec["name"])
        warm = bool(case.get("warm", False))
        # a warm case times second passes: its counters are the second's
        c = rec["second_pass"] if warm else rec["counters"]
        ru = ({k: float("nan") for k in rec["rusage"]} if warm
              else rec["rusage"])
        pages = max(rec["touched_pages"], 1)
        ns = s["time_s"] * 1e9
        rows.append({
            "variant": case["variant"], "generator": case["generator"],
            "workload": case["workload"], "fraction": case["fraction"],
            "warm": warm, "level": case.get("level", "c"),
            "fault_around": int(case.get("fault_around", 1)), "n": case["n"], "accesses": rec["accesses"],
            "touched_pages": rec["touched_pages"],
            "time_s": s["time_s"], "time_stdev_s": s["time_stdev_s"],
            "values": s["values"],
            "ns_per_touched_element": ns / max(rec["accesses"], 1),
            "ns_per_touched_page": ns / pages,
            "faults": c["faults"],
            "faults_per_touched_page": c["faults"] / pages,
            "faults_per_access": c["faults"] / max(rec["accesses"], 1),
            "second_pass_faults": rec["second_pass"]["faults"],
            "pages_materialised": c["pages_materialised"],
            "elements_materialised": c["elements_materialised"],
            "generator_calls": c["generator_calls"],
            "max_nesting": c["max_nesting"],
            "decodes": c.get("decodes", 0),
            "decode_hits": c.get("decode_hits", 0),
            "decode_misses": c.get("decode_misses", 0),
            "minor_faults": ru["minflt"],
            "vol_ctx_switches": ru["nvcsw"],
            "invol_ctx_switches": ru["nivcsw"],
            "vol_ctx_per_fault":
                ru["nvcsw"] / c["faults"] if c["faults"] else float("nan"),
            "invol_ctx_per_fault":
                ru["nivcsw"] / c["faults"] if c["faults"] else float("nan"),
            "build_ms": rec["build_ns"] / 1e6,
            "page_over_sigsegv_floor":
                ns / pages / floor("sigsegv-roundtrip"),
            "page_over_mprotect_floor":
                ns / pages / floor("mprotect"),
            "fault_over_sigsegv_floor":
                ns / max(c["faults"], 1) /
                floor("sigsegv-roundtrip")
                if c["faults"] else float("nan"),
        })
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for base, column in (("eager", "x_eager"),
                         ("eager-handles", "x_eager_handles")):
        df[column] = _ratio_to(df, base)
    return df


def _ratio_to(df: pd.DataFrame, base: str) -> list[float]:
    """ns per touched element over `base`'s for the same case."""
    keys = ["level", "generator", "workload", "fraction", "warm"]
    ref = df[(df.variant == base) & (df.fault_around == 1)] \
        .set_index(keys)["ns_per_touched_element"]
    return [row.ns_per_touched_element /
            ref.get((row.level, row.generator, row.workload, row.fraction,
                     row.warm), float("nan"))
            for row in df.itertuples()]


def fault_around_table(df: pd.DataFrame) -> pd.DataFrame:
    """Sequential scans at each fault-around: ns and faults per touched
    page, and the time per page over the same variant's fault-around 1."""
    fa = df[~df.warm & (df.workload == "seq")]
    around = fa[fa.fault_around > 1]
    fa = fa[fa.variant.isin(around.variant) &
            fa.generator.isin(around.generator)]
    if fa.empty:
        return fa
    fa = fa[fa.fraction == fa.fraction.max()]
    base = fa[fa.fault_around == 1].set_index(["variant", "generator"])
    out = fa[["variant", "generator", "fault_around", "ns_per_touched_page",
              "faults_per_touched_page"]].copy()
    out["over_fault_around_1"] = [
        row.ns_per_touched_page /
        base["ns_per_touched_page"].get((row.variant, row.generator),
                                        float("nan"))
        for row in out.itertuples()]
    return out.sort_values(["variant", "fault_around"])


# The bare operations a page-granular variant performs per fault, in order:
# the signal it takes, the call that opens or installs the page, and the
# page's computation.  Each is a floor of the same run.
PAGE_PARTS: dict[str, tuple[str, ...]] = {
    "sigsegv-mprotect": ("sigsegv-roundtrip", "mprotect", "page-compute"),
    "uffd-sigbus": ("sigbus-uffd-roundtrip", "uffdio-copy", "page-compute"),
}


# Floors that time a variant's signal and page installation together.
PAGE_JOINT: dict[str, str] = {"uffd-sigbus": "sigbus-copy"}


def page_budget_table(df: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Sequential scans of hash at 100 % touched, fault-around 1: time per page of
    the variants in PAGE_PARTS against the sum of their parts' floors,
    against the same sum with the bare SIGSEGV as the signal, and against
    the joint floor (PAGE_JOINT) plus the page's computation."""
    floor = floor_lookup(floors)
    # page-compute is the hash generator's page: only hash cases compare
    cases = df[~df.warm & (df.workload == "seq") & (df.fraction == 1.0) &
               (df.fault_around == 1) & (df.generator == "hash") &
               df.variant.isin(list(PAGE_PARTS))]
    rows = []
    for rec in cases.to_dict("records"):
        variant, per_page = str(rec["variant"]), float(rec["ns_per_touched_page"])
        parts = PAGE_PARTS[variant]
        total = sum(floor(name) for name in parts)
        with_sigsegv = total - floor(parts[0]) + \
            floor("sigsegv-roundtrip")
        # the signal and the installation measured together, in a handler
        joint = PAGE_JOINT.get(variant)
        least = (floor(joint) +
                 floor("page-compute")
                 if joint else float("nan"))
        rows.append({"variant": variant, "generator": rec["generator"],
                     "ns_per_touched_page": per_page,
                     "parts": " + ".join(parts),
                     "sum_of_parts_ns": total,
                     "over_sum_of_parts": per_page / total,
                     "over_sum_with_sigsegv": per_page / with_sigsegv,
                     "joint_floor_plus_compute_ns": least,
                     "over_joint": per_page / least})
    return pd.DataFrame(rows)


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
        row = {"generator": g, "workload": w, "fraction": f,
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
    from lazybench.pythunks import KINDS

    cold = py[~py.warm]
    rows = []
    for (g, w, f), grp in cold.groupby(["generator", "workload", "fraction"],
                                       sort=False):
        python = grp[grp.variant.isin(KINDS)]
        c_lazy = grp[~grp.variant.isin(KINDS) &
                     ~grp.variant.str.startswith("eager")]
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


def _md(df: pd.DataFrame, floatfmt: str = ".3g", index: bool = True) -> str:
    return df.to_markdown(floatfmt=floatfmt, index=index)


def markdown(run: RunData, df: pd.DataFrame, floors: pd.DataFrame,
             plots: list[pathlib.Path]) -> str:
    m = run.meta
    out = [f"# lazybench run `{m['name']}`", "",
           f"Profile `{m['profile']}`, {m['created']}, "
           f"{m['machine'].get('cpu_count')} CPUs, kernel "
           f"{m['machine'].get('kernel')}, Python {m['machine'].get('python')},"
           f" Capstone {m['machine'].get('capstone_wheel')}.", "",
           "Times are pyperf medians of the C workload loop, divided by the "
           "elements (or distinct pages) the workload touched. Floors were "
           "measured in the same run.", ""]
    if m.get("unavailable"):
        out += ["## Unavailable variants", ""]
        out += [f"- `{u['variant']}`: {u['reason']}" for u in m["unavailable"]]
        out.append("")
    out += ["## Floors", "", _md(floors, index=False), ""]
    py = df[df.level == "python"] if not df.empty else df
    df = df[df.level == "c"] if not df.empty else df
    if not df.empty:
        out += ["## Time per touched element (ns), first pass", "",
                _md(summary_table(df).reset_index(), index=False), ""]
        if df.warm.any():
            out += ["## Time per touched element (ns), warm pass over "
                    "evaluated elements", "",
                    _md(summary_table(df, warm=True).reset_index(),
                        index=False), ""]
        redirect = redirect_table(df, floors)
        if not redirect.empty:
            out += ["## sigsegv-redirect per fault", "",
                    "sigsegv-redirect single-steps the redirected "
                    "instruction and puts the handle back (a SIGTRAP per "
                    "fault); sigsegv-redirect-essay is the essay's handler, "
                    "which leaves the register moved and is safe only in "
                    "the suite's own loops. single_step_added_ns is the "
                    "price of that safety.", "",
                    _md(redirect, index=False), ""]
        budget = page_budget_table(df, floors)
        if not budget.empty:
            out += ["## Time per page against the sum of its parts", "",
                    "joint floor: the signal and the page's installation "
                    "timed together in a minimal handler (sigbus-copy), "
                    "plus page-compute.", "",
                    _md(budget, index=False), ""]
        around = fault_around_table(df)
        if not around.empty:
            out += ["## Fault-around (sequential scan)", "",
                    _md(around, index=False), ""]
        bound = sigbus_around_table(df, floors)
        if not bound.empty:
            out += ["## uffd-sigbus at fault-around 16 against the least "
                    "it can cost", "",
                    "least = floor uffdio-copy-16 + page-compute + "
                    "sigbus-uffd-roundtrip / 16 (per page).", "",
                    _md(bound, index=False), ""]
        lazy = df[~df.variant.str.startswith("eager")]
        cols = ["variant", "generator", "workload", "fraction", "warm",
                "fault_around",
                "ns_per_touched_page", "page_over_sigsegv_floor",
                "page_over_mprotect_floor", "faults_per_touched_page",
                "faults_per_access", "fault_over_sigsegv_floor",
                "second_pass_faults", "max_nesting", "x_eager",
                "x_eager_handles"]
        out += ["## Lazy variants per touched page", "",
                _md(lazy[cols], index=False), ""]
        cols = ["variant", "generator", "workload", "fraction", "warm",
                "fault_around", "faults", "pages_materialised", "elements_materialised",
                "generator_calls", "decodes", "decode_hits", "decode_misses",
                "minor_faults", "vol_ctx_switches", "invol_ctx_switches",
                "vol_ctx_per_fault", "invol_ctx_per_fault", "build_ms"]
        out += ["## Counters (untimed verification pass)", "",
                _md(df[cols], index=False), ""]
    if not py.empty:
        n = int(py.n.iloc[0])
        out += ["## Time per touched element from Python (ns), first pass",
                "", f"Read by a Python loop (`acc += get(i)`) over {n} "
                "elements: C variants through their view (a memoryview, or "
                "the core's element access where there is no flat memory), "
                "and pure-Python thunks.", "",
                _md(summary_table(py).reset_index(), index=False), ""]
        speed = python_speedup_table(py)
        if not speed.empty:
            out += ["## Best lazy C variant against the best Python thunk, "
                    "from Python", "",
                    "Best by time per touched element of the pass. The "
                    "build columns spread the one-off cost of creating the "
                    "array (all n thunk objects for Python; the mappings "
                    "for C; one untimed measurement) over the touched "
                    "elements.", "", _md(speed, index=False), ""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{p.stem}]({p.as_posix()})" for p in plots]
        out.append("")
    return "\n".join(out)


def write_report(run: RunData) -> list[pathlib.Path]:
    """(Re)write the CSVs, plots and Markdown report of a run folder."""
    from lazybench import plots as plotting

    df = cases_frame(run)
    floors = floors_frame(run)
    folder = run.folder
    atomic_write(folder / CSV_FILE, df.to_csv(index=False).encode())
    atomic_write(folder / FLOORS_CSV_FILE, floors.to_csv(index=False).encode())
    pngs = plotting.write_plots(df, folder)
    rel = [p.relative_to(folder) for p in pngs]
    atomic_write(folder / REPORT_FILE,
                 markdown(run, df, floors, rel).encode())
    return [folder / CSV_FILE, folder / FLOORS_CSV_FILE,
            folder / REPORT_FILE, *pngs]
