"""Untimed pass run before the timings: every case once on a fresh array,
its checksum checked against eager's, and its counters recorded.

Counters come from this pass, not from the pyperf workers: for one thread
they are deterministic (one fault per touched page for sigsegv-mprotect),
and the same pass runs the workload a second time over the now evaluated
array to count what a warm pass costs in faults.

Both passes are timed as pyperf's workers time one loop, and the one a
case's benchmark times (the first, or the second for a warm case) gives
the time of one loop, from which the run chooses the case's pyperf loops
(:meth:`lazybench._suite.Plan.with_loops`).  That pass runs on cold
caches, and a Python loop runs before the interpreter has specialised it:
up to a few times slower than the loops after it; and a pass that waits
for another CPU (uffd-thread-other) is now and then ten times its usual
time.  So unless the pass is long enough for one loop either way, the case
is timed once more, over loops lasting about an eighth of the profile's
minimum time (one loop at least), and the smaller of the two is the time
of one loop.
"""
from __future__ import annotations

import resource
from typing import Any, Callable, Sequence

from lazybench import _array as core, _levels as levels
from lazybench._case import Case, Subject
from lazybench._suite import choose_loops

RUSAGE_FIELDS = ("ru_minflt", "ru_majflt", "ru_nvcsw", "ru_nivcsw")
# A pass is timed again over this fraction of the loops it would get (one
# at least), unless it lasts RETIME_BELOW minimum times or more.
SAMPLE_DIVISOR = 8
RETIME_BELOW = 8


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
    first_ns = subject.pass_ns
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
            "second_pass": warm, "rusage": ru,
            "pass_ns": {"first": first_ns, "second": subject.pass_ns}}


def loop_ns(case: Case, subject: Subject, passes: dict[str, int],
            min_time: float) -> int:
    """Nanoseconds of one loop of the case's benchmark: the pass it times
    (the second, over evaluated elements, for a warm case), or, unless
    that lasts RETIME_BELOW times `min_time` or more, the smaller of it
    and the mean of more loops timed as the benchmark times them (an
    eighth of the loops the pass would get, one at least)."""
    ns = passes["second"] if case.warm else passes["first"]
    if ns >= RETIME_BELOW * min_time * 1e9:
        return ns
    sample = max(1, choose_loops(ns, min_time) // SAMPLE_DIVISOR)
    return min(ns, subject.time(sample) // sample)


def verify_case(case: Case, refs: References,
                min_time: float | None = None) -> dict[str, Any]:
    """Run the case's passes on a fresh array, checked against the C eager
    checksum (Python-level cases too); with `min_time` (seconds, the
    profile's) also the time of one loop of its benchmark (`loop_ns`)."""
    expected = refs.checksum(case)
    subject = levels.open_case(case)
    try:
        record: dict[str, Any] = {
            "name": case.name, "case": case.to_dict(),
            "build_ns": subject.build_ns, "accesses": subject.accesses,
            "touched_pages": subject.touched_pages}
        record.update(_passes(case, subject, expected))
        if min_time is not None:
            record["loop_ns"] = loop_ns(case, subject, record["pass_ns"],
                                        min_time)
    finally:
        subject.release()
    return record


def verify_all(cases: Sequence[Case],
               progress: Callable[[str], None] | None = None,
               min_time: float | None = None) -> list[dict[str, Any]]:
    refs = References()
    try:
        records = []
        for case in cases:
            if progress:
                progress(case.name)
            records.append(verify_case(case, refs, min_time))
        return records
    finally:
        refs.release()
