"""What a run measures: cases (variant x generator x workload x fraction),
floors, and the profiles that choose them and pyperf's settings."""
from __future__ import annotations

import dataclasses

from lazybench import core

FRACTIONS: tuple[float, ...] = (0.01, 0.1, 1.0)
DEFAULT_N = 1 << 20                      # 8 MiB of int64, 2048 pages
DEFAULT_SPIN = 100
FLOOR_NAMES: tuple[str, ...] = tuple(core.FLOORS)
FLOOR_INNER_LOOPS = 1000


@dataclasses.dataclass(frozen=True)
class Case:
    variant: str
    generator: str
    workload: str
    fraction: float
    n: int
    spin: int = DEFAULT_SPIN
    seed: int = 1

    @property
    def name(self) -> str:
        return (f"{self.variant}/{self.generator}/{self.workload}/"
                f"{format_fraction(self.fraction)}")

    def reference(self) -> "Case":
        """The eager case whose checksum this case must reproduce."""
        return dataclasses.replace(self, variant="eager")


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


PROFILES: dict[str, Profile] = {
    "default": Profile("default", core.GENERATORS, core.WORKLOADS, FRACTIONS,
                       DEFAULT_N, processes=3, values=3, warmups=1,
                       min_time=0.05),
    "quick": Profile("quick", ("hash",), core.WORKLOADS, FRACTIONS,
                     DEFAULT_N, processes=1, values=3, warmups=1,
                     min_time=0.02),
}


def format_fraction(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def case_n(generator: str, workload: str, n: int) -> int:
    """Array size for a case.

    A random gather over the ``recurrence`` generator forces, on its first
    touch, the whole chain back to element 0 through one nested fault per
    page; so that case uses an array of at most MAX_NESTING/2 pages,
    within the documented nesting depth.
    """
    if generator == "recurrence" and workload == "random":
        return min(n, core.MAX_NESTING // 2 * core.PAGE_ELEMENTS)
    return n


def build_cases(variants: tuple[str, ...], generators: tuple[str, ...],
                workloads: tuple[str, ...], fractions: tuple[float, ...],
                n: int, spin: int = DEFAULT_SPIN) -> list[Case]:
    return [Case(v, g, w, f, case_n(g, w, n), spin)
            for g in generators for w in workloads for f in fractions
            for v in variants]
