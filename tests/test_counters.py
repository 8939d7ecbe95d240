"""Counters: what the core says it did matches what the workload needed."""
from __future__ import annotations

import pytest

from lazybench import _array as core
from lazybench._suite import FRACTIONS

from conftest import SMALL_N, SMALL_PAGES, race


@pytest.mark.parametrize("workload", core.WORKLOADS)
@pytest.mark.parametrize("fraction", FRACTIONS)
def test_mprotect_one_fault_per_touched_page(workload: str,
                                             fraction: float) -> None:
    with core.LazyArray("sigsegv-mprotect", SMALL_N, "hash") as arr:
        fp = arr.footprint(workload, fraction, seed=3)
        arr.run(workload, fraction, seed=3)
        c = arr.counters()
        assert c.faults == fp.pages
        assert c.pages_materialised == fp.pages
        assert c.max_nesting == 1
        arr.clear_counters()
        arr.run(workload, fraction, seed=3)
        assert arr.counters().faults == 0


def test_mprotect_materialises_whole_pages() -> None:
    with core.LazyArray("sigsegv-mprotect", SMALL_N, "hash") as arr:
        arr.run("seq", 1.0)
        c = arr.counters()
    assert c.pages_materialised == SMALL_PAGES
    assert c.elements_materialised == SMALL_N
    assert c.generator_calls == SMALL_N


def test_reset_makes_pages_lazy_again() -> None:
    with core.LazyArray("sigsegv-mprotect", SMALL_N, "hash") as arr:
        arr.run("strided", 1.0)
        arr.reset()
        arr.clear_counters()
        arr.run("strided", 1.0)
        assert arr.counters().faults == SMALL_PAGES


def test_eager_never_faults() -> None:
    with core.LazyArray("eager", SMALL_N, "hash") as arr:
        assert arr.counters().generator_calls == SMALL_N
        arr.clear_counters()
        arr.run("random", 1.0)
        assert arr.counters().faults == 0


def test_force_materialises_everything_once() -> None:
    with core.LazyArray("sigsegv-mprotect", SMALL_N, "spin", spin=5) as arr:
        arr.force()
        arr.force()
        c = arr.counters()
        assert c.pages_materialised == SMALL_PAGES
        arr.run("seq", 1.0)
        assert arr.counters().faults == 0


def test_two_threads_materialise_each_page_once() -> None:
    """cffi drops the GIL around C calls, so both threads fault at once."""
    with core.LazyArray("eager", SMALL_N, "spin", spin=50) as ref:
        expected = ref.run("random", 1.0, seed=11).checksum
    with core.LazyArray("sigsegv-mprotect", SMALL_N, "spin", spin=50) as arr:
        got = race(arr, "random", 1.0, seed=11)
        c = arr.counters()
    assert got == [expected, expected]
    assert c.pages_materialised == SMALL_PAGES
    assert c.generator_calls == SMALL_N
    assert c.faults >= SMALL_PAGES


def test_bench_resets_before_every_loop() -> None:
    with core.LazyArray("eager", SMALL_N, "hash") as ref:
        expected = ref.run("seq", 1.0).checksum
    with core.LazyArray("sigsegv-mprotect", SMALL_N, "hash") as arr:
        result = arr.bench("seq", 1.0, seed=1, loops=5)
        c = arr.counters()
    assert result.checksum == expected
    assert c.faults == 5 * SMALL_PAGES
    assert c.pages_materialised == 5 * SMALL_PAGES
