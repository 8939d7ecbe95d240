"""What a run measures: cases (variant x generator x workload x fraction),
floors, and the profiles that choose them and pyperf's settings."""
from __future__ import annotations

import dataclasses

from lazybench import core

FRACTIONS: tuple[float, ...] = (0.01, 0.1, 1.0)
DEFAULT_N = 1 << 17                      # 1 MiB of int64, 256 pages
DEFAULT_SPIN = 100
FLOOR_NAMES: tuple[str, ...] = tuple(core.FLOORS)
FLOOR_INNER_LOOPS = 1000
FAULT_AROUND: tuple[int, ...] = (4, 16)  # besides 1, on a sequential scan
# Variants kept for one comparison each, on first passes of the
# per-element generators only (no recurrence, no warm pass, no Python-level
# case): sigsegv-redirect-nocache prices decoding on every fault,
# sigsegv-redirect-essay prices the single step that makes redirect safe.
# Every access of theirs faults, so each extra case costs a fault per
# element (about 10 us) for no new figure.
COMPARISON_ONLY: frozenset[str] = frozenset({"sigsegv-redirect-nocache",
                                             "sigsegv-redirect-essay"})


@dataclasses.dataclass(frozen=True)
class Case:
    variant: str
    generator: str
    workload: str
    fraction: float
    n: int
    spin: int = DEFAULT_SPIN
    seed: int = 1
    warm: bool = False      # time a second pass over evaluated elements
    fault_around: int = 1   # pages one fault materialises
    level: str = "c"        # "c": the C workload loop; "python": pylevel

    @property
    def name(self) -> str:
        name = (f"{self.variant}/{self.generator}/{self.workload}/"
                f"{format_fraction(self.fraction)}")
        if self.level == "python":
            name = "py/" + name
        if self.fault_around > 1:
            name += f"/fa{self.fault_around}"
        return name + "/warm" if self.warm else name

    def reference(self) -> "Case":
        """The eager case whose checksum this case must reproduce."""
        return dataclasses.replace(self, variant="eager", warm=False,
                                   fault_around=1, level="c")


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
    warm: bool = True               # warm-pass twins at 100 % touched
    fault_around: bool = True       # fault-around 4 and 16 twins
    # Python-level cases: (generator, workload, fraction) read from Python
    # by every C variant's view and every Python thunk kind, at python_n.
    python_plan: tuple[tuple[str, str, float], ...] = ()
    python_n: int = 1 << 15


DEFAULT_PYTHON_PLAN: tuple[tuple[str, str, float], ...] = (
    *(("hash", w, f) for w in ("seq", "random") for f in FRACTIONS),
    ("hash", "strided", 1.0),
    ("recurrence", "seq", 1.0),
)

PROFILES: dict[str, Profile] = {
    "default": Profile("default", core.GENERATORS, core.WORKLOADS, FRACTIONS,
                       DEFAULT_N, processes=1, values=3, warmups=1,
                       min_time=0.025, python_plan=DEFAULT_PYTHON_PLAN),
    # A quarter of the default array: sigsegv-redirect's single step costs
    # about 10 us per element, so a full pass of the default array would
    # take over a second per value.
    "quick": Profile("quick", ("hash",), core.WORKLOADS, (0.01, 1.0),
                     DEFAULT_N // 4, processes=1, values=2, warmups=1,
                     min_time=0.01, warm=False, fault_around=False,
                     python_plan=(("hash", "random", 0.01),
                                  ("hash", "random", 1.0))),
}


def format_fraction(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def case_n(generator: str, workload: str, n: int) -> int:
    """Array size for a case, the same for every variant of it.

    The ``recurrence`` generator touched out of order forces the chain back
    to the nearest evaluated element, one nested fault per granule (a page
    for sigsegv-mprotect, an element for sigsegv-redirect).  A random
    gather can start anywhere, so it uses an array of at most
    MAX_NESTING/2 pages; the strided workload leaves a page's first
    element per touch, so it stays within one page of nesting.
    """
    if generator == "recurrence" and workload == "random":
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
                warm: bool = True, fault_around: bool = True) -> list[Case]:
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
    if warm:
        cases += [dataclasses.replace(c, warm=True) for c in top]
    if fault_around:
        cases += [dataclasses.replace(c, fault_around=k) for c in top
                  for k in FAULT_AROUND
                  if c.workload == "seq" and core.has_fault_around(c.variant)]
    return cases


def build_python_cases(variants: tuple[str, ...],
                       plan: tuple[tuple[str, str, float], ...],
                       n: int) -> list[Case]:
    """Python-level cases: each planned (generator, workload, fraction)
    for every given variant (C variants and Python thunk kinds) that has
    it."""
    from lazybench import pylevel

    return [Case(v, g, w, f, n, level="python")
            for g, w, f in plan for v in variants
            if pylevel.supports(v, g).available and v not in COMPARISON_ONLY]
