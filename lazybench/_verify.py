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


# Build times: the median of this many builds, fewer for long ones.
BUILD_SAMPLES = 5
BUILD_LONG_NS = 200_000_000


class References:
    """Each case's expected checksum: computed straight from the generator
    for the elements the workload reads (no array, so any size works), or
    for the recurrence generator, whose elements depend on the chain
    before them, read from eager arrays shared by all cases of one size.
    Also each array's build time, measured once per array shape."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, int, int, int], core.LazyArray] = {}
        self._builds: dict[tuple[str, int, str, int, int, int], int] = {}

    def checksum(self, case: Case) -> int:
        if case.generator != "recurrence":
            return core.expected_checksum(
                case.n, case.generator, case.workload, case.fraction,
                case.spin, case.seed, case.threads, case.disjoint)
        if case.threads > 1 and case.disjoint:
            raise ValueError(f"{case.name}: the recurrence generator has no "
                             "reference for disjoint threads")
        key = (case.generator, case.n, case.spin, case.seed)
        arr = self._arrays.get(key)
        if arr is None:
            arr = core.LazyArray("eager", case.n, case.generator, case.spin,
                                 case.seed)
            self._arrays[key] = arr
        one = arr.run(case.workload, case.fraction, case.seed).checksum
        return one * case.threads % (1 << 64)

    def build_ns(self, case: Case) -> int:
        """The median time of creating the case's array (eager computing
        every element), over up to BUILD_SAMPLES builds in this process."""
        # core.build_ns's arguments, in order
        key = (case.variant, case.n, case.generator, case.spin, case.seed,
               case.fault_around)
        if key not in self._builds:
            def build() -> int:
                return core.build_ns(*key)

            samples = [build()]
            count = BUILD_SAMPLES if samples[0] < BUILD_LONG_NS else 3 \
                if samples[0] < 5 * BUILD_LONG_NS else 1
            samples += [build() for _ in range(count - 1)]
            self._builds[key] = sorted(samples)[len(samples) // 2]
        return self._builds[key]

    def release(self) -> None:
        for arr in self._arrays.values():
            arr.release()
        self._arrays.clear()


def _status_kib(field: str) -> int:
    """A VmRSS-like field of /proc/self/status in bytes, or -1."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (clear_refs 5); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tlb_shootdowns() -> int:
    """TLB shootdown interrupts so far, all CPUs (the machine's, not only
    this process's); -1 where /proc/interrupts has no TLB line."""
    try:
        with open("/proc/interrupts") as f:
            for line in f:
                if line.strip().startswith("TLB:"):
                    return sum(int(x) for x in line.split()[1:]
                               if x.isdigit())
    except OSError:
        pass
    return -1


def _passes(case: Case, subject: Subject, expected: int) -> dict[str, Any]:
    """A first pass on the fresh array (with its counters and rusage) and
    a second over the evaluated one, both checked against `expected`."""
    subject.clear_counters()
    peak_known = _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    tlb_before = tlb_shootdowns()
    before = _rusage()
    first = subject.run_pass()
    ru = _delta(before, _rusage())
    tlb_after = tlb_shootdowns()
    memory = {"rss_before": rss_before, "rss_after": _status_kib("VmRSS"),
              "peak_rss": _status_kib("VmHWM") if peak_known else -1}
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
            "second_pass": warm, "rusage": ru, "memory": memory,
            "tlb_shootdowns": (tlb_after - tlb_before
                               if tlb_before >= 0 <= tlb_after else -1),
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
            "build_ns": (refs.build_ns(case) if case.level == "c"
                         else subject.build_ns),
            "accesses": subject.accesses,
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
