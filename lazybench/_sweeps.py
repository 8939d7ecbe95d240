"""The sweeps (when does laziness pay): each builds its cases from the
variants available here.  A sweep's cases carry its name (``Case.sweep``)
and are reported in sections of their own (:mod:`lazybench._sweepreport`).

- ``cost``: generator cost per element from nothing (hash) to about
  100 us (spin rounds in decades) x touched fraction, random access: the
  grid the break-even analysis and ``lazybench advise`` read.  The array
  shrinks as the cost grows, so that computing it whole stays under about
  half a second.
- ``size``: array size from 1 MiB to 64 GiB, on the page-based variants
  (and eager where it fits), 0.1 % of the pages touched at random.
- ``threads``: 1 to the number of CPUs faulting threads, reading the same
  elements or each its own slice.

A variant that cannot hold an array of a size (eager at 64 GiB) gets no
case there but a :class:`Skipped` with the reason, which the report shows.
"""
from __future__ import annotations

import dataclasses
import math
import os

from lazybench import _array as core
from lazybench._case import DEFAULT_SPIN, Case, format_bytes

# -- cost x touched fraction ------------------------------------------------
# (generator, spin rounds): hash costs about what writing the element does;
# a round of spin about 4.5 ns here, so 20000 rounds about 100 us.
COST_LEVELS: tuple[tuple[str, int], ...] = (
    ("hash", DEFAULT_SPIN), ("spin", 20), ("spin", 200), ("spin", 2000),
    ("spin", 20000))
COST_FRACTIONS: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3,
                                     1.0)
COST_WORKLOADS: tuple[str, ...] = ("random", "seq")
COST_VARIANTS: tuple[str, ...] = (
    "eager", "swcheck", "sigsegv-mprotect", "sigsegv-redirect",
    "uffd-sigbus", "uffd-thread-unpinned")
COST_N = 1 << 15
# The array of a cost level: COST_N elements, fewer for spin, so that
# computing it whole takes at most COST_ROUNDS rounds of spin, but never
# fewer than COST_MIN_N elements (8 pages).
COST_ROUNDS = COST_N * 200
COST_MIN_N = 1 << 12

# -- array size -------------------------------------------------------------
SIZES: tuple[int, ...] = (1 << 20, 1 << 24, 1 << 28, 1 << 32, 1 << 36)
SIZE_FRACTION = 0.001
SIZE_MANY_FRACTION = 0.01
SIZE_BUDGETED: frozenset[str] = frozenset({"sigsegv-mprotect"})
SIZE_WORKLOAD = "random-pages"
# uffd-thread-same pins the faulting thread beside the handler thread: one
# mode of uffd-thread is enough here.
SIZE_EXCLUDED: frozenset[str] = frozenset({"uffd-thread-same",
                                           "uffd-thread-other"})

# -- threads ----------------------------------------------------------------
# uffd-thread-same and -other pin every calling thread to one CPU (beside
# the handler thread's, or away from it): threads of them would share one
# CPU, which measures nothing of scaling.  uffd-thread-unpinned stands for
# the mechanism.
THREADS_EXCLUDED: frozenset[str] = frozenset({"uffd-thread-same",
                                              "uffd-thread-other"})
THREADS_WORKLOAD = "seq"
THREADS_N_PAGES = 1 << 19        # page-based variants: 4 MiB, 1024 pages
THREADS_N_ELEMENTS = 1 << 14     # a fault per element: 16384 faults
THREADS_N_NO_FAULT = 1 << 22     # eager, swcheck: 32 MiB, so that a pass
                                 # outlasts the threads' wake-up


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A case a sweep would have, not run: which and why."""
    name: str
    variant: str
    reason: str


def cost_n(generator: str, spin: int) -> int:
    """The cost sweep's array size for a generator."""
    if generator != "spin" or spin <= 0:
        return COST_N
    n = min(COST_N, max(COST_MIN_N, COST_ROUNDS // spin))
    return n // core.PAGE_ELEMENTS * core.PAGE_ELEMENTS


MEMORY_ENV = "LAZYBENCH_MEMORY"


def memory_bytes() -> int:
    """This machine's memory; LAZYBENCH_MEMORY (bytes, or with a K, M or
    G suffix) simulates a smaller one, as the tests do."""
    real = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    text = os.environ.get(MEMORY_ENV, "").strip().upper()
    if not text:
        return real
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    try:
        value = int(float(text.rstrip("KMG")) * scale)
    except ValueError:
        raise ValueError(f"{MEMORY_ENV}={text!r} is not a size") from None
    return min(real, value) if value > 0 else real


def resident_at_build(variant: str, n: int) -> int:
    """Bytes a variant's array of n elements holds resident before any
    access: eager's values (and eager-handles' list too), a per-element
    variant's state words and values or handles, a page variant's state
    bytes only."""
    info = core.variant_info(variant)
    if info.base:
        return 8 * n * (2 if variant == "eager-handles" else 1)
    if info.granule == 1:
        return 9 * n
    return 2 * (n // core.PAGE_ELEMENTS + 1)


def fits(variant: str, n: int) -> str:
    """'' if an array of n elements fits this machine for the variant (at
    most half its memory resident before any access), else why not."""
    need, have = resident_at_build(variant, n), memory_bytes()
    if need <= have // 2:
        return ""
    return (f"does not fit: {format_bytes(8 * n)} of {variant} needs "
            f"{need / 2**30:.1f} GiB resident before any access; this "
            f"machine has {have / 2**30:.1f} GiB")


def _keep(variants: tuple[str, ...], case: Case,
          skipped: list[Skipped]) -> bool:
    if case.variant not in variants:
        return False
    if not core.supports(case.variant, case.generator).available:
        return False
    why = fits(case.variant, case.n)
    if why:
        skipped.append(Skipped(case.name, case.variant, why))
        return False
    return True


def cost_cases(variants: tuple[str, ...], skipped: list[Skipped],
               workloads: tuple[str, ...] | None = None,
               fractions: tuple[float, ...] | None = None) -> list[Case]:
    cases = [Case(v, g, w, f, cost_n(g, s), s, sweep="cost")
             for g, s in COST_LEVELS for w in workloads or COST_WORKLOADS
             for f in fractions or COST_FRACTIONS for v in COST_VARIANTS]
    return [c for c in cases if _keep(variants, c, skipped)]


def size_variants(variants: tuple[str, ...]) -> tuple[str, ...]:
    """Page-based variants (a fault materialises a page), and eager."""
    out = []
    for v in variants:
        info = core.variant_info(v)
        if v in SIZE_EXCLUDED:
            continue
        if v == "eager" or (info.granule > 1 and info.fault_driven):
            out.append(v)
    return tuple(out)


def size_cases(variants: tuple[str, ...],
               skipped: list[Skipped]) -> list[Case]:
    cases = [Case(v, "hash", SIZE_WORKLOAD, SIZE_FRACTION, size // 8,
                  sweep="size")
             for size in SIZES for v in size_variants(variants)]
    # and sigsegv-mprotect at 1 % of the largest: more isolated pages than
    # its mapping budget, so it evicts (the report counts them)
    cases += [Case(v, "hash", SIZE_WORKLOAD, SIZE_MANY_FRACTION,
                   SIZES[-1] // 8, sweep="size")
              for v in size_variants(variants) if v in SIZE_BUDGETED]
    return [c for c in cases if _keep(variants, c, skipped)]


def thread_counts() -> tuple[int, ...]:
    """1 to the CPUs this process may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return tuple(range(1, max(cpus, 1) + 1))


def threads_n(variant: str) -> int:
    """The threads sweep's array size for a variant."""
    info = core.variant_info(variant)
    if not info.fault_driven:
        return THREADS_N_NO_FAULT
    return THREADS_N_ELEMENTS if info.granule == 1 else THREADS_N_PAGES


def threads_cases(variants: tuple[str, ...],
                  skipped: list[Skipped]) -> list[Case]:
    cases = []
    for v in variants:
        if v in THREADS_EXCLUDED:
            continue
        n = threads_n(v)
        for t in thread_counts():
            for disjoint in ((False,) if t == 1 else (False, True)):
                cases.append(Case(v, "hash", THREADS_WORKLOAD, 1.0, n,
                                  sweep="threads", threads=t,
                                  disjoint=disjoint))
    return [c for c in cases if _keep(variants, c, skipped)]


SWEEPS = {"cost": cost_cases, "size": size_cases, "threads": threads_cases}
# The sweeps --workloads and --touched narrow (the others set their own).
NARROWED_BY_GRID_OPTIONS = frozenset({"cost"})


def sweep_cases(names: tuple[str, ...], variants: tuple[str, ...],
                workloads: tuple[str, ...] | None = None,
                fractions: tuple[float, ...] | None = None
                ) -> tuple[list[Case], list[Skipped]]:
    """The cases of the named sweeps on `variants` (the cost sweep on
    `workloads` and `fractions` when given), and those skipped."""
    skipped: list[Skipped] = []
    cases = [c for name in names for c in SWEEPS[name](
        variants, skipped, *((workloads, fractions)
                             if name in NARROWED_BY_GRID_OPTIONS else ()))]
    return cases, skipped


# Floors that may run in several threads at once (each thread on mappings
# of its own); the signal floors install a process-wide handler and may
# not.  With T threads at once, a floor whose time per operation grows T
# times is serialised by something the threads share (mprotect: the
# process's memory-map lock, taken for writing).
CONCURRENT_FLOORS: tuple[str, ...] = ("null-syscall", "mprotect",
                                      "first-touch", "uffdio-copy",
                                      "page-compute")
CONCURRENT_ITERATIONS = 2000
CONCURRENT_REPEATS = 3


def concurrent_floors() -> list[dict[str, object]]:
    """Each of CONCURRENT_FLOORS run by 1 to the CPUs threads at once
    (released together): ns per operation in each thread, the best of
    CONCURRENT_REPEATS, and that over the 1-thread figure."""
    import threading

    rows: list[dict[str, object]] = []
    for name in CONCURRENT_FLOORS:
        if name not in core.FLOORS or not core.floor_available(name):
            continue
        alone = 0.0
        for t in thread_counts():
            best = math.inf
            for _ in range(CONCURRENT_REPEATS):
                out = [0] * t
                start = threading.Barrier(t)

                def work(k: int) -> None:
                    start.wait()
                    out[k] = core.floor_ns(name, CONCURRENT_ITERATIONS)

                team = [threading.Thread(target=work, args=(k,))
                        for k in range(t)]
                for th in team:
                    th.start()
                for th in team:
                    th.join()
                best = min(best, sum(out) / t / CONCURRENT_ITERATIONS)
            alone = alone or best
            rows.append({"floor": name, "threads": t, "ns_per_op": best,
                         "over_one_thread": best / alone})
    return rows
