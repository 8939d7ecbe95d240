"""The workloads of csrc/workloads.c, read from Python: the index streams
come from the core (the same loops the C workloads time), so the checksums
are the same, read through any element getter, for the "from Python"
table.

Every variant is read the same way, ``acc += get(i)`` for each index: for
a C variant with flat memory ``get`` is its memoryview's ``__getitem__``,
for the others the core's element access, for the Python thunks the
array's getter.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from lazybench import _array as core
from lazybench._core import ffi, lib
from lazybench._pythunks import MASK


def _stream(workload: str, n: int, fraction: float, seed: int,
            page_elements: int) -> tuple[Any, int]:
    """The core's workload description, and the number of reads it makes
    on n elements."""
    if page_elements != core.PAGE_ELEMENTS:
        raise ValueError(f"the core's workloads use its page of "
                         f"{core.PAGE_ELEMENTS} elements, not "
                         f"{page_elements}")
    w = ffi.new("lb_workload *", {
        "kind": core._index(core.WORKLOADS, workload, "workload"),
        "fraction": fraction, "seed": seed})
    m = int(lib.lb_workload_indices(w, n, ffi.NULL, 0))
    if m < 0:
        core._check(m, f"{workload} workload")
    return w, m


def indices(workload: str, n: int, fraction: float, seed: int,
            page_elements: int) -> list[int]:
    """The element indices the C workload reads, in its order."""
    w, m = _stream(workload, n, fraction, seed, page_elements)
    out = ffi.new("int64_t[]", m)
    core._check(min(0, int(lib.lb_workload_indices(w, n, out, m))),
                f"{workload} workload")
    return ffi.unpack(out, m)


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
