"""The levels a case runs at, and the one place that dispatches on them:
:func:`open_case` builds a case's :class:`~lazybench._case.Subject` at its
level, :func:`preflight` checks it can be built, :data:`LEVELS` holds
what the reports say of each."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from lazybench import _array as core, _pylevel as pylevel
from lazybench._case import LEVEL_PREFIX, Case, Subject


class _CSubject:
    """The C workload loop over a core array."""

    def __init__(self, case: Case) -> None:
        self.case = case
        t0 = time.perf_counter_ns()
        self.arr = core.LazyArray(case.variant, case.n, case.generator,
                                  case.spin, case.seed, case.fault_around)
        self.build_ns = time.perf_counter_ns() - t0
        self.threaded = case.sweep == "threads"
        if self.threaded:
            fp = self.arr.threads_footprint(case.workload, case.fraction,
                                            case.seed, case.threads,
                                            case.disjoint)
        else:
            fp = self.arr.footprint(case.workload, case.fraction, case.seed)
        self.accesses, self.touched_pages = fp.accesses, fp.pages
        self.pass_ns = 0

    def run_pass(self) -> int:
        c = self.case
        if self.threaded:       # on a fresh array: the threads reset it
            result = self.arr.bench_threads(c.workload, c.fraction, c.seed,
                                            c.threads, c.disjoint, 1)
        else:
            result = self.arr.run(c.workload, c.fraction, c.seed)
        self.pass_ns = result.elapsed_ns    # the core's clock, as in time()
        return result.checksum

    def time(self, loops: int) -> int:
        c = self.case
        if self.threaded:
            return self.arr.bench_threads(c.workload, c.fraction, c.seed,
                                          c.threads, c.disjoint,
                                          loops).elapsed_ns
        return self.arr.bench(c.workload, c.fraction, c.seed, loops,
                              reset=not c.warm).elapsed_ns

    def counters(self) -> dict[str, int]:
        return dataclasses.asdict(self.arr.counters())

    def clear_counters(self) -> None:
        self.arr.clear_counters()

    def release(self) -> None:
        self.arr.release()

    @staticmethod
    def preflight(case: Case) -> None:
        """Create and release an array (computing nothing for a lazy
        variant), so that a size the variant refuses is reported before
        any work starts."""
        if core.variant_info(case.variant).base:
            return
        core.LazyArray(case.variant, case.n, case.generator).release()


@dataclasses.dataclass(frozen=True)
class Level:
    key: str                                 # Case.level
    title: str                               # what a pass times
    open: Callable[[Case], Subject]
    preflight: Callable[[Case], None]
    plot_prefix: str = ""     # of its plot files
    note: str = ""            # the report's note on its tables; {n}: size


LEVELS: dict[str, Level] = {
    "c": Level("c", "C workload loop", _CSubject, _CSubject.preflight),
    "python": Level("python", "read from Python",
                    pylevel.PySubject, pylevel.PySubject.preflight,
                    "python_",
                    "Read by a Python loop (`acc += get(i)`) over {n} "
                    "elements: C variants through their view (a memoryview, "
                    "or the core's element access where there is no flat "
                    "memory), and pure-Python thunks."),
}


def open_case(case: Case) -> Subject:
    """A fresh array for `case`, at its level."""
    return LEVELS[case.level].open(case)


def preflight(case: Case) -> None:
    """Refuse, before any work, a case that cannot be built."""
    LEVELS[case.level].preflight(case)


assert set(LEVELS) == set(LEVEL_PREFIX)
