"""What a run measures: the profiles, and :func:`plan`, the one place
that decides a run's cases (variant x generator x workload x fraction, at
a level) and floors from a profile and the user's selection."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

from lazybench import _array as core
from lazybench import _pylevel as pylevel
from lazybench import _pythunks as pythunks
from lazybench import _sweeps as sweeps
from lazybench._case import (DEFAULT_SPIN, FAULT_AROUND_AUTO, SIGNAL_FLOORS,
                             Case, floor_benchmark_name, format_fraction)

FRACTIONS: tuple[float, ...] = (0.01, 0.1, 1.0)
FRACTION_SWEEP: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                     0.1, 0.2, 0.5, 1.0)
DEFAULT_N = 1 << 15                      # 256 KiB of int64, 64 pages
FLOOR_INNER_LOOPS = 1000
# Fault-around twins, besides 1: fixed windows and the adaptive one on the
# sequential scan, the adaptive one on the random gather (where it must
# stay at one page).
FAULT_AROUND: tuple[int, ...] = (4, 16, FAULT_AROUND_AUTO)
FAULT_AROUND_RANDOM: tuple[int, ...] = (FAULT_AROUND_AUTO,)
# Variants kept for one comparison each, on first passes of the
# per-element generators only (no recurrence, no warm pass, no Python-level
# case): sigsegv-redirect-nocache prices decoding on every fault,
# sigsegv-redirect-essay prices the single step that makes redirect safe.
# Every access of theirs faults, so each extra case costs a fault per
# element (about 10 us) for no new figure.
COMPARISON_ONLY: frozenset[str] = frozenset({"sigsegv-redirect-nocache",
                                             "sigsegv-redirect-essay"})
MAX_LOOPS = 2 ** 32                      # pyperf's own limit on loops


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    generators: tuple[str, ...]
    workloads: tuple[str, ...]
    fractions: tuple[float, ...]
    n: int
    processes: int
    values: int
    warmups: int
    min_time: float
    # Variants that fault once per element (granule 1) take a fault per
    # access, so the suite runs them with these generators only.
    per_element_generators: tuple[str, ...] = ("hash",)
    warm_twins: bool = True         # warm-pass twins at 100 % touched
    fault_around_twins: bool = True  # fault-around 4, 16 and auto twins
    # Python-level cases: (generator, workload, fraction) read from Python
    # by every C variant's view and every Python thunk kind, at python_n.
    python_plan: tuple[tuple[str, str, float], ...] = ()
    python_n: int = 1 << 15
    # pyperf workers per signal floor (SIGNAL_FLOORS; 0: `processes`):
    # every normalised figure of a run divides by them, so their noise is
    # every case's; and per other floor (0: as the signal floors).
    floor_processes: int = 0
    other_floor_processes: int = 0
    # The grid above (generators x workloads x fractions); and the sweeps
    # (lazybench._sweeps) whose cases follow it.
    grid: bool = True
    sweeps: tuple[str, ...] = ()

    def processes_for(self, floor: bool, name: str = "") -> int:
        """pyperf workers per benchmark: a case's, or floor `name`'s (a
        signal floor's without a name)."""
        if not floor:
            return self.processes
        signal = self.floor_processes or self.processes
        if name and name not in SIGNAL_FLOORS:
            return self.other_floor_processes or signal
        return signal


# The default suite's workloads, those its stored baseline was run with
# (random-pages, the size sweep's, is not among them).
GRID_WORKLOADS: tuple[str, ...] = ("seq", "random", "strided")

DEFAULT_PYTHON_PLAN: tuple[tuple[str, str, float], ...] = (
    *(("hash", w, f) for w in ("seq", "random") for f in FRACTIONS),
    ("hash", "strided", 1.0),
    ("recurrence", "seq", 1.0),
)

PROFILES: dict[str, Profile] = {
    "default": Profile("default", core.GENERATORS, GRID_WORKLOADS, FRACTIONS,
                       DEFAULT_N, processes=1, values=3, warmups=1,
                       min_time=0.01, python_plan=DEFAULT_PYTHON_PLAN),
    # Every C variant on the hash generator, in order and at random, 1 %
    # and 100 % touched, on a quarter of the default array, with no
    # Python-level case: each benchmark's worker costs about 0.3 s of
    # start-up and each variant a plot.  It is the CI gate's suite: 4
    # workers per case and 8 per floor, because a worker's timings keep its
    # state: values of one worker agree within 4 % at the median, workers
    # differ by up to 1.7 x (README, "The CI gate").
    "quick": Profile("quick", ("hash",), ("seq", "random"), (0.01, 1.0),
                     DEFAULT_N // 4, processes=4, values=2, warmups=1,
                     min_time=0.01, warm_twins=False,
                     fault_around_twins=False, python_plan=(),
                     floor_processes=8, other_floor_processes=2),
    # The touched-fraction sweep (when does laziness pay, issue "sweeps"):
    # the default array, the hash generator in order and at random, the
    # touched fraction from 0.1 % to 100 % in 1-2-5 steps; no twin, no
    # Python-level case.
    "fraction": Profile("fraction", ("hash",), ("seq", "random"),
                        FRACTION_SWEEP, DEFAULT_N, processes=1, values=3,
                        warmups=1, min_time=0.01, warm_twins=False,
                        fault_around_twins=False, python_plan=()),
    # The sweeps of lazybench._sweeps, one suite each, and all four (with
    # the fraction grid) in the full suite, with three workers per case.
    # (threads: 3 workers per case, as a worker's state moves a
    # multi-threaded pass by up to 1.6 x)
    **{name: Profile(name, ("hash",), ("seq",), (1.0,), DEFAULT_N,
                     processes=3 if name == "threads" else 1, values=3,
                     warmups=1, min_time=0.01, warm_twins=False,
                     fault_around_twins=False, python_plan=(), grid=False,
                     sweeps=(name,))
       for name in sweeps.SWEEPS},
    "full": Profile("full", ("hash",), ("seq", "random"), FRACTION_SWEEP,
                    DEFAULT_N, processes=3, values=3, warmups=1,
                    min_time=0.01, warm_twins=False,
                    fault_around_twins=False, python_plan=(),
                    sweeps=tuple(sweeps.SWEEPS)),
}


def choose_loops(pass_ns: int, min_time: float) -> int:
    """pyperf's loop count for a benchmark one loop of which takes
    `pass_ns`: the smallest power of two whose loops last at least
    `min_time` seconds, as pyperf's calibration picks it (1 for a pass
    that long already)."""
    loops = 1
    while loops * max(pass_ns, 1) < min_time * 1e9 and loops < MAX_LOOPS:
        loops *= 2
    return loops


def case_n(generator: str, workload: str, n: int) -> int:
    """Array size for a case, the same for every variant of it.

    The ``recurrence`` generator touched out of order forces the chain back
    to the nearest evaluated element, one nested fault per granule (a page
    for sigsegv-mprotect, an element for sigsegv-redirect).  A random
    gather can start anywhere, so it uses an array of at most
    MAX_NESTING/2 pages; the strided workload leaves a page's first
    element per touch, so it stays within one page of nesting.
    """
    if generator == "recurrence" and workload in ("random", "random-pages"):
        return min(n, core.MAX_NESTING // 2 * core.PAGE_ELEMENTS)
    return n


def runs_case(variant: str, generator: str, workload: str,
              per_element_generators: tuple[str, ...]) -> bool:
    """Variants that fault once per element (granule 1) pay a fault per
    access, so they run only `per_element_generators`, plus `recurrence`
    read in order; out of order that generator nests one fault per element
    back to the nearest evaluated one (the tests cover it on small
    arrays)."""
    if not core.supports(variant, generator).available:
        return False
    if variant in COMPARISON_ONLY:
        return generator in per_element_generators
    if core.granule(variant) > 1:
        return True
    if generator == "recurrence":
        return workload == "seq"
    return generator in per_element_generators


def build_cases(variants: tuple[str, ...], generators: tuple[str, ...],
                workloads: tuple[str, ...], fractions: tuple[float, ...],
                n: int, spin: int = DEFAULT_SPIN,
                per_element_generators: tuple[str, ...] = ("hash",),
                warm_twins: bool = True,
                fault_around_twins: bool = True) -> list[Case]:
    """Every (generator, workload, fraction, variant), then a warm pass at
    the largest fraction for each (workload, variant) of the first
    generator (a warm pass reads evaluated values: the generator does not
    matter)."""
    cases = [Case(v, g, w, f, case_n(g, w, n), spin)
             for g in generators for w in workloads for f in fractions
             for v in variants
             if runs_case(v, g, w, per_element_generators)]
    top = [c for c in cases if c.fraction == max(fractions)
           and c.generator == generators[0]
           and c.variant not in COMPARISON_ONLY]
    if warm_twins:
        cases += [dataclasses.replace(c, warm=True) for c in top]
    if fault_around_twins:
        twins = {"seq": FAULT_AROUND, "random": FAULT_AROUND_RANDOM}
        cases += [dataclasses.replace(c, fault_around=k) for c in top
                  if core.has_fault_around(c.variant)
                  for k in twins.get(c.workload, ())]
    return cases


def build_python_cases(variants: tuple[str, ...],
                       plan: tuple[tuple[str, str, float], ...],
                       n: int) -> list[Case]:
    """Python-level cases: each planned (generator, workload, fraction)
    for every given variant (C variants and Python thunk kinds) that has
    it."""
    return [Case(v, g, w, f, n, level="python")
            for g, w, f in plan for v in variants
            if pylevel.supports(v, g).available and v not in COMPARISON_ONLY]


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the user narrowed a profile to; None keeps the profile's."""
    variants: tuple[str, ...] | None = None   # C variants and thunk kinds
    generators: tuple[str, ...] | None = None
    workloads: tuple[str, ...] | None = None
    fractions: tuple[float, ...] | None = None
    n: int | None = None
    spin: int = DEFAULT_SPIN
    python: bool = True             # the Python-level cases too
    processes: int | None = None    # pyperf workers per case and floor


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a run measures and how pyperf times it.  Made once, by
    :func:`plan`; pyperf workers load the parent's plan (:meth:`load`)
    instead of deriving their own."""
    profile: Profile
    cases: tuple[Case, ...]
    floors: tuple[str, ...]
    unavailable: tuple[core.Availability, ...] = ()
    # cases a sweep has but this machine cannot hold (eager at 64 GiB)
    skipped: tuple[sweeps.Skipped, ...] = ()
    # pyperf's loops per benchmark, in benchmark_names() order; 0 lets
    # pyperf calibrate them (a worker process more).  Empty until
    # with_loops(): pyperf then calibrates every benchmark.
    loops: tuple[int, ...] = ()

    def benchmark_names(self) -> list[str]:
        """pyperf's benchmarks, in the order they run."""
        return [floor_benchmark_name(f) for f in self.floors] + \
            [c.name for c in self.cases]

    def benchmark_loops(self) -> dict[str, int]:
        """Each benchmark's loops (0: pyperf calibrates)."""
        names = self.benchmark_names()
        return dict(zip(names, self.loops or (0,) * len(names)))

    def with_loops(self, case_ns: Sequence[int],
                   floor_ns: Sequence[int] | None = None) -> "Plan":
        """This plan with each benchmark's loops chosen (see
        :func:`choose_loops`) from the nanoseconds of one of its loops:
        `case_ns` for the cases, `floor_ns` for the floors, in order.
        Without `floor_ns` the floors keep pyperf's calibration (0)."""
        if floor_ns is None:
            floor_ns = [0] * len(self.floors)
            floor_loops = [0] * len(self.floors)
        else:
            floor_loops = [choose_loops(ns, self.profile.min_time)
                           for ns in floor_ns]
        for what, got, want in (("cases", case_ns, self.cases),
                                ("floors", floor_ns, self.floors)):
            if len(got) != len(want):
                raise ValueError(f"{len(got)} loop times for {len(want)} "
                                 f"{what}")
        loops = [choose_loops(ns, self.profile.min_time) for ns in case_ns]
        return dataclasses.replace(self, loops=tuple(floor_loops + loops))

    def to_json(self) -> str:
        return json.dumps({
            "profile": dataclasses.asdict(self.profile),
            "cases": [c.to_dict() for c in self.cases],
            "floors": list(self.floors),
            "unavailable": [dataclasses.asdict(u) for u in self.unavailable],
            "skipped": [dataclasses.asdict(k) for k in self.skipped],
            "loops": self.benchmark_loops() if self.loops else {},
        })

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        prof = dict(data["profile"])
        for key in ("generators", "workloads", "fractions",
                    "per_element_generators"):
            prof[key] = tuple(prof[key])
        prof["python_plan"] = tuple(tuple(p) for p in prof["python_plan"])
        prof["sweeps"] = tuple(prof.get("sweeps", ()))
        made = cls(Profile(**prof),
                   tuple(Case.from_dict(c) for c in data["cases"]),
                   tuple(data["floors"]),
                   tuple(core.Availability(**u)
                         for u in data["unavailable"]),
                   tuple(sweeps.Skipped(**k)
                         for k in data.get("skipped", ())))
        loops = data.get("loops") or {}
        if loops:
            made = dataclasses.replace(made, loops=tuple(
                int(loops[name]) for name in made.benchmark_names()))
        return made

    def save(self, path: "os.PathLike[str]") -> None:
        with open(path, "w") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path: "os.PathLike[str]") -> "Plan":
        with open(path) as f:
            return cls.from_json(f.read())


def _known(names: tuple[str, ...] | None, known: tuple[str, ...],
           kind: str) -> tuple[str, ...] | None:
    if names is not None:
        for name in names:
            if name not in known:
                raise ValueError(f"unknown {kind} {name!r} (choose from "
                                 f"{', '.join(known)})")
    return names


def check_size(n: int) -> None:
    """Refuse sizes the core cannot take before anything runs."""
    if n > core.MAX_ELEMENTS:
        raise ValueError(f"--elements {n} is above the core's limit of "
                         f"{core.MAX_ELEMENTS}")


def touched_bytes(case: Case) -> int:
    """About the memory a case's workload makes resident: the elements it
    reads in order, or a page per read at random or per page."""
    pages = -(-case.n // core.PAGE_ELEMENTS)
    reads = case.fraction * (pages if case.workload in
                             ("strided", "random-pages") else case.n)
    if case.workload == "seq":
        size = reads * 8
    else:
        size = min(reads, pages) * 4096
    return int(min(8 * case.n, size + 4096))


def check_fits(cases: Sequence[Case]) -> None:
    """Refuse a grid whose cases this machine cannot hold: at most half
    its memory resident, the array's own before any access (see
    lazybench._sweeps.fits) plus the pages the workload touches."""
    have = sweeps.memory_bytes()
    for case in cases:
        why = sweeps.fits(case.variant, case.n)
        touched = touched_bytes(case)
        # recurrence is checked against an eager array of the same size
        reference = 8 * case.n if case.generator == "recurrence" else 0
        if not why and sweeps.resident_at_build(case.variant, case.n) \
                + touched + reference > have // 2:
            why = (f"does not fit: touching {format_fraction(case.fraction)}"
                   f" of {case.n} elements needs about "
                   f"{touched / 2**30:.1f} GiB; this machine has "
                   f"{have / 2**30:.1f} GiB")
        if why:
            raise ValueError(f"--elements {case.n}: {case.name} {why}")


# Floors every run measures: those results.csv's normalised columns, the
# comparison and the profile read (the signal round trips, mprotect, a
# null system call).  The others run when a variant of the run is made of
# them (its parts and joint floor), or when a report table reads them for
# it (TABLE_FLOORS, by variant name prefix).
COMMON_FLOORS: frozenset[str] = frozenset({
    "null-syscall", "mprotect", "sigsegv-roundtrip", "sigbus-uffd-roundtrip"})
TABLE_FLOORS: dict[str, tuple[str, ...]] = {
    "sigsegv-redirect": ("decode", "sigsegv-step"),     # the redirect table
    "uffd-sigbus": ("uffdio-copy-16",),   # uffd-sigbus at fault-around 16
    # what sigsegv-mprotect's kernel charges beyond its parts: its memfd
    # page source's joint floor, and a write through /proc/self/mem alone
    "sigsegv-mprotect": ("sigsegv-open-memfd", "mem-write-page"),
}


def run_floors(variants: Sequence[str]) -> tuple[str, ...]:
    """The floors a run of these variants measures, in the core's order:
    the common ones, the parts and joint floors of its C variants and the
    floors the report's tables read for them, those that run here."""
    own = {f for v in variants if v in core.VARIANTS
           for i in (core.variant_info(v),) for f in (*i.parts, i.joint_floor)}
    own |= {f for v in variants for prefix, floors in TABLE_FLOORS.items()
            if v.startswith(prefix) for f in floors}
    return tuple(f for f in core.FLOORS
                 if (f in COMMON_FLOORS or f in own)
                 and core.floor_available(f))


def plan(profile: Profile | str = "default",
         selection: Selection | None = None) -> Plan:
    """The cases and floors of a run: the profile's, narrowed to the
    selection, on the variants available here.  Unknown names, sizes
    that cannot work and a selection with no case raise ValueError with a
    one-line message."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"unknown suite profile {profile!r} (choose "
                             f"from {', '.join(PROFILES)})")
        profile = PROFILES[profile]
    sel = selection or Selection()
    if sel.processes is not None:
        profile = dataclasses.replace(profile, processes=sel.processes,
                                      floor_processes=sel.processes,
                                      other_floor_processes=sel.processes)
    variants = _known(sel.variants, core.VARIANTS + pythunks.KINDS,
                      "variant")
    generators = _known(sel.generators, core.GENERATORS, "generator") \
        or profile.generators
    workloads = _known(sel.workloads, core.WORKLOADS, "workload") \
        or profile.workloads
    fractions = sel.fractions or profile.fractions
    n = sel.n or profile.n
    if not profile.grid:
        narrows = set(profile.sweeps) <= sweeps.NARROWED_BY_GRID_OPTIONS
        given = [opt for opt, v in (("--generators", sel.generators),
                                    ("--workloads", sel.workloads),
                                    ("--touched", sel.fractions),
                                    ("--elements", sel.n)) if v is not None
                 and not (narrows and opt in ("--workloads", "--touched"))]
        if given:
            also = ", --workloads and --touched" if narrows else ""
            raise ValueError(f"the {profile.name} suite sets its own cases; "
                             f"{given[0]} does not apply (--variants{also} "
                             "do)")
    chosen, unavailable = [], []
    for a in core.all_availability():
        if variants is not None and a.variant not in variants:
            continue
        (chosen if a.available else unavailable).append(a)
    check_size(n)
    names = tuple(a.variant for a in chosen)
    cases: list[Case] = []
    if profile.grid:
        cases = build_cases(names, generators, workloads, fractions, n,
                            sel.spin, profile.per_element_generators,
                            profile.warm_twins, profile.fault_around_twins)
        check_fits(cases)
    swept, skipped = sweeps.sweep_cases(
        profile.sweeps, names, *((sel.workloads, sel.fractions)
                                 if not profile.grid else ()))
    cases += swept
    if sel.python:
        kinds = tuple(k for k in pythunks.KINDS
                      if variants is None or k in variants)
        python_plan = tuple(
            (g, w, f) for g, w, f in profile.python_plan
            if (sel.generators is None or g in generators)
            and (sel.workloads is None or w in workloads)
            and (sel.fractions is None or f in fractions))
        cases += build_python_cases(names + kinds, python_plan,
                                    min(n, profile.python_n))
    if not cases:
        raise ValueError(f"nothing to run: no case of the {profile.name} "
                         "suite matches the selection on the variants "
                         "available here")
    floors = run_floors(sorted({c.variant for c in cases}))
    names_seen = [c.name for c in cases]
    if len(set(names_seen)) != len(names_seen):
        raise AssertionError("two cases of one plan share a name")
    return Plan(profile, tuple(cases), floors, tuple(unavailable),
                tuple(skipped))
