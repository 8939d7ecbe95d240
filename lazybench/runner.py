"""pyperf harness: every case and every floor is one pyperf benchmark.

A case's time function hands pyperf's loop count to the C core, which
resets the lazy array (outside the timed part) before every loop, so each
loop measures faulting into a fresh array, and times only the workload
loop with clock_gettime.  No Python runs between loops.  Arrays are cached
per worker process.  A warm case evaluates its array once, untimed, and
then times passes over the evaluated elements without resetting.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable, Sequence

import psutil
import pyperf

from lazybench import core, pylevel
from lazybench.suite import FLOOR_INNER_LOOPS, Case

_arrays: dict[Case, core.LazyArray] = {}
_targets: dict[Case, tuple[pylevel.Target, Sequence[int]]] = {}


def _array(case: Case) -> core.LazyArray:
    arr = _arrays.get(case)
    if arr is None:
        arr = core.LazyArray(case.variant, case.n, case.generator,
                             case.spin, case.seed, case.fault_around)
        if case.warm:                  # evaluate (and heal) once, untimed
            arr.run(case.workload, case.fraction, case.seed)
        _arrays[case] = arr
    return arr


def _target(case: Case) -> tuple[pylevel.Target, Sequence[int]]:
    got = _targets.get(case)
    if got is None:
        target, idx = pylevel.for_case(case)
        if case.warm:
            target.run(idx)
        got = _targets[case] = (target, idx)
    return got


def time_case(loops: int, case: Case) -> float:
    if case.level == "python":
        target, idx = _target(case)
        return target.time(idx, loops, case.warm) / 1e9
    result = _array(case).bench(case.workload, case.fraction, case.seed,
                                loops, reset=not case.warm)
    return result.elapsed_ns / 1e9


def time_floor(loops: int, name: str) -> float:
    return core.floor_ns(name, loops * FLOOR_INNER_LOOPS) / 1e9


def floor_benchmark_name(name: str) -> str:
    return f"floor/{name}"


def case_metadata(case: Case) -> dict[str, str | int | float]:
    return {"lazybench_variant": case.variant,
            "lazybench_generator": case.generator,
            "lazybench_workload": case.workload,
            "lazybench_fraction": case.fraction,
            "lazybench_n": case.n,
            "lazybench_warm": int(case.warm),
            "lazybench_fault_around": case.fault_around,
            "lazybench_level": case.level}


def bench_all(runner: pyperf.Runner, floors: Sequence[str],
              cases: Sequence[Case],
              progress: Callable[[str], None] | None = None,
              ) -> list[pyperf.Benchmark]:
    """Register every benchmark with pyperf, in a fixed order (workers find
    their task by position).  Returns the finished benchmarks in the
    managing process, nothing in a worker."""
    done: list[pyperf.Benchmark] = []
    for name in floors:
        bench = runner.bench_time_func(floor_benchmark_name(name), time_floor,
                                       name, inner_loops=FLOOR_INNER_LOOPS)
        if bench is not None:
            done.append(bench)
    for case in cases:
        bench = runner.bench_time_func(case.name, time_case, case,
                                       metadata=case_metadata(case))
        if bench is not None:
            done.append(bench)
    for arr in _arrays.values():
        arr.release()
    _arrays.clear()
    for target, _ in _targets.values():
        target.release()
    _targets.clear()
    return done


def bench_all_interruptible(runner: pyperf.Runner, floors: Sequence[str],
                            cases: Sequence[Case]) -> list[pyperf.Benchmark]:
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
            outcome.append(bench_all(runner, floors, cases))
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
