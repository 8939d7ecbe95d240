"""The workloads of csrc/workloads.c, written in Python: the same index
streams (so the same checksums) read through any element getter, for the
"from Python" table.

Every variant is read the same way, ``acc += get(i)`` for each index: for
a C variant with flat memory ``get`` is its memoryview's ``__getitem__``,
for the others the core's element access, for the Python thunks the
array's getter.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

from lazybench.pythunks import GOLDEN, MASK, mix64


def reads_of(workload: str, n: int, fraction: float,
             page_elements: int) -> int:
    """ceil(fraction * population), clamped to [1, population]; the
    population is the pages spanned for `strided`, else the elements."""
    population = -(-n // page_elements) if workload == "strided" else n
    want = fraction * population
    m = int(want)
    if m < want:
        m += 1
    return max(1, min(m, population))


def indices(workload: str, n: int, fraction: float, seed: int,
            page_elements: int) -> Sequence[int]:
    """The element indices the C workload reads, in its order."""
    m = reads_of(workload, n, fraction, page_elements)
    if workload == "seq":
        return range(m)
    if workload == "strided":
        return range(0, m * page_elements, page_elements)
    if workload == "random":
        out = []
        s = seed
        for _ in range(m):
            s = (s + GOLDEN) & MASK
            out.append((mix64(s) * n) >> 64)
        return out
    raise ValueError(f"unknown workload {workload!r}")


def run_pass(get: Callable[[int], int], idx: Sequence[int]) -> int:
    """Read every index once; the checksum is the sum modulo 2**64."""
    acc = 0
    for i in idx:
        acc += get(i)
    return acc & MASK


def time_pass(get: Callable[[int], int], idx: Sequence[int]) -> int:
    """Nanoseconds of one pass (run_pass), by perf_counter_ns."""
    t0 = time.perf_counter_ns()
    run_pass(get, idx)
    return time.perf_counter_ns() - t0
