"""Profiles as stored and as tables.

A profile is kept as one JSON record (``profile.json`` of a ``profile``
folder, or one item of run.json's ``profiles``); every table, CSV and plot
of it is made from those records here, so each printed or plotted figure
is one row of phases.csv, phase_histograms.csv, switches.csv or
profiles.csv.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pandas as pd

from lazybench import _profile as profiling
from lazybench import _switches as switches

PHASES_CSV = "phases.csv"
HISTOGRAMS_CSV = "phase_histograms.csv"
SWITCHES_CSV = "switches.csv"
PROFILES_CSV = "profiles.csv"
RECORD_KEYS = ("variant", "generator", "workload", "fraction", "n",
               "phases", "histograms", "switches", "floors", "summary")


class RecordError(ValueError):
    """A stored profile record that is not one."""


def record(p: profiling.Profiled) -> dict[str, Any]:
    """The JSON record of a profile (times in ns, histograms' bucket
    edges converted from TSC ticks)."""
    per_ns = 1e9 / p.calibration.hz
    hists = {ph: [[b.lo * per_ns, (b.hi + 1) * per_ns, b.count]
                  for b in h.buckets] for ph, h in p.histograms.items()}
    m = p.model
    return {
        "variant": p.variant, "generator": p.generator,
        "workload": p.workload, "fraction": p.fraction, "n": p.n,
        "phases": [dataclasses.asdict(s) for s in p.phases],
        "histograms": hists,
        "switches": [dict(dataclasses.asdict(r),
                          agrees=switches.agrees(r))
                     for r in p.switch_rows()],
        "events": {k: dataclasses.asdict(v) for k, v in p.events.items()},
        "floors": p.floors,
        "summary": {
            "faults_timed": p.counts["faults"],
            "incomplete": p.counts["incomplete"],
            "early": p.counts["early"], "skewed": p.counts["skewed"],
            "plain_ns_per_fault": p.plain_ns_per_fault,
            "over_round_trip": p.over_round_trip,
            "roundtrip_plain_ns": p.roundtrip_plain_ns,
            "roundtrip_profiled_ns": p.roundtrip_profiled_ns,
            "overhead": p.overhead, "trip_rounds": p.trip_rounds,
            "tsc_hz_before": p.calibration.before_hz,
            "tsc_hz_after": p.calibration.after_hz,
            "tsc_hz": p.calibration.hz,
            "tsc_drift": p.calibration.drift,
            "mechanism": m.mechanism,
            "model_kernel_entries": m.kernel_entries,
            "model_switches": m.switches, "model_path": m.path,
        },
    }


def check_records(records: Any) -> list[dict[str, Any]]:
    """The records, or RecordError naming what is wrong."""
    if not isinstance(records, list):
        raise RecordError("profiles: not a list")
    for k, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise RecordError(f"profiles[{k}]: not an object")
        missing = [key for key in RECORD_KEYS if key not in rec]
        if missing:
            raise RecordError(f"profiles[{k}]: no {missing[0]!r}")
        if not isinstance(rec["phases"], list) or not all(
                isinstance(r, dict) and "phase" in r and "mean_ns" in r
                for r in rec["phases"]):
            raise RecordError(f"profiles[{k}]: phases malformed")
        if not isinstance(rec["histograms"], dict) or not all(
                isinstance(v, list) and all(
                    isinstance(b, list) and len(b) == 3 for b in v)
                for v in rec["histograms"].values()):
            raise RecordError(f"profiles[{k}]: histograms malformed")
    return records


def _case(rec: dict[str, Any]) -> dict[str, Any]:
    return {"variant": rec["variant"], "generator": rec["generator"],
            "workload": rec["workload"], "fraction": rec["fraction"]}


def phases_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per variant and phase: faults timed, mean and percentiles
    in ns, and the phase's share of the total mean."""
    rows = []
    for rec in records:
        total = next((r["mean_ns"] for r in rec["phases"]
                      if r["phase"] == profiling.TOTAL), None)
        for r in rec["phases"]:
            share = (r["mean_ns"] / total if total and
                     r["mean_ns"] is not None else None)
            rows.append({**_case(rec), **r, "share": share})
    return pd.DataFrame(rows, columns=[
        "variant", "generator", "workload", "fraction", "phase", "label",
        "count", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "max_ns", "share"])


def histograms_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The raw histograms: one row per variant, phase and non-empty
    bucket [lo_ns, hi_ns)."""
    rows = [{"variant": rec["variant"], "phase": ph, "lo_ns": lo,
             "hi_ns": hi, "count": int(c)}
            for rec in records for ph, buckets in rec["histograms"].items()
            for lo, hi, c in buckets]
    return pd.DataFrame(rows, columns=["variant", "phase", "lo_ns", "hi_ns",
                                       "count"])


def switches_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The switch accounting: one row per variant and count, per fault,
    beside the model's figure."""
    rows = [{"variant": rec["variant"], "what": r["what"],
             "per_fault": r["measured"], "model": r["model"],
             "agrees": r.get("agrees"), "source": r["source"]}
            for rec in records for r in rec["switches"]]
    return pd.DataFrame(rows, columns=["variant", "what", "per_fault",
                                       "model", "agrees", "source"])


def summary_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per profiled case: its cost per fault uninstrumented, as a
    multiple of the SIGSEGV round trip, the instrumentation's overhead on
    the round trip, the calibration and the model."""
    rows = [{**_case(rec), "n": rec["n"], **rec["summary"],
             "sigsegv_roundtrip_ns": rec["floors"].get(
                 profiling.ROUND_TRIP)} for rec in records]
    return pd.DataFrame(rows)


def floors_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"variant": rec["variant"], "floor": name, "ns_per_op": ns}
            for rec in records for name, ns in rec["floors"].items()]
    return pd.DataFrame(rows, columns=["variant", "floor", "ns_per_op"])
