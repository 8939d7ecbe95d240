"""Profiling: the C histogram against known and generated inputs, the
phases of a fault against the separately timed round trip, the switch
accounting against the mechanisms' models, the perf events' check against
known counts, and the ``profile`` command's output and errors.  Counts,
order and ratios with wide margins only: no wall-clock assertion."""
from __future__ import annotations

import json
import math
import pathlib
import random

import numpy as np
import pandas as pd
import pytest

from lazybench import _array as core
from lazybench import _format as fmt
from lazybench import _histogram as histogram
from lazybench import _profframes as profframes
from lazybench import _profile as profiling
from lazybench import _switches as switches

from conftest import assert_one_line_error, run_cli

# the histogram's guarantee: exact below 64, else within 1/32 above
EXACT = 64
WIDTH = 1 / 32
N = 32 * core.PAGE_ELEMENTS           # 32 pages
# the least a profile can measure: where a test checks counts, not times
QUICK = profiling.Effort(rounds=1, min_faults=200, trip_rounds=1,
                         floor_repeats=1)


def _nearest_rank(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[max(1, math.ceil(q * len(s))) - 1]


def test_histogram_empty() -> None:
    h, extra = histogram.of_values([], (0.5, 1.0))
    assert h.count == 0 and h.buckets == ()
    assert h.mean is None and h.quantile(0.5) is None
    assert extra == {0.5: 0, 1.0: 0}


@pytest.mark.parametrize("value", [0, 1, 63, 64, 65, 1000, 123_456_789,
                                   2**40 + 12345, 2**64 - 1])
def test_histogram_single_value_is_exact(value: int) -> None:
    h, extra = histogram.of_values([value], (0.001, 0.5, 0.99, 1.0))
    assert h.count == 1 and h.min == h.max == value
    assert set(extra.values()) == {value}
    assert all(h.quantile(q) == value for q in histogram.PERCENTILES)
    (b,) = h.buckets
    assert b.lo <= value <= b.hi and b.count == 1


def test_histogram_known_small_values_are_exact() -> None:
    # 1..50: exact buckets, nearest rank
    h, extra = histogram.of_values(range(1, 51), (0.02, 0.5, 0.9, 1.0))
    assert h.quantile(0.5) == 25 and h.quantile(0.9) == 45
    assert h.quantile(0.99) == 50
    assert extra == {0.02: 1, 0.5: 25, 0.9: 45, 1.0: 50}
    assert h.mean == pytest.approx(25.5)


def _corpora() -> list[tuple[str, list[int]]]:
    rng = random.Random(13)
    nrng = np.random.default_rng(13)
    return [
        ("uniform small", [rng.randrange(0, 64) for _ in range(1000)]),
        ("uniform wide", [rng.randrange(0, 10**9) for _ in range(5000)]),
        ("lognormal", [int(x) for x in nrng.lognormal(9, 1.5, 20000)]),
        ("bimodal", [int(x) for x in np.concatenate([
            nrng.normal(3000, 100, 9000), nrng.normal(40000, 5000, 1000)])
            if x > 0]),
        ("heavy tail", [int(x) for x in nrng.pareto(1.2, 10000) * 1000]),
        ("powers of two", [2**k for k in range(63)] * 3),
        ("edges", [2**k + d for k in range(6, 40) for d in (-1, 0, 1)]),
        ("one repeated", [4242] * 77),
    ]


@pytest.mark.parametrize("name,values", _corpora(),
                         ids=[c[0] for c in _corpora()])
def test_histogram_percentiles_on_generated_corpora(name: str,
                                                    values: list[int]) -> None:
    qs = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0)
    h, got = histogram.of_values(values, qs)
    assert h.count == len(values)
    assert h.min == min(values) and h.max == max(values)
    assert h.total == pytest.approx(float(sum(values)), rel=1e-9)
    assert sum(b.count for b in h.buckets) == len(values)
    for b in h.buckets:
        assert b.lo <= b.hi
        assert b.hi - b.lo <= max(0, b.lo * WIDTH)
    for q in qs:
        exact = _nearest_rank(values, q)
        # the reported value is the top of the exact value's bucket,
        # clipped to the maximum: never below it, within 1/32 above
        assert exact <= got[q] <= max(exact, math.floor(exact * (1 + WIDTH)))
        if exact < EXACT:
            assert got[q] == exact
    assert got[1.0] == max(values)


def test_histogram_buckets_count_every_value() -> None:
    values = list(range(0, 100_000, 7))
    h, _ = histogram.of_values(values)
    for b in h.buckets:
        inside = sum(1 for v in values if b.lo <= v <= b.hi)
        assert inside == b.count


# ---- phases ------------------------------------------------------------------

ROUND_TRIP_VARIANTS = [v for v in ("sigsegv-mprotect", "uffd-sigbus")
                       if core.availability(v).available]


@pytest.mark.parametrize("variant", ROUND_TRIP_VARIANTS)
def test_phases_sum_to_the_round_trip(variant: str) -> None:
    # strided: every access faults, so the uninstrumented time per fault
    # is the round trip, timed separately from the phases
    p = profiling.profile(variant, "hash", "strided", 1.0, N,
                          effort=profiling.Effort(1, 500, 5, 1))
    phases = [s for s in p.phases if s.phase != profiling.TOTAL]
    assert [s.phase for s in phases] == ["delivery", "resolve_a",
                                         "resolve_b", "resolve_c", "resume"]
    timed = p.counts["faults"]
    assert timed > 0
    assert all(s.count == timed for s in phases)
    assert p.counts["incomplete"] == p.counts["skewed"] == 0
    # every phase took time, and the stamps were in order
    assert all(s.mean_ns > 0 and s.p50_ns <= s.p90_ns <= s.p99_ns <=
               s.max_ns for s in phases)
    total = sum(s.mean_ns for s in phases)
    assert total == pytest.approx(p.phase(profiling.TOTAL).mean_ns,
                                  rel=1e-6)
    # each round: the phases' sum (the profiled total) against the same
    # round trip timed uninstrumented; the median of the rounds
    assert p.roundtrip_profiled_ns == pytest.approx(p.roundtrip_plain_ns,
                                                    rel=0.15)
    assert abs(p.overhead) < 0.15
    # one signal per fault, the handler's system calls as modelled
    assert p.account.per_core_fault(p.account.signals) == 1
    assert p.account.per_core_fault(p.account.syscalls) == \
        p.model.syscalls


def test_redirect_phases_split_the_handler_and_the_step() -> None:
    p = profiling.profile("sigsegv-redirect", "hash", "seq", 1.0, 2048,
                          effort=QUICK)
    names = [s.phase for s in p.phases]
    assert names == ["delivery", "resolve_a", "resolve_b", "resolve_c",
                     "resume", "step", "step_resume", "total"]
    assert p.counts["faults"] == 2048
    assert p.account.per_core_fault(p.account.signals) == 2
    assert p.account.per_core_fault(p.account.traps) == 1
    essay = profiling.profile("sigsegv-redirect-essay", "hash", "seq", 1.0,
                              2048, effort=QUICK)
    assert "step" not in [s.phase for s in essay.phases]
    assert essay.account.per_core_fault(essay.account.signals) == 1


def test_nested_faults_stamp_only_the_outer_one() -> None:
    # recurrence read in random order nests faults inside the handler
    p = profiling.profile("sigsegv-mprotect", "recurrence", "random", 0.2,
                          8 * core.PAGE_ELEMENTS,
                          effort=profiling.Effort(2, 64, 1, 1))
    c = p.counts
    assert c["faults"] > 0 and c["skewed"] == 0
    # each timed fault is one outer fault; nested ones were signals too
    assert c["faults"] + c["incomplete"] <= c["signals"]
    assert p.phase(profiling.TOTAL).count == c["faults"]


def test_switch_off_after_a_profile() -> None:
    """The fault path stamps only during a profiled run: the switch is off
    after it, whether it ended well or with an error."""
    from lazybench._core import lib

    assert lib.lb_profiling() == 0
    p = profiling._CProfile()
    with core.LazyArray("sigsegv-mprotect", N) as arr:
        p.run(arr, "seq", 1.0, 1, 1)
        assert lib.lb_profiling() == 0
        assert p.counts()["faults"] == N // core.PAGE_ELEMENTS
    # bad input, and a lazy-evaluation error unwinding out of the run
    # (recurrence read in random order nests deeper than allowed)
    with core.LazyArray("sigsegv-redirect", 4 * core.MAX_NESTING,
                        "recurrence") as arr:
        with pytest.raises(ValueError):
            p.run(arr, "seq", 2.0, 1, 1)
        assert lib.lb_profiling() == 0
        with pytest.raises(core.LazyEvaluationError, match="nest"):
            p.run(arr, "random", 1.0, 1, 1)
        assert lib.lb_profiling() == 0
    # and the next profiled run starts clean
    with core.LazyArray("uffd-sigbus" if ROUND_TRIP_VARIANTS[-1:] ==
                        ["uffd-sigbus"] else "sigsegv-mprotect", N) as arr:
        q = profiling._CProfile()
        q.run(arr, "strided", 1.0, 1, 2)
        c = q.counts()
        assert c["faults"] == 2 * (N // core.PAGE_ELEMENTS)
        assert c["incomplete"] == c["skewed"] == 0


def test_not_fault_driven_is_refused() -> None:
    for v in ("eager", "eager-handles", "swcheck"):
        with pytest.raises(profiling.ProfileError, match="not driven by "
                                                         "faults"):
            profiling.profile(v, n=1024)
        with core.LazyArray(v, 1024) as arr:
            with pytest.raises(ValueError, match="no fault to profile"):
                profiling._CProfile().run(arr, "seq", 1.0, 1, 1)


# ---- switch accounting ---------------------------------------------------------

def test_signal_variant_takes_far_less_than_one_switch_per_fault() -> None:
    variant = "uffd-sigbus" if "uffd-sigbus" in ROUND_TRIP_VARIANTS \
        else "sigsegv-mprotect"
    p = profiling.profile(variant, "hash", "strided", 1.0, N,
                          effort=profiling.Effort(3, 500, 1, 1))
    per = p.account.per_fault(p.account.voluntary + p.account.involuntary)
    assert p.account.faults > 0
    assert per is not None and per < 0.2      # a stray one, not one a fault
    assert p.model.switches == 0


@pytest.mark.skipif(not core.availability("uffd-thread-other").available,
                    reason="uffd-thread-other unavailable here: "
                           + core.availability("uffd-thread-other").reason)
def test_handler_thread_switches_at_least_once_per_fault() -> None:
    p = profiling.profile("uffd-thread-other", "hash", "strided", 1.0, N,
                          effort=profiling.Effort(3, 500, 1, 1))
    per = p.account.per_fault(p.account.voluntary + p.account.involuntary)
    assert per is not None and per >= 1.0
    assert p.model.switches == 2
    assert p.account.per_core_fault(p.account.syscalls) == 3
    assert p.account.per_core_fault(p.account.signals) == 0


def test_user_mode_only_events_are_not_permitted_not_zero() -> None:
    """Counting user mode only (what perf_event_paranoid = 2 leaves an
    unprivileged process), context switches and migrations read 0 whatever
    happens: the known-count check must say so."""
    with switches.PerfCounters(user_only=True) as perf:
        st = perf.status
        if st["context-switches"].mode == "":
            pytest.skip("perf_event_open refused even user-mode counting: "
                        + st["context-switches"].note)
        assert st["context-switches"].status == "not permitted"
        assert st["context-switches"].mode == "user only"
        assert perf.read()["context-switches"] is None
        assert st["page-faults"].status == "counts"
        assert perf.read()["page-faults"] is not None
        if len(__import__("os").sched_getaffinity(0)) > 1:
            assert st["cpu-migrations"].status == "not permitted"


def test_model_matches_counters_for_every_variant() -> None:
    for v in profiling.fault_driven():
        if not core.availability(v).available:
            continue
        p = profiling.profile(v, "hash", "strided", 1.0,
                              8 * core.PAGE_ELEMENTS, effort=QUICK)
        rows = {r.what: r for r in p.switch_rows()}
        for what in ("signals delivered", "of which single-step traps",
                     "system calls on the fault path"):
            assert switches.agrees(rows[what]) is True, (v, rows[what])
        pf = rows["perf page-faults"]
        if pf.measured is not None:
            # strided on redirect: a fresh values page per fault too
            extra = 1 if p.model.mechanism.startswith("sigsegv-redirect") \
                else 0
            assert pf.measured == pytest.approx(
                round(p.model.page_faults) + extra, abs=0.25), v


# ---- the command ----------------------------------------------------------------

@pytest.mark.parametrize("argv,needle", [
    (["profile", "nope"], "unknown variant 'nope'"),
    (["profile", "eager"], "eager is not driven by faults"),
    (["profile", "swcheck"], "swcheck is not driven by faults"),
    (["profile", "sigsegv-mprotect", "--generator", "nope"],
     "unknown generator 'nope'"),
    (["profile", "sigsegv-mprotect", "--workload", "nope"],
     "unknown workload 'nope'"),
    (["profile", "sigsegv-mprotect", "--touched", "0"], "--touched"),
    (["profile", "sigsegv-mprotect", "--touched", "10,20"],
     "one percentage"),
    (["profile", "sigsegv-mprotect", "--elements", "0"], "--elements"),
    (["profile", "sigsegv-mprotect", "--elements", str(2**62)],
     "--elements"),
])
def test_profile_bad_input_is_one_line(argv: list[str], needle: str,
                                       tmp_path: pathlib.Path,
                                       capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    # in this process (the command line's parsing and checks come before
    # any array exists); one case through a fresh interpreter below
    import subprocess

    from lazybench._cli import main

    rc = main([*argv, "--results-dir", str(tmp_path)])
    out = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess(argv, rc, out.out,
                                                      out.err), needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not core.availability("uffd-thread-same").available,
                    reason="uffd-thread-same unavailable here")
def test_profile_case_that_cannot_run(tmp_path: pathlib.Path) -> None:
    assert_one_line_error(
        run_cli(["profile", "uffd-thread-same", "--generator", "recurrence",
                 "--results-dir", str(tmp_path)]),
        "does not support the recurrence generator")


def test_profile_unavailable_variant(tmp_path: pathlib.Path) -> None:
    import os
    import subprocess
    import sys
    env = dict(os.environ, LAZYBENCH_NO_USERFAULTFD="1")
    proc = subprocess.run([sys.executable, "-m", "lazybench", "profile",
                           "uffd-sigbus", "--results-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env,
                          timeout=120)
    assert_one_line_error(proc, "uffd-sigbus is unavailable here")


def test_profile_writes_its_folder(tmp_path: pathlib.Path) -> None:
    proc = run_cli(["profile", "sigsegv-mprotect", "--elements", "8192",
                    "--results-dir", str(tmp_path), "--name", "p"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("phases per fault", "delivery: fault to handler entry",
                   "resolve: install (pwrite and mprotect)",
                   "x the bare SIGSEGV round trip",
                   "instrumentation overhead", "switch accounting",
                   "floors (same run", "sigsegv-roundtrip"):
        assert needle in out, needle
    folder = tmp_path / "p"
    names = {p.name for p in folder.iterdir()}
    assert names == {"profile.json", "phases.csv", "phase_histograms.csv",
                     "switches.csv", "profiles.csv", "floors.csv",
                     "phases.png", "latency_cdf.png"}
    rec = json.loads((folder / "profile.json").read_text())
    profframes.check_records([rec])
    phases = pd.read_csv(folder / "phases.csv")
    hists = pd.read_csv(folder / "phase_histograms.csv")
    # every phase's count is its histogram's
    for row in phases.itertuples():
        assert hists[hists.phase == row.phase]["count"].sum() == row.count
    # the printed mean of the total is the CSV row's
    total = phases[phases.phase == "total"].iloc[0]
    assert f"{total.mean_ns / 1000:.3g}"[:3] in out
    summary = pd.read_csv(folder / "profiles.csv")
    assert len(summary) == 1 and summary.tsc_hz.iloc[0] > 0
    for png in ("phases.png", "latency_cdf.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # an existing folder is not overwritten
    again = run_cli(["profile", "sigsegv-mprotect", "--elements", "8192",
                     "--results-dir", str(tmp_path), "--name", "p"])
    assert_one_line_error(again, "already exists")


# ---- in a run ------------------------------------------------------------------

RUN = ["run", "--quick", "--variants", "eager,sigsegv-mprotect",
       "--workloads", "seq", "--touched", "100", "--elements", "4096",
       "--no-python", "--processes", "1"]


@pytest.fixture(scope="module")
def profiled_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    where = tmp_path_factory.mktemp("runs")
    proc = run_cli([*RUN, "--results-dir", str(where), "--run-name", "r"])
    assert proc.returncode == 0, proc.stderr
    assert "profiling 1 fault-driven variants" in proc.stderr
    return where / "r"


def test_a_run_profiles_its_fault_driven_variants(
        profiled_run: pathlib.Path) -> None:
    meta = json.loads((profiled_run / "run.json").read_text())
    (rec,) = meta["profiles"]                     # eager is not profiled
    assert rec["variant"] == "sigsegv-mprotect"
    assert (rec["generator"], rec["workload"], rec["fraction"]) == \
        profiling.RUN_CASE
    for name in ("phases.csv", "phase_histograms.csv", "switches.csv",
                 "profiles.csv", "plots/phases.png",
                 "plots/latency_cdf.png"):
        assert (profiled_run / name).exists(), name
    report = (profiled_run / "report.md").read_text()
    assert "## Where a fault's time goes (profiled)" in report
    assert "## Switches per fault" in report
    assert "![phases](plots/phases.png)" in report
    # each phase's printed mean is its phases.csv row's
    phases = pd.read_csv(profiled_run / "phases.csv")
    assert set(phases.phase) == {"delivery", "resolve_a", "resolve_b",
                                 "resolve_c", "resume", "total"}
    lines = report.splitlines()
    head = next(k for k, ln in enumerate(lines) if "delivery us" in ln)
    line = next(ln for ln in lines[head:]
                if ln.startswith("| sigsegv-mprotect"))  # the means' row
    cells = [c.strip() for c in line.strip("|").split("|")][1:]
    assert cells[:5] + cells[-1:] == [
        fmt.sig(phases[phases.phase == ph].mean_ns.iloc[0] / 1000)
        for ph in ("delivery", "resolve_a", "resolve_b", "resolve_c",
                   "resume", "total")]
    switches_csv = pd.read_csv(profiled_run / "switches.csv")
    held = switches_csv.dropna(subset=["model", "per_fault"])
    assert held.agrees.all(), held


def test_corrupt_profiles_are_one_line(profiled_run: pathlib.Path,
                                       tmp_path: pathlib.Path) -> None:
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(profiled_run, bad)
    meta = json.loads((bad / "run.json").read_text())
    del meta["profiles"][0]["histograms"]
    (bad / "run.json").write_text(json.dumps(meta))
    assert_one_line_error(run_cli(["report", str(bad)]),
                          "profiles[0]: no 'histograms'")
    meta["profiles"] = "nonsense"
    (bad / "run.json").write_text(json.dumps(meta))
    assert_one_line_error(run_cli(["report", str(bad)]),
                          "profiles: not a list")
