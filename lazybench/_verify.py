"""Untimed pass run before the timings: every case once on a fresh array,
its checksum checked against eager's, and its counters recorded.

Counters come from this pass, not from the pyperf workers: for one thread
they are deterministic (one fault per touched page for sigsegv-mprotect),
and the same pass runs the workload a second time over the now evaluated
array to count what a warm pass costs in faults.
"""
from __future__ import annotations

import resource
from typing import Any, Callable, Sequence

from lazybench import _array as core, _levels as levels
from lazybench._case import Case, Subject

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


def _passes(case: Case, subject: Subject, expected: int) -> dict[str, Any]:
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
    """Run the case's passes on a fresh array, checked against the C eager
    checksum (Python-level cases too)."""
    expected = refs.checksum(case)
    subject = levels.open_case(case)
    try:
        record: dict[str, Any] = {
            "name": case.name, "case": case.to_dict(),
            "build_ns": subject.build_ns, "accesses": subject.accesses,
            "touched_pages": subject.touched_pages}
        record.update(_passes(case, subject, expected))
    finally:
        subject.release()
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
