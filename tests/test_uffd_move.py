"""uffd-move: pages installed by UFFDIO_MOVE, write-protected; stores
refused with an error.  (Checksums, fork, release, counters: the tests
over every variant; availability without UFFD_FEATURE_MOVE: test_uffd.py.)"""
from __future__ import annotations

import re
import signal

import pytest

from lazybench import LazyEvaluationError
from lazybench import _array as core
from lazybench._core import ffi, lib

from conftest import SMALL_N, SMALL_PAGES, race, run_python

pytestmark = pytest.mark.skipif(
    not core.availability("uffd-move").available,
    reason=core.availability("uffd-move").reason)

STORE = "uffd-move: a store to a lazy element (lazy elements are read-only)"


def _expected(n: int, workload: str = "seq", generator: str = "hash",
              fraction: float = 1.0, seed: int = 1) -> int:
    with core.LazyArray("eager", n, generator) as ref:
        return ref.run(workload, fraction, seed).checksum


def _store(arr: core.LazyArray, i: int) -> None:
    arr.selftest_form(lib.LB_FORM_STORE, 3, i, 42)


def test_store_to_a_missing_element_is_refused() -> None:
    n = 4 * core.PAGE_ELEMENTS
    with core.LazyArray("uffd-move", n) as arr, \
            core.LazyArray("eager", n) as ref:
        with pytest.raises(LazyEvaluationError, match=re.escape(STORE)):
            _store(arr, 5)
        assert arr.counters().pages_materialised == 0
        assert arr[5] == ref[5]


def test_store_to_an_installed_element_is_refused() -> None:
    n = 4 * core.PAGE_ELEMENTS
    with core.LazyArray("uffd-move", n, fault_around=2) as arr, \
            core.LazyArray("eager", n) as ref:
        want = ref[5], ref[core.PAGE_ELEMENTS + 5]
        assert arr[5] == want[0]                    # pages 0 and 1 moved in
        for i in (5, core.PAGE_ELEMENTS + 5):       # the faulting page and
            with pytest.raises(LazyEvaluationError, match=re.escape(STORE)):
                _store(arr, i)                      # one moved around it
        assert (arr[5], arr[core.PAGE_ELEMENTS + 5]) == want
        # after a reset the pages are missing again, then protected again
        arr.reset()
        with pytest.raises(LazyEvaluationError, match=re.escape(STORE)):
            _store(arr, 5)
        assert arr[5] == want[0]
        with pytest.raises(LazyEvaluationError, match=re.escape(STORE)):
            _store(arr, 5)
        assert arr.run("seq").checksum == _expected(n)


def test_store_outside_a_guarded_call_dies_with_the_reason() -> None:
    code = ("import ctypes\n"
            "from lazybench import _array as core\n"
            "from lazybench._core import ffi, lib\n"
            "arr = core.LazyArray('uffd-move', 4096)\n"
            "arr[0]\n"
            "addr = int(ffi.cast('uintptr_t', "
            "lib.lb_view_address(arr._owner.ptr)))\n"
            "ctypes.c_int64.from_address(addr).value = 7\n"
            "print('stored')\n")
    proc = run_python(code, "-X", "faulthandler", timeout=60)
    assert proc.returncode == -signal.SIGBUS, proc.stderr
    assert STORE in proc.stderr
    assert "stored" not in proc.stdout


def test_a_store_between_move_and_write_protection_is_found() -> None:
    """Another thread's store in the window before the write-protection
    (driven by hand in C: move, store, protect) is found by the digest
    and the page dropped, never read back."""
    assert lib.lb_move_window_check() == lib.LB_OK, \
        ffi.string(lib.lb_last_error()).decode()


def test_values_after_reset() -> None:
    with core.LazyArray("uffd-move", SMALL_N) as arr:
        want = _expected(SMALL_N, "random", fraction=0.5, seed=3)
        for _ in range(3):
            assert arr.run("random", 0.5, 3).checksum == want
            arr.reset()
        assert arr.run("seq").checksum == _expected(SMALL_N)


@pytest.mark.parametrize("k", [2, 7, 64])
def test_fault_around(k: int) -> None:
    with core.LazyArray("uffd-move", SMALL_N, fault_around=k) as arr:
        assert arr.run("seq").checksum == _expected(SMALL_N)
        c = arr.counters()
        assert c.faults == -(-SMALL_PAGES // k)
        assert c.pages_materialised == SMALL_PAGES
        arr.reset()
        assert arr.run("random", 1.0, 5).checksum == \
            _expected(SMALL_N, "random", seed=5)


def test_nested_fills_use_their_own_level() -> None:
    """recurrence read from its end: each page's generator faults on the
    page before it, one nesting level per page, every level computing
    into its own part of the source buffer."""
    n = 40 * core.PAGE_ELEMENTS
    with core.LazyArray("eager", n, "recurrence") as ref:
        want = ref[n - 1], ref.run("seq").checksum
    with core.LazyArray("uffd-move", n, "recurrence", fault_around=3) as arr:
        assert arr[n - 1] == want[0]
        assert arr.counters().max_nesting > 10
        assert arr.run("seq").checksum == want[1]


def test_threads_materialise_each_page_once() -> None:
    want = _expected(SMALL_N, "random", seed=2)
    with core.LazyArray("uffd-move", SMALL_N) as arr:
        for _ in range(3):
            arr.reset()
            before = arr.counters().pages_materialised
            assert race(arr, "random", 1.0, seed=2) == [want, want]
            assert arr.counters().pages_materialised - before == SMALL_PAGES
        r = arr.bench_threads("seq", 1.0, 1, 2, False, 2)
        assert r.checksum == 2 * _expected(SMALL_N) % 2**64
