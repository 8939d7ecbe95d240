"""Tidy frames of a run, computed once per run: one row per case and one
per floor.  Times are pyperf's medians of the per-loop workload time; every
figure of the report is one cell of these frames (results.csv,
floors.csv)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import pandas as pd

from lazybench import _array as core
from lazybench._case import DEFAULT_SPIN, SIGNAL_FLOORS, floor_benchmark_name
from lazybench._results import RunData


def worker_means(bench: Any) -> list[float]:
    """The mean of each pyperf worker's values (a worker keeps its state,
    which CPU and which memory, for all its values)."""
    return [sum(r.values) / len(r.values) for r in bench.get_runs()
            if r.values]


def _stats(run: RunData, name: str) -> dict[str, float]:
    bench = run.benchmark(name)
    if bench is None or bench.get_nvalue() == 0:
        return {"time_s": float("nan"), "time_mean_s": float("nan"),
                "time_stdev_s": float("nan"), "values": 0,
                "best_time_s": float("nan"), "workers": 0}
    values = bench.get_values()
    means = worker_means(bench)
    return {"time_s": bench.median(), "time_mean_s": bench.mean(),
            "time_stdev_s": bench.stdev() if len(values) > 1 else 0.0,
            "values": len(values), "best_time_s": min(means),
            "workers": len(means)}


def floors_frame(run: RunData) -> pd.DataFrame:
    """One row per floor, in the order they were measured (pyperf.json
    keeps it; run.json's keys are sorted)."""
    floors = run.meta.get("floors", {})
    by_bench = {floor_benchmark_name(f): f for f in floors}
    measured = [by_bench[b.get_name()] for b in run.suite.get_benchmarks()
                if b.get_name() in by_bench]
    order = measured + [f for f in floors if f not in measured]
    rows = []
    for name, text in ((f, floors[f]) for f in order):
        s = _stats(run, floor_benchmark_name(name))
        rows.append({"floor": name, "ns_per_op": s["time_s"] * 1e9,
                     "stdev_ns": s["time_stdev_s"] * 1e9,
                     "values": s["values"],
                     "best_ns_per_op": s["best_time_s"] * 1e9,
                     "workers": s["workers"], "what": text})
    return pd.DataFrame(rows, columns=["floor", "ns_per_op", "stdev_ns",
                                       "values", "best_ns_per_op", "workers",
                                       "what"])


def floor_lookup(floors: pd.DataFrame,
                 column: str = "ns_per_op") -> Callable[[str], float]:
    """ns per operation of a floor of this run (the median, or another
    column of floors.csv); NaN where it was not measured (a refused kernel
    feature, an older run)."""
    if column not in floors:
        return lambda name: float("nan")
    table = {str(k): float(v) for k, v in
             floors.set_index("floor")[column].to_dict().items()}
    return lambda name: table.get(name, float("nan"))


def base_variants() -> tuple[str, ...]:
    """Variants that compute everything first: every case gets its time
    over theirs (columns x_<variant>)."""
    return tuple(v for v in core.VARIANTS if core.variant_info(v).base)


def ratio_column(base: str) -> str:
    return "x_" + base.replace("-", "_")


def signal_floors(floor: Callable[[str], float]) -> float:
    """The geometric mean of the two bare signal round trips, SIGSEGV and
    SIGBUS (a userfaultfd page); NaN without userfaultfd.  Two independent
    measurements of the same kind of cost: each moves with its worker's
    state, their mean half as much (README, "The CI gate")."""
    a, b = (floor(f) for f in SIGNAL_FLOORS)
    return math.sqrt(a * b) if a > 0 and b > 0 else float("nan")


def cases_frame(run: RunData, floors: pd.DataFrame) -> pd.DataFrame:
    floor = floor_lookup(floors)
    best = floor_lookup(floors, "best_ns_per_op")
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
        mem = rec.get("memory", {})
        build_ns = float(rec["build_ns"])
        rows.append({
            "name": rec["name"], "sweep": case.get("sweep", ""),
            "variant": case["variant"], "generator": case["generator"],
            "spin": int(case.get("spin", DEFAULT_SPIN)),
            "threads": int(case.get("threads", 1)),
            "placement": "disjoint" if case.get("disjoint") else "same",
            "workload": case["workload"], "fraction": case["fraction"],
            "warm": warm, "level": case.get("level", "c"),
            "fault_around": int(case.get("fault_around", 1)),
            "n": case["n"], "accesses": rec["accesses"],
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
            # absent from runs recorded before the counter existed
            "evicted_pages": c.get("evicted_pages", 0),
            "minor_faults": ru["minflt"],
            "vol_ctx_switches": ru["nvcsw"],
            "invol_ctx_switches": ru["nivcsw"],
            "vol_ctx_per_fault":
                ru["nvcsw"] / c["faults"] if c["faults"] else float("nan"),
            "invol_ctx_per_fault":
                ru["nivcsw"] / c["faults"] if c["faults"] else float("nan"),
            "build_ms": build_ns / 1e6,
            "build_ns": build_ns,
            # what the user pays: building the array plus one pass
            "total_ns": build_ns + ns,
            "tlb_shootdowns": rec.get("tlb_shootdowns", -1),
            "peak_rss_bytes": mem.get("peak_rss", -1),
            "rss_growth_bytes":
                mem["rss_after"] - mem["rss_before"]
                if mem.get("rss_before", -1) >= 0 <= mem.get("rss_after", -1)
                else -1,
            "page_over_sigsegv_floor":
                ns / pages / floor("sigsegv-roundtrip"),
            "page_over_mprotect_floor":
                ns / pages / floor("mprotect"),
            "fault_over_sigsegv_floor":
                ns / max(c["faults"], 1) /
                floor("sigsegv-roundtrip")
                if c["faults"] else float("nan"),
            "best_time_s": s["best_time_s"], "workers": s["workers"],
            "best_fault_over_sigsegv_floor":
                s["best_time_s"] * 1e9 / c["faults"] /
                best("sigsegv-roundtrip")
                if c["faults"] else float("nan"),
            "best_fault_over_signal_floors":
                s["best_time_s"] * 1e9 / c["faults"] / signal_floors(best)
                if c["faults"] else float("nan"),
        })
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    grid = df.sweep == ""
    for base in base_variants():
        df[ratio_column(base)] = float("nan")
        if grid.any():
            df.loc[grid, ratio_column(base)] = _ratio_to(df[grid], base)
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


@dataclasses.dataclass(frozen=True)
class Frames:
    """A run's frames, computed once: the report, the CSVs and the
    terminal summary all read these."""
    run: RunData
    floors: pd.DataFrame
    cases: pd.DataFrame      # the suite's grid (what most sections read)
    sweeps: pd.DataFrame     # the sweeps' cases (lazybench._sweeps)

    @classmethod
    def of(cls, run: RunData) -> "Frames":
        floors = floors_frame(run)
        df = cases_frame(run, floors)
        if df.empty:
            return cls(run, floors, df, df)
        grid = df.sweep == ""
        return cls(run, floors, df[grid].reset_index(drop=True),
                   df[~grid].reset_index(drop=True))

    @property
    def all_cases(self) -> pd.DataFrame:
        """Every case, as results.csv holds them: the grid, then the
        sweeps."""
        return pd.concat([self.cases, self.sweeps], ignore_index=True) \
            if not self.sweeps.empty else self.cases

    def floor(self, name: str) -> float:
        return floor_lookup(self.floors)(name)

    def level(self, key: str) -> pd.DataFrame:
        """The cases of one level (see lazybench._levels)."""
        df = self.cases
        return df[df.level == key] if not df.empty else df
