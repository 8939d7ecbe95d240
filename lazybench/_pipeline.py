"""Running a plan: verify every case against eager, time the floors and
cases with pyperf, write the run folder and its report.

The managing process makes the plan once and stores it in the run folder
(``plan.json``); pyperf's workers are started with ``--plan`` on that file
and time exactly its benchmarks, in its order, without deriving a plan of
their own.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pathlib
import shutil
import sys
import time
from typing import Callable, Sequence, TypeVar

import pyperf

from lazybench import _array as core
from lazybench import _levels as levels
from lazybench import _machine as machine
from lazybench import _profframes as profframes
from lazybench import _profile as profiling
from lazybench import _report as report
from lazybench import _results as results
from lazybench import _runner as runner
from lazybench import _sweeps as sweeps
from lazybench import _verify as verify
from lazybench._progress import Progress
from lazybench._suite import Plan

T = TypeVar("T")

PLAN_FILE = "plan.json"
# Environment the workers keep (pyperf gives them a minimal one).
INHERITED_ENVIRON = ("PYTHONPATH", "LAZYBENCH_NO_USERFAULTFD",
                     "LAZYBENCH_HIDE_UFFD_FEATURES",
                     "LAZYBENCH_MPROTECT_MEMFD", "LAZYBENCH_MEMORY")


@dataclasses.dataclass(frozen=True)
class Finished:
    """A written run: its folder, its tables, and the baseline it was
    stored as (None unless asked)."""
    path: pathlib.Path
    frames: report.Frames
    baseline: pathlib.Path | None


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def preflight(plan: Plan) -> None:
    """Build and release one array per variant, level and size, so that a
    size a variant refuses is reported before any work starts."""
    seen = set()
    for case in plan.cases:
        key = (case.variant, case.n, case.level)
        if key not in seen:
            seen.add(key)
            levels.preflight(case)


def run(plan: Plan, results_dir: pathlib.Path = pathlib.Path("results"),
        name: str | None = None, save_baseline: bool = False,
        argv: Sequence[str] = (), progress: Progress | None = None,
        ) -> Finished:
    """Verify, time and write `plan` as a run folder under `results_dir`
    (named `name`, or date-time-profile); also as the baseline when
    `save_baseline`.  `argv` is recorded in run.json; `progress` hears of
    each case verified and each benchmark timed (pyperf's own line per
    benchmark is then not printed)."""
    results.check_results_dir(results_dir)
    preflight(plan)
    profile = plan.profile
    name = name or results.new_run_name(profile.name)
    folder = results.RunFolder(results_dir, name)
    try:
        for u in plan.unavailable:
            log(f"variant {u.variant} unavailable: {u.reason}")
        for k in plan.skipped:
            log(f"case {k.name} skipped: {k.reason}")
        started = time.monotonic()
        log(f"verifying {len(plan.cases)} cases against eager ...")
        records = _phase(progress, "verifying", len(plan.cases),
                         lambda step: verify.verify_all(
                             plan.cases, step, profile.min_time))
        # every benchmark's loops chosen here, each case's from its
        # verification pass and each floor's from one loop timed here:
        # pyperf then starts one worker per benchmark, none to calibrate
        plan = plan.with_loops([r["loop_ns"] for r in records],
                               [runner.floor_loop_ns(f) for f in plan.floors])
        log(f"timing {len(plan.floors)} floors and {len(plan.cases)} cases "
            f"with pyperf ({profile.processes} processes x "
            f"{profile.values} values, floors "
            f"{profile.processes_for(True)} processes) ...")
        plan_file = folder.path / PLAN_FILE
        plan.save(plan_file)
        bench_runner = runner.pyperf_runner(plan, plan_file)
        pyperf_args = ["--quiet", "--timeout", "600"]
        inherit = [v for v in INHERITED_ENVIRON if v in os.environ]
        if inherit:
            pyperf_args += ["--inherit-environ", ",".join(inherit)]
        bench_runner.parse_args(pyperf_args)
        expected = plan.benchmark_names()
        benches = _phase(progress, "timing", len(expected),
                         lambda step: runner.bench_all_interruptible(
                             bench_runner, plan, step))
        got = [b.get_name() for b in benches]
        if got != expected:
            missing = [n for n in expected if n not in got]
            extra = [n for n in got if n not in expected]
            raise core.LazyBenchError(
                "pyperf workers measured other benchmarks than asked for "
                f"(missing {missing[:3]}, unexpected {extra[:3]})")
        driven = set(profiling.fault_driven())
        # the sweeps' own suites time no grid case to set a profile beside
        profiled = [v for v in dict.fromkeys(c.variant for c in plan.cases)
                    if v in driven] if profile.grid else []
        if profiled:
            log(f"profiling {len(profiled)} fault-driven variants at "
                f"{' '.join(map(str, profiling.RUN_CASE[:2]))} 100 % ...")
        profiles, skipped = _phase(
            progress, "profiling", len(profiled),
            lambda step: profiling.profile_run(
                profiled, profile.n, step,
                profiling.FULL if profile.name == "default"
                else profiling.LIGHT)
        ) if profiled else ([], [])
        for variant, reason in skipped:
            log(f"variant {variant} not profiled: {reason}")
        concurrent = []
        if "threads" in profile.sweeps:
            log("timing the floors that may run in threads, in 1 to "
                f"{max(sweeps.thread_counts())} threads at once ...")
            concurrent = sweeps.concurrent_floors()
        meta = {
            "format": results.FORMAT, "name": name, "profile": profile.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_s": round(time.monotonic() - started, 1),
            "argv": list(argv), "machine": machine.facts(),
            "floors": {f: core.FLOORS[f] for f in plan.floors},
            "cases": records,
            "unavailable": [dataclasses.asdict(u) for u in plan.unavailable],
            "skipped": [dataclasses.asdict(k) for k in plan.skipped],
            "concurrent_floors": concurrent,
            "profiles": [profframes.record(p) for p in profiles],
            "profiles_skipped": [{"variant": v, "reason": r}
                                 for v, r in skipped],
        }
        results.write_run(folder.path, meta, pyperf.BenchmarkSuite(benches))
        path = folder.commit()
    except BaseException:
        folder.discard()
        raise
    log("writing the report and plots ...")
    frames, _ = report.write_report(results.load_run(path))
    baseline = (store_baseline(path, results_dir, profile.name)
                if save_baseline else None)
    return Finished(path, frames, baseline)


def _phase(progress: Progress | None, name: str, total: int,
           work: Callable[[Callable[[str], None] | None], T]) -> T:
    """work(step), reporting each step to `progress` when there is one;
    pyperf's own lines (on stdout) are then left out."""
    if progress is None:
        return work(None)
    progress.start(name, total)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return work(progress.step)
    finally:
        progress.finish()


def store_baseline(path: pathlib.Path, results_dir: pathlib.Path,
                   profile: str) -> pathlib.Path:
    """Copy run folder `path` to the suite's baseline folder
    (results.baseline_name), replacing that baseline by renames (it is
    never left half written); another suite's baseline is not touched."""
    name = results.baseline_name(profile)
    target = results_dir / name
    staging = results_dir / f".{name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(path, staging)
    old = results_dir / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
