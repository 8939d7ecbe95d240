"""Profiling one case in depth: where each fault's time goes (phases timed
with the TSC, csrc/profile.c), how many switches, signals and system calls
it costs (_switches), and the floors measured beside it in the same
process.

A profile alternates rounds of the case timed as the suite times it
(uninstrumented, CLOCK_MONOTONIC around the loop) and timed through the
profiled loop, so the instrumentation's overhead is measured on the same
arrays in the same minutes.  The overhead is taken on the round trip: the
strided workload, where every access faults, timed both ways.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Callable, Sequence

from lazybench import _array as core
from lazybench import _histogram as histogram
from lazybench import _switches as switches
from lazybench._core import ffi, lib
from lazybench._errors import check as _check
from lazybench._suite import DEFAULT_N

PHASES: tuple[str, ...] = ("delivery", "resolve_a", "resolve_b", "resolve_c",
                           "resume", "step", "step_resume", "total")
TOTAL = "total"
# The floors every profile measures besides the variant's own parts.
BASE_FLOORS: tuple[str, ...] = ("null-syscall", "sigsegv-roundtrip",
                                "sigbus-uffd-roundtrip")
ROUND_TRIP = "sigsegv-roundtrip"
FLOOR_ITERATIONS = 2000


@dataclasses.dataclass(frozen=True)
class Effort:
    """How much a profile measures: rounds of the case (each timed
    uninstrumented, then profiled), the faults a round takes at least (one
    pass at the most), rounds of the round trip (for the overhead), and
    timings of each floor (their median is kept)."""
    rounds: int = 3
    min_faults: int = 2000
    trip_rounds: int = 5
    floor_repeats: int = 5


FULL = Effort()
# The quick suite's profiles (the CI gate runs it): half the work.
LIGHT = Effort(rounds=2, min_faults=1000, trip_rounds=3, floor_repeats=3)


class ProfileError(Exception):
    """A case that cannot be profiled: one line, exit status 2."""


def phase_labels(variant: str) -> dict[str, str]:
    """What each phase is for `variant`'s mechanism (phases it does not
    have are left out)."""
    info = core.variant_info(variant)
    if info.granule == 1 and info.signal:          # sigsegv-redirect
        labels = {"delivery": "delivery: fault to handler entry",
                  "resolve_a": "resolve: lookup and decode",
                  "resolve_b": "resolve: force the thunk",
                  "resolve_c": "resolve: rewrite the register"}
        if info.single_steps:
            labels.update({
                "resume": "resume: rt_sigreturn, re-execute, trap",
                "step": "resume: single-step handler",
                "step_resume": "resume: rt_sigreturn to the access"})
        else:
            labels["resume"] = "resume: rt_sigreturn to the access"
        return labels
    if info.signal:                                 # a page per signal
        install = ("pwrite and mprotect" if info.signal == "SIGSEGV"
                   else "pwrite and UFFDIO_CONTINUE"
                   if "pwrite-page" in info.parts else "UFFDIO_COPY")
        return {"delivery": "delivery: fault to handler entry",
                "resolve_a": "resolve: lookup and compute",
                "resolve_b": f"resolve: install ({install})",
                "resolve_c": "resolve: publish",
                "resume": "resume: rt_sigreturn to the access"}
    return {"delivery": "delivery: fault to the handler thread's receipt",
            "resolve_a": "resolve: compute",
            "resolve_b": "resolve: UFFDIO_COPY",
            "resume": "resume: wake-up to the access"}


@dataclasses.dataclass(frozen=True)
class Calibration:
    """TSC ticks per second, measured against CLOCK_MONOTONIC before and
    after the profile (None: no TSC, stamps are nanoseconds)."""
    before_hz: float | None
    after_hz: float | None

    @property
    def hz(self) -> float:
        if self.before_hz and self.after_hz:
            return (self.before_hz + self.after_hz) / 2
        return 1e9

    @property
    def drift(self) -> float | None:
        if self.before_hz and self.after_hz:
            return self.after_hz / self.before_hz - 1
        return None


@dataclasses.dataclass(frozen=True)
class PhaseStats:
    phase: str
    label: str
    count: int
    mean_ns: float | None
    p50_ns: float | None
    p90_ns: float | None
    p99_ns: float | None
    max_ns: float | None


@dataclasses.dataclass(frozen=True)
class Profiled:
    """One profiled case."""
    variant: str
    generator: str
    workload: str
    fraction: float
    n: int
    calibration: Calibration
    phases: tuple[PhaseStats, ...]          # the variant's, then total
    histograms: dict[str, histogram.Histogram]     # ticks
    counts: dict[str, int]                  # lb_profile_counts
    floors: dict[str, float]                # name -> ns per operation
    plain_ns_per_fault: float               # uninstrumented, the case
    # The round trip (strided: every access faults), median over rounds
    # of ns per fault uninstrumented and of the profiled faults' mean
    # total; the overhead is the median of the rounds' ratios, minus one.
    roundtrip_plain_ns: float
    roundtrip_profiled_ns: float
    overhead: float
    trip_rounds: int
    account: switches.Account
    events: dict[str, switches.EventStatus]
    model: switches.Model

    @property
    def over_round_trip(self) -> float | None:
        """The case's uninstrumented cost per fault as a multiple of the
        bare SIGSEGV round trip measured in the same run."""
        rt = self.floors.get(ROUND_TRIP)
        return self.plain_ns_per_fault / rt if rt else None

    def phase(self, name: str) -> PhaseStats | None:
        return next((p for p in self.phases if p.phase == name), None)

    def switch_rows(self) -> list[switches.Row]:
        return switches.rows(self.account, self.model, self.events)


class _CProfile:
    """An lb_profile, freed with its owner."""

    def __init__(self) -> None:
        self.ptr = ffi.gc(lib.lb_profile_new(), lib.lb_profile_free)
        if self.ptr == ffi.NULL:
            raise MemoryError("no memory for a profile")

    def run(self, arr: core.LazyArray, workload: str, fraction: float,
            seed: int, loops: int) -> None:
        w = ffi.new("lb_workload *", {
            "kind": core.WORKLOADS.index(workload), "fraction": fraction,
            "seed": seed})
        out = ffi.new("lb_result *")
        owner = arr._hold()
        rc = lib.lb_profile_run(owner.ptr, w, loops, self.ptr, out)
        del owner
        _check(rc, f"profiling {arr.variant}")

    def counts(self) -> dict[str, int]:
        c = ffi.new("lb_profile_counts *")
        lib.lb_profile_counts_read(self.ptr, c)
        return {name: int(getattr(c, name)) for name in
                ("accesses", "faults", "incomplete", "early", "skewed",
                 "signals", "traps", "syscalls", "elapsed_ns")}

    def histogram(self, phase: str) -> histogram.Histogram:
        return histogram.read(lib.lb_profile_hist(self.ptr,
                                                  PHASES.index(phase)))


def check_case(variant: str, generator: str, workload: str,
               fraction: float, n: int = 1) -> None:
    """Raise ProfileError when the case cannot be profiled here."""
    if variant not in core.VARIANTS:
        raise ProfileError(f"unknown variant {variant!r} (fault-driven "
                           f"variants: {', '.join(fault_driven())})")
    if not core.variant_info(variant).fault_driven:
        raise ProfileError(
            f"{variant} is not driven by faults, so there is no fault to "
            f"profile (fault-driven variants: {', '.join(fault_driven())})")
    avail = core.availability(variant)
    if not avail.available:
        raise ProfileError(f"{variant} is unavailable here: {avail.reason}")
    if generator not in core.GENERATORS:
        raise ProfileError(f"unknown generator {generator!r} (choose from "
                           f"{', '.join(core.GENERATORS)})")
    sup = core.supports(variant, generator)
    if not sup.available:
        raise ProfileError(sup.reason)
    if workload not in core.WORKLOADS:
        raise ProfileError(f"unknown workload {workload!r} (choose from "
                           f"{', '.join(core.WORKLOADS)})")
    if not 0 < fraction <= 1:
        raise ProfileError(f"touched fraction {fraction} is not in (0, 1]")
    if not 1 <= n <= core.MAX_ELEMENTS:
        raise ProfileError(f"{n} elements do not fit: an array holds 1 to "
                           f"{core.MAX_ELEMENTS}")


def fault_driven() -> tuple[str, ...]:
    return tuple(v for v in core.VARIANTS
                 if core.variant_info(v).fault_driven)


def measure_floors(variant: str, repeats: int = FULL.floor_repeats
                   ) -> dict[str, float]:
    """ns per operation of the base floors and the variant's own parts
    (median of `repeats` timings), those that run here."""
    info = core.variant_info(variant)
    names = list(BASE_FLOORS) + [f for f in (*info.parts, info.joint_floor)
                                 if f and f not in BASE_FLOORS]
    out = {}
    for name in names:
        if not core.floor_available(name):
            continue
        out[name] = statistics.median(
            core.floor_ns(name, FLOOR_ITERATIONS) / FLOOR_ITERATIONS
            for _ in range(repeats))
    return out


def _faults_of(arr: core.LazyArray, run: Callable[[], Any]) -> int:
    """The faults `run()` took on `arr`."""
    before = arr.counters().faults
    run()
    return arr.counters().faults - before


def _bench(arr: core.LazyArray, workload: str, fraction: float, seed: int,
           loops: int) -> tuple[int, int]:
    """`loops` uninstrumented passes (reset before each): their workload
    ns, and the faults they took."""
    before = arr.counters().faults
    ns = arr.bench(workload, fraction, seed, loops).elapsed_ns
    return ns, arr.counters().faults - before


def profile(variant: str, generator: str = "hash", workload: str = "seq",
            fraction: float = 1.0, n: int = DEFAULT_N, seed: int = 1,
            spin: int = 100, effort: Effort = FULL) -> Profiled:
    """Profile one case (see the module's docstring)."""
    check_case(variant, generator, workload, fraction, n)
    before_hz = core.tsc_hz()
    floors = measure_floors(variant, effort.floor_repeats)
    rounds, min_faults = effort.rounds, effort.min_faults
    labels = phase_labels(variant)
    prof = _CProfile()
    account = switches.Account()
    plain_ns = plain_faults = 0
    trip_plain: list[float] = []        # ns per fault, one per round
    trip_profiled: list[float] = []     # mean ticks per fault, likewise
    with switches.PerfCounters() as perf:
        try:
            made = core.LazyArray(variant, n, generator, spin=spin,
                                  seed=seed)
        except core.LazyBenchError as exc:
            raise ProfileError(f"{variant} cannot run this case: {exc}") \
                from None
        with made as arr:
            per_pass = max(1, _bench(arr, workload, fraction, seed, 1)[1])
            loops = max(1, math.ceil(min_faults / per_pass))
            trip_pass = max(1, _bench(arr, "strided", 1.0, seed, 1)[1])
            trip_loops = max(1, math.ceil(min_faults / 4 / trip_pass))
            for k in range(max(rounds, effort.trip_rounds)):
                if k < rounds:
                    # the case as the suite times it, with the process's
                    # switch accounting around it
                    s0 = switches.Snapshot.take(perf)
                    ns, got = _bench(arr, workload, fraction, seed, loops)
                    s1 = switches.Snapshot.take(perf)
                    account.add(s0, s1, got)
                    plain_faults += got
                    plain_ns += ns
                    # the case profiled, and the core's own counts
                    c0 = prof.counts()
                    got = _faults_of(arr, lambda: prof.run(
                        arr, workload, fraction, seed, loops))
                    c1 = prof.counts()
                    account.add_core(got, c1["signals"] - c0["signals"],
                                     c1["traps"] - c0["traps"],
                                     c1["syscalls"] - c0["syscalls"])
                # the round trip, both ways, a fresh profile each time
                ns, got = _bench(arr, "strided", 1.0, seed, trip_loops)
                trip = _CProfile()
                trip.run(arr, "strided", 1.0, seed, trip_loops)
                total = trip.histogram(TOTAL)
                if got and total.mean:
                    trip_plain.append(ns / got)
                    trip_profiled.append(total.mean)
        events = perf.status
    cal = Calibration(before_hz, core.tsc_hz())
    per_ns = 1e9 / cal.hz
    hists = {ph: prof.histogram(ph) for ph in PHASES}
    stats = []
    for ph in [*labels, TOTAL]:
        h = hists[ph]

        def ns(v: float | None) -> float | None:
            return None if v is None else v * per_ns
        stats.append(PhaseStats(
            ph, labels.get(ph, "total: access to completion"), h.count,
            ns(h.mean), ns(h.quantile(0.5)), ns(h.quantile(0.9)),
            ns(h.quantile(0.99)), ns(h.max) if h.count else None))
    if not plain_faults or not trip_plain or not hists[TOTAL].count:
        raise ProfileError(f"{variant}: the case took no fault to profile "
                           f"({workload}, {fraction:.0%} touched)")
    return Profiled(
        variant=variant, generator=generator, workload=workload,
        fraction=fraction, n=n, calibration=cal, phases=tuple(stats),
        histograms={ph: hists[ph] for ph in [*labels, TOTAL]},
        counts=prof.counts(), floors=floors,
        plain_ns_per_fault=plain_ns / plain_faults,
        roundtrip_plain_ns=statistics.median(trip_plain),
        roundtrip_profiled_ns=statistics.median(trip_profiled) * per_ns,
        overhead=statistics.median(
            b * per_ns / a for a, b in zip(trip_plain, trip_profiled)) - 1,
        trip_rounds=len(trip_plain),
        account=account, events=events, model=switches.model(variant))


# The case every fault-driven variant is profiled at in a run.
RUN_CASE = ("hash", "seq", 1.0)


def profile_run(variants: Sequence[str], n: int,
                step: Callable[[str], None] | None = None,
                effort: Effort = FULL
                ) -> tuple[list[Profiled], list[tuple[str, str]]]:
    """Profile RUN_CASE for each of `variants` (fault-driven ones: see
    fault_driven), in order, on n elements: the profiles, and (variant,
    reason) for those that could not be."""
    done, skipped = [], []
    generator, workload, fraction = RUN_CASE
    for v in variants:
        try:
            done.append(profile(v, generator, workload, fraction, n,
                                effort=effort))
        except ProfileError as exc:
            skipped.append((v, str(exc)))
        if step is not None:
            step(v)
    return done, skipped
