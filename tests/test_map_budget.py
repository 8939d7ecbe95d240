"""sigsegv-mprotect's mapping budget: the kernel mappings its regions are
split into are accounted across all live arrays of the process, exactly;
an opening that would pass the budget evicts the array's oldest isolated
runs, and when there is none to evict fails with a clear error before
any mprotect could fail with ENOMEM; large sparsely touched arrays work."""
from __future__ import annotations

import gc
import math
import re
import subprocess
import sys

import pytest

from lazybench import _array as core
from lazybench._core import ffi, lib
from lazybench._pythunks import GOLDEN, MASK, hash_value, mix64

VARIANT = "sigsegv-mprotect"
PAGES = 40_000
N = PAGES * core.PAGE_ELEMENTS
# A random workload at this fraction opens about half the pages, in
# scattered runs: close to the most mappings random opening can make
# (2 * pages * d * (1 - d), a quarter of a mapping per page at d = 1/2).
HALF = math.log(2) / core.PAGE_ELEMENTS
BUDGET_ERROR = (r"sigsegv-mprotect: opening page \d+ would take the process "
                r"past \d+ memory mappings \(vm\.max_map_count is \d+\)")

def _random_checksum(n: int, fraction: float, seed: int,
                     array_seed: int = 1) -> int:
    """The random workload over the hash generator, computed in Python
    (its index stream written here, apart from the core's)."""
    want = fraction * n
    m = min(max(int(want) + (int(want) < want), 1), n)
    s, acc = seed, 0
    for _ in range(m):
        s = (s + GOLDEN) & MASK
        i = (mix64(s) * n) >> 64
        acc += hash_value(i, array_seed)
    return acc & MASK


def _total() -> int:
    """Mappings accounted to all live sigsegv-mprotect arrays."""
    out = ffi.new("int64_t[4]")
    lib.lb_mappings(ffi.NULL, out, out + 1, out + 2, out + 3)
    return int(out[1])


def _fill_budget(filler: core.LazyArray) -> None:
    """Open isolated pages of `filler` (two mappings each) until all but at
    most one mapping of the budget is taken, so that an opening in the
    middle of an array with no run to evict cannot fit.  (Creating an array
    takes its one mapping outside the budget: create them all first.)"""
    out = ffi.new("int64_t[4]")
    page = 2
    while True:
        lib.lb_mappings(ffi.NULL, out, out + 1, out + 2, out + 3)
        if out[2] - out[1] < 2:
            return
        filler[page * core.PAGE_ELEMENTS]
        page += 2


def _maps_in(arr: core.LazyArray) -> int:
    """Lines of /proc/self/maps inside the array's region."""
    start = int(ffi.cast("uintptr_t", lib.lb_view_address(arr._owner.ptr)))
    end = start + -(-arr.n * 8 // 4096) * 4096
    count = 0
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if start <= lo and hi <= end:
                count += 1
    return count


def test_scattered_pages_are_accounted_exactly() -> None:
    gc.collect()
    before = _total()
    with core.LazyArray(VARIANT, N) as arr:
        assert arr.mappings().array == 1 == _maps_in(arr)
        got = arr.run("random", HALF, seed=5).checksum
        assert got == _random_checksum(N, HALF, 5)
        m = arr.mappings()
        assert m.array == _maps_in(arr)
        assert 0.45 * PAGES < m.array < 0.55 * PAGES
        assert m.array <= m.total <= m.budget < m.max_map_count
        arr.reset()
        assert arr.mappings().array == 1 == _maps_in(arr)
        arr.run("seq")                     # opened runs merge as they grow
        assert arr.mappings().array == 1 == _maps_in(arr)
        assert arr.mappings().total == before + 1
    assert _total() == before              # release returns them all


def test_concurrent_openers_never_undercount() -> None:
    from conftest import race

    with core.LazyArray(VARIANT, PAGES // 4 * core.PAGE_ELEMENTS) as arr:
        race(arr, "random", HALF, seed=7, threads=2)
        assert arr.mappings().array == _maps_in(arr)


def test_budget_spans_all_live_arrays() -> None:
    """Four arrays of 40,000 pages, each opened at about every other page:
    each array alone is far inside vm.max_map_count, together they are
    not.  The later ones stay within the budget by evicting their own
    oldest isolated runs; an array with nothing to evict fails with a
    clear error, and every array stays usable."""
    gc.collect()
    before = _total()
    # four to run, one to fill the budget, one to fail
    arrays = [core.LazyArray(VARIANT, N) for _ in range(6)]
    try:
        for k, arr in enumerate(arrays[:4]):
            got = arr.run("random", HALF, seed=10 + k).checksum
            assert got == _random_checksum(N, HALF, 10 + k)
            assert arr.mappings().total <= arr.mappings().budget
        assert arrays[0].counters().evicted_pages == 0
        assert arrays[3].counters().evicted_pages > 0
        _fill_budget(arrays[4])
        failed = 5
        with pytest.raises(core.LazyEvaluationError) as info:
            arrays[failed][N // 2]
        assert re.search(BUDGET_ERROR, str(info.value)), info.value
        assert "\n" not in str(info.value)
        m = arrays[0].mappings()
        assert m.total <= m.budget
        ours = sum(a.mappings().array for a in arrays)
        assert ours == m.total - before
        assert sum(_maps_in(a) for a in arrays) == ours
        # The arrays that ran keep their values (the random pass again: no
        # new page, same checksum).
        assert arrays[0].run("random", HALF, seed=10).checksum == \
            _random_checksum(N, HALF, 10)
        # Once one array is released, the failed one completes its pass,
        # and a sequential scan (at most two mappings at a time) too.
        arrays[0].release()
        arrays[failed].reset()
        assert arrays[failed].run("random", HALF, seed=10 + failed) \
            .checksum == _random_checksum(N, HALF, 10 + failed)
        arrays[failed].reset()
        with core.LazyArray("eager", N) as ref:
            seq = ref.run("seq").checksum
        assert arrays[failed].run("seq").checksum == seq
        for arr in arrays[1:]:
            arr.reset()
            assert arr.run("seq").checksum == seq
            assert arr.mappings().array == 1
    finally:
        for arr in arrays:
            arr.release()


def test_budget_error_through_a_view_is_clear() -> None:
    """A Python read has no call to return the error to: the process ends,
    saying why, before any mprotect fails."""
    code = ("import math\n"
            "from lazybench import _array as core\n"
            f"half = math.log(2) / {core.PAGE_ELEMENTS}\n"
            f"keep = [core.LazyArray({VARIANT!r}, {N}) for _ in range(3)]\n"
            "for k, a in enumerate(keep):\n"
            "    a.run('random', half, seed=k)\n"
            # the rest of the budget held too, so the view's array has
            # nothing of its own to evict (see _fill_budget)
            "from lazybench._core import ffi, lib\n"
            "out = ffi.new('int64_t[4]')\n"
            f"fill, arr = (core.LazyArray({VARIANT!r}, {N}) for _ in "
            "range(2))\n"
            "page = 2\n"
            "while lib.lb_mappings(ffi.NULL, out, out + 1, out + 2, out + 3)"
            " or out[2] - out[1] >= 2:\n"
            f"    fill[page * {core.PAGE_ELEMENTS}]\n"
            "    page += 2\n"
            "v = arr.view()\n"
            f"print(sum(v[i] for i in range(0, {N}, 2 * {core.PAGE_ELEMENTS}"
            ")))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0
    assert re.search(BUDGET_ERROR, proc.stderr), proc.stderr
    assert "ENOMEM" not in proc.stderr


def test_large_sparse_array_works() -> None:
    """0.1 % of 16 million pages, opened at random: about 33,000 mappings,
    fine, though the array has far more pages than vm.max_map_count."""
    pages = 1 << 24
    n = pages * core.PAGE_ELEMENTS
    fraction = -math.log(1 - 0.001) / core.PAGE_ELEMENTS
    with core.LazyArray(VARIANT, n) as arr:
        assert arr.run("random", fraction, seed=3).checksum == \
            _random_checksum(n, fraction, 3)
        touched = arr.footprint("random", fraction, seed=3).pages
        m = arr.mappings()
        assert arr.counters().pages_materialised == touched
        assert m.array == _maps_in(arr)
        assert 25_000 < m.array < 2 * touched + 1


def _region_maps(arr: core.LazyArray) -> list[str]:
    """The /proc/self/maps lines inside the array's region."""
    start = int(ffi.cast("uintptr_t", lib.lb_view_address(arr._owner.ptr)))
    end = start + -(-arr.n * 8 // 4096) * 4096
    with open("/proc/self/maps") as f:
        return [line for line in f
                if start <= int(line.split()[0].split("-")[0], 16) and
                int(line.split()[0].split("-")[1], 16) <= end]


@pytest.mark.parametrize("memfd", [False, True])
def test_both_page_sources(monkeypatch: pytest.MonkeyPatch,
                           memfd: bool) -> None:
    """Anonymous memory written through /proc/self/mem where the kernel
    allows it, else (LAZYBENCH_MPROTECT_MEMFD simulates that) a memfd:
    both give the values, count their mappings exactly, evict, and never
    merge with another array's region next to them."""
    if memfd:
        monkeypatch.setenv("LAZYBENCH_MPROTECT_MEMFD", "1")
    else:
        monkeypatch.delenv("LAZYBENCH_MPROTECT_MEMFD", raising=False)
    pages = 64
    n = pages * core.PAGE_ELEMENTS
    with core.LazyArray("eager", n) as ref:
        seq = ref.run("seq").checksum
        rnd = ref.run("random", 0.002, seed=4).checksum
    arrays = [core.LazyArray(VARIANT, n) for _ in range(3)]
    try:
        for arr in arrays:
            lines = _region_maps(arr)
            assert len(lines) == 1
            if memfd or not core.floor_available("sigsegv-open"):
                assert "memfd:lazybench-mprotect" in lines[0]
            else:
                assert lines[0].split()[4] == "0"    # no inode: anonymous
        for arr in arrays:
            assert arr.run("random", 0.002, seed=4).checksum == rnd
            assert arr.mappings().array == len(_region_maps(arr))
            arr.reset()
            assert arr.run("seq").checksum == seq
            assert arr.mappings().array == 1 == len(_region_maps(arr))
            assert arr.counters().faults == \
                arr.counters().pages_materialised
    finally:
        for arr in arrays:
            arr.release()
    # with fault-around, runs go into the memfd with one pwrite
    with core.LazyArray(VARIANT, n, fault_around=16) as arr:
        assert "memfd:lazybench-mprotect" in _region_maps(arr)[0]
        assert core.mprotect_source(16) == "memfd"
        assert arr.run("seq").checksum == seq
