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
from typing import Any, Callable, Sequence

from lazybench import core
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


def verify_python_case(case: Case, refs: References) -> dict[str, Any]:
    """The same record for a Python-level case: the pass runs the Python
    loop (pylevel), its checksum against the C eager one."""
    from lazybench import pylevel, pyworkloads

    expected = refs.checksum(case)
    idx = pyworkloads.indices(case.workload, case.n, case.fraction,
                              case.seed, core.PAGE_ELEMENTS)
    t0 = time.perf_counter_ns()
    target = pylevel.Target(case.variant, case.n, case.generator, case.seed,
                            case.spin)
    try:
        build_ns = time.perf_counter_ns() - t0
        target.clear_counters()
        before = _rusage()
        first = target.run(idx)
        ru = _delta(before, _rusage())
        counters = target.counters()
        target.clear_counters()
        second = target.run(idx)
        warm = target.counters()
    finally:
        target.release()
    for label, got in (("first", first), ("second", second)):
        if got != expected:
            raise ChecksumMismatch(
                f"{case.name}: {label} pass checksum {got:#x} differs from "
                f"C eager's {expected:#x}")
    accesses = len(idx)
    pages = len({i // core.PAGE_ELEMENTS for i in idx})
    return {
        "name": case.name, "case": dataclasses.asdict(case),
        "accesses": accesses, "touched_pages": pages, "checksum": first,
        "verified": True, "build_ns": build_ns, "counters": counters,
        "second_pass": warm, "rusage": ru,
    }


def verify_case(case: Case, refs: References) -> dict[str, Any]:
    if case.level == "python":
        return verify_python_case(case, refs)
    expected = refs.checksum(case)
    t0 = time.perf_counter_ns()
    with core.LazyArray(case.variant, case.n, case.generator, case.spin,
                        case.seed, case.fault_around) as arr:
        build_ns = time.perf_counter_ns() - t0
        fp = arr.footprint(case.workload, case.fraction, case.seed)
        arr.clear_counters()
        before = _rusage()
        first = arr.run(case.workload, case.fraction, case.seed)
        ru = _delta(before, _rusage())
        counters = arr.counters()
        arr.clear_counters()
        second = arr.run(case.workload, case.fraction, case.seed)
        warm = arr.counters()
    for label, got in (("first", first), ("second", second)):
        if got.checksum != expected:
            raise ChecksumMismatch(
                f"{case.name}: {label} pass checksum {got.checksum:#x} "
                f"differs from eager's {expected:#x}")
    return {
        "name": case.name,
        "case": dataclasses.asdict(case),
        "accesses": fp.accesses,
        "touched_pages": fp.pages,
        "checksum": first.checksum,
        "verified": True,
        "build_ns": build_ns,
        "counters": dataclasses.asdict(counters),
        "second_pass": dataclasses.asdict(warm),
        "rusage": ru,
    }


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
