"""pyperf harness: every case and every floor is one pyperf benchmark.

A case's time function hands pyperf's loop count to the C core, which
resets the lazy array (outside the timed part) before every loop, so each
loop measures faulting into a fresh array, and times only the workload
loop with clock_gettime.  No Python runs between loops.  Arrays are cached
per worker process.  A warm case evaluates its array once, untimed, and
then times passes over the evaluated elements without resetting.
"""
from __future__ import annotations

import pathlib
import signal
import threading
from typing import Callable, Sequence

import psutil
import pyperf

from lazybench import _array as core, _levels as levels
from lazybench._case import Case, Subject, floor_benchmark_name
from lazybench._suite import FLOOR_INNER_LOOPS, Plan

_subjects: dict[Case, Subject] = {}


def _subject(case: Case) -> Subject:
    subject = _subjects.get(case)
    if subject is None:
        subject = levels.open_case(case)
        if case.warm:                  # evaluate (and heal) once, untimed
            subject.run_pass()
        _subjects[case] = subject
    return subject


def time_case(loops: int, case: Case) -> float:
    return _subject(case).time(loops) / 1e9


def time_floor(loops: int, name: str) -> float:
    return core.floor_ns(name, loops * FLOOR_INNER_LOOPS) / 1e9


def floor_loop_ns(name: str) -> int:
    """One loop of floor `name`'s benchmark (FLOOR_INNER_LOOPS operations)
    in this process: the faster of two, as the first pays for setting
    up."""
    return min(core.floor_ns(name, FLOOR_INNER_LOOPS) for _ in range(2))


def case_metadata(case: Case) -> dict[str, str | int | float]:
    return {"lazybench_variant": case.variant,
            "lazybench_generator": case.generator,
            "lazybench_workload": case.workload,
            "lazybench_fraction": case.fraction,
            "lazybench_n": case.n,
            "lazybench_warm": int(case.warm),
            "lazybench_fault_around": case.fault_around,
            "lazybench_level": case.level,
            "lazybench_spin": case.spin,
            "lazybench_sweep": case.sweep or "grid",
            "lazybench_threads": case.threads,
            "lazybench_disjoint": int(case.disjoint)}


def bench_all(runner: pyperf.Runner, plan: Plan,
              progress: Callable[[str], None] | None = None,
              ) -> list[pyperf.Benchmark]:
    """Register every benchmark of the plan with pyperf, in the plan's
    order (workers find their task by position).  Returns the finished
    benchmarks in the managing process, nothing in a worker; `progress`
    hears each benchmark's name as it starts, in the managing process.
    A plan with loops (:meth:`Plan.with_loops`) sets pyperf's loops per
    benchmark in the managing process; without, pyperf calibrates (or
    uses its --loops)."""
    done: list[pyperf.Benchmark] = []
    worker = bool(runner.args and runner.args.worker)
    loops = plan.benchmark_loops() if plan.loops else {}

    def started(name: str, floor: str = "") -> None:
        if worker:
            return
        if progress is not None:
            progress(name)
        # pyperf's manager reads args.loops and args.processes at each
        # benchmark and hands the loops to the worker as --loops (0: a
        # calibration worker first); the workers keep what they were given
        if name in loops:
            runner.args.loops = loops[name]
        runner.args.processes = plan.profile.processes_for(bool(floor),
                                                           floor)

    for name in plan.floors:
        started(floor_benchmark_name(name), floor=name)
        bench = runner.bench_time_func(floor_benchmark_name(name), time_floor,
                                       name, inner_loops=FLOOR_INNER_LOOPS)
        if bench is not None:
            done.append(bench)
    for case in plan.cases:
        started(case.name)
        bench = runner.bench_time_func(case.name, time_case, case,
                                       metadata=case_metadata(case))
        if bench is not None:
            done.append(bench)
    for subject in _subjects.values():
        subject.release()
    _subjects.clear()
    return done


def pyperf_runner(plan: Plan, plan_file: pathlib.Path) -> pyperf.Runner:
    """pyperf's runner with the plan's settings; its workers run
    ``python -m lazybench run --plan plan_file``."""
    p = plan.profile
    return pyperf.Runner(values=p.values, processes=p.processes,
                         warmups=p.warmups, min_time=p.min_time,
                         program_args=("-m", "lazybench", "run", "--plan",
                                       str(plan_file)))


def work(plan_file: pathlib.Path, pyperf_argv: Sequence[str]) -> None:
    """A pyperf worker: time the benchmark pyperf asks for, of the
    parent's plan."""
    plan = Plan.load(plan_file)
    bench_runner = pyperf_runner(plan, plan_file)
    bench_runner.parse_args(list(pyperf_argv))
    bench_all(bench_runner, plan)


def bench_all_interruptible(runner: pyperf.Runner, plan: Plan,
                            progress: Callable[[str], None] | None = None,
                            ) -> list[pyperf.Benchmark]:
    """bench_all in the managing process, stopped cleanly by Ctrl-C.

    A terminal sends SIGINT to the whole process group, so the workers got
    it too and could die mid-start with a traceback, and pyperf's manager
    turned it into exit status 1.  Here pyperf's loop runs in a thread that
    blocks SIGINT, so every worker it starts inherits SIGINT blocked and
    never sees it.  The main thread takes the signal, kills the workers
    until the loop has stopped, and raises KeyboardInterrupt."""
    outcome: list[list[pyperf.Benchmark] | BaseException] = []
    done = threading.Event()

    def manage() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            outcome.append(bench_all(runner, plan, progress))
        except BaseException as exc:     # re-raised in the main thread
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=manage, name="pyperf-manager",
                     daemon=True).start()
    try:
        # an Event, not join(): an interrupted join() can mark the thread
        # as stopped while it still runs (seen on CPython 3.11)
        done.wait()
    except KeyboardInterrupt:
        while not done.wait(0.05):
            for child in psutil.Process().children(recursive=True):
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        raise
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
