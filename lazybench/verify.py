"""Untimed pass run before the timings: every case once on a fresh array,
its checksum checked against eager's, and its counters recorded.

Counters come from this pass, not from the pyperf workers: for one thread
they are deterministic (one fault per touched page for sigsegv-mprotect),
and the same pass runs the workload a second time over the now evaluated
array to count what a warm pass costs in faults.
"""
from __future__ import annotations

import dataclasses
import resource
import time
from typing import Any, Callable, Protocol, Sequence

from lazybench import core, pylevel, pyworkloads
from lazybench.suite import Case

RUSAGE_FIELDS = ("ru_minflt", "ru_majflt", "ru_nvcsw", "ru_nivcsw")


class ChecksumMismatch(core.LazyBenchError):
    """A variant computed different values than eager."""


def _rusage() -> dict[str, int]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {f: int(getattr(ru, f)) for f in RUSAGE_FIELDS}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k[3:]: after[k] - before[k] for k in before}


class References:
    """Eager arrays shared by all cases of one generator and size."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, int, int, int], core.LazyArray] = {}

    def checksum(self, case: Case) -> int:
        key = (case.generator, case.n, case.spin, case.seed)
        arr = self._arrays.get(key)
        if arr is None:
            arr = core.LazyArray("eager", case.n, case.generator, case.spin,
                                 case.seed)
            self._arrays[key] = arr
        return arr.run(case.workload, case.fraction, case.seed).checksum

    def release(self) -> None:
        for arr in self._arrays.values():
            arr.release()
        self._arrays.clear()


class _Subject(Protocol):
    """What verification drives: a pass that returns its checksum, and
    the counters since they were last cleared."""

    def run_pass(self) -> int: ...

    def counters(self) -> dict[str, int]: ...

    def clear_counters(self) -> None: ...


class _CArray:
    """A C-level case: the workload loop in C."""

    def __init__(self, arr: core.LazyArray, case: Case) -> None:
        self.arr, self.case = arr, case

    def run_pass(self) -> int:
        c = self.case
        return self.arr.run(c.workload, c.fraction, c.seed).checksum

    def counters(self) -> dict[str, int]:
        return dataclasses.asdict(self.arr.counters())

    def clear_counters(self) -> None:
        self.arr.clear_counters()


class _PyTarget:
    """A Python-level case: the Python loop over the case's indices."""

    def __init__(self, target: pylevel.Target, idx: Sequence[int]) -> None:
        self.target, self.idx = target, idx

    def run_pass(self) -> int:
        return self.target.run(self.idx)

    def counters(self) -> dict[str, int]:
        return self.target.counters()

    def clear_counters(self) -> None:
        self.target.clear_counters()


def _passes(case: Case, subject: _Subject, expected: int) -> dict[str, Any]:
    """A first pass on the fresh array (with its counters and rusage) and
    a second over the evaluated one, both checked against `expected`."""
    subject.clear_counters()
    before = _rusage()
    first = subject.run_pass()
    ru = _delta(before, _rusage())
    counters = subject.counters()
    subject.clear_counters()
    second = subject.run_pass()
    warm = subject.counters()
    for label, got in (("first", first), ("second", second)):
        if got != expected:
            raise ChecksumMismatch(
                f"{case.name}: {label} pass checksum {got:#x} differs from "
                f"eager's {expected:#x}")
    return {"checksum": first, "verified": True, "counters": counters,
            "second_pass": warm, "rusage": ru}


def verify_case(case: Case, refs: References) -> dict[str, Any]:
    """Run the case's passes on a fresh array; Python-level cases are
    checked against the C eager checksum too."""
    expected = refs.checksum(case)
    record: dict[str, Any] = {"name": case.name,
                              "case": dataclasses.asdict(case)}
    if case.level == "python":
        # the indices first: build_ns times building the array alone
        idx = pyworkloads.indices(case.workload, case.n, case.fraction,
                                  case.seed, core.PAGE_ELEMENTS)
        t0 = time.perf_counter_ns()
        target = pylevel.Target(case.variant, case.n, case.generator,
                                case.seed, case.spin)
        record["build_ns"] = time.perf_counter_ns() - t0
        record["accesses"] = len(idx)
        record["touched_pages"] = len({i // core.PAGE_ELEMENTS for i in idx})
        try:
            record.update(_passes(case, _PyTarget(target, idx), expected))
        finally:
            target.release()
        return record
    t0 = time.perf_counter_ns()
    with core.LazyArray(case.variant, case.n, case.generator, case.spin,
                        case.seed, case.fault_around) as arr:
        record["build_ns"] = time.perf_counter_ns() - t0
        fp = arr.footprint(case.workload, case.fraction, case.seed)
        record["accesses"], record["touched_pages"] = fp.accesses, fp.pages
        record.update(_passes(case, _CArray(arr, case), expected))
    return record


def verify_all(cases: Sequence[Case],
               progress: Callable[[str], None] | None = None,
               ) -> list[dict[str, Any]]:
    refs = References()
    try:
        records = []
        for case in cases:
            if progress:
                progress(case.name)
            records.append(verify_case(case, refs))
        return records
    finally:
        refs.release()
