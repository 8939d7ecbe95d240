"""One case of a run, and the protocol every level implements.

A case is (variant, generator, workload, touched fraction) at a level: the
C workload loop (``"c"``) or a Python loop reading a view or a Python thunk
(``"python"``).  A level builds a fresh array for a case as a
:class:`Subject`, the small protocol verification and timing drive (see
:mod:`lazybench._levels`, the one place that dispatches on the level).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

DEFAULT_SPIN = 100
# The floors normalised figures divide by: the bare signal round trips,
# SIGSEGV and userfaultfd SIGBUS (results.csv's *_signal_floors columns,
# the comparison, the CI gate).
SIGNAL_FLOORS: tuple[str, ...] = ("sigsegv-roundtrip", "sigbus-uffd-roundtrip")
# Case.fault_around of adaptive fault-around (the C core's
# LB_FAULT_AROUND_AUTO): results.csv holds it as -1, names and reports
# say "auto".
FAULT_AROUND_AUTO = -1
# Benchmark names of each level's cases start with its prefix.
LEVEL_PREFIX: dict[str, str] = {"c": "", "python": "py/"}


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
    fault_around: int = 1   # pages one fault materialises (-1: auto)
    level: str = "c"        # a key of LEVEL_PREFIX
    # A sweep's case (see lazybench._sweeps): the sweep's name ("" for the
    # plain grid of a suite), and the faulting threads: 1, or several
    # reading the same elements (`disjoint` false) or each its own slice.
    sweep: str = ""
    threads: int = 1
    disjoint: bool = False

    @property
    def generator_label(self) -> str:
        """The generator, with its rounds when they are not the default's
        (the cost sweep's spin2000)."""
        if self.generator == "spin" and self.spin != DEFAULT_SPIN:
            return f"spin{self.spin}"
        return self.generator

    @property
    def placement(self) -> str:
        return "disjoint" if self.disjoint else "same"

    @property
    def name(self) -> str:
        name = (f"{self.variant}/{self.generator_label}/{self.workload}/"
                f"{format_fraction(self.fraction)}")
        name = LEVEL_PREFIX[self.level] + name
        if self.sweep:
            name = f"{self.sweep}/{name}"
        if self.sweep == "size":
            name += f"/{format_bytes(self.n * 8)}"
        if self.sweep == "threads":
            name += f"/t{self.threads}-{self.placement}"
        if self.fault_around != 1:
            name += f"/fa{format_fault_around(self.fault_around)}"
        return name + "/warm" if self.warm else name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Case":
        return cls(**data)


def floor_benchmark_name(name: str) -> str:
    """The pyperf benchmark that times floor `name`."""
    return f"floor/{name}"


def format_fault_around(k: int) -> str:
    """A fault-around as names and reports show it: its pages, or
    "-auto" for the adaptive one (so names read fa4, fa16, fa-auto)."""
    return "-auto" if k == FAULT_AROUND_AUTO else str(k)


def format_fraction(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def format_bytes(size: int) -> str:
    """'64GiB', '1MiB', '768KiB', '100B': the largest binary unit that
    divides `size`, else bytes."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size}B"


class Subject(Protocol):
    """A case's array, built fresh: what verification and timing drive."""

    build_ns: int            # building the array, untimed in the passes
    accesses: int            # element reads of one pass
    touched_pages: int       # distinct pages those reads fall in
    pass_ns: int             # the last run_pass, timed as time() times one

    def run_pass(self) -> int:
        """One pass of the workload; its checksum.  Its time is left in
        `pass_ns`."""

    def time(self, loops: int) -> int:
        """Nanoseconds of `loops` passes, each on a fresh array unless the
        case is warm (then over evaluated elements)."""

    def counters(self) -> dict[str, int]:
        """The core's counters since they were last cleared."""

    def clear_counters(self) -> None: ...

    def release(self) -> None: ...


