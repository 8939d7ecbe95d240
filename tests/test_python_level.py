"""Python-level reads: views of the C arrays and pure-Python thunks read
the same values as the C eager array; views are safe after release."""
from __future__ import annotations

import gc
import itertools
import os

import numpy as np
import pytest

from lazybench import _array as core
from lazybench import _pylevel as pylevel
from lazybench import _pythunks as pythunks
from lazybench import _pyworkloads as pyworkloads
from lazybench import _views as views

from conftest import SMALL_N, run_python

E = core.PAGE_ELEMENTS
N = 16 * E - 3
PY_VARIANTS = [v for v in core.VARIANTS if core.availability(v).available
               and core.viewable(v).available] \
    + list(pythunks.KINDS)
CASES = list(itertools.product(pythunks.GENERATORS, core.WORKLOADS,
                               (0.01, 1.0)))


def _eager(n: int, generator: str, workload: str, fraction: float) -> int:
    with core.LazyArray("eager", n, generator) as arr:
        return arr.run(workload, fraction, 1).checksum


@pytest.mark.parametrize("variant", PY_VARIANTS)
@pytest.mark.parametrize("generator,workload,fraction", CASES)
def test_python_checksum_equals_c_eager(variant: str, generator: str,
                                        workload: str,
                                        fraction: float) -> None:
    support = pylevel.supports(variant, generator)
    if not support.available:
        # refused by design, with its reason, never run wrong
        with pytest.raises(core.UnavailableError, match=support.reason[:30]):
            pylevel.Target(variant, N, generator, 1)
        return
    n = N
    if not pylevel.is_python_kind(variant) and core.granule(variant) == 1 \
            and generator == "recurrence" and workload != "seq":
        n = core.MAX_NESTING          # one nested fault per element back
    idx = pyworkloads.indices(workload, n, fraction, 1, E)
    target = pylevel.Target(variant, n, generator, 1)
    try:
        expected = _eager(n, generator, workload, fraction)
        assert target.run(idx) == expected
        assert target.run(idx) == expected        # evaluated: same values
        target.reset()
        assert target.run(idx) == expected
    finally:
        target.release()


def test_index_streams_match_the_c_workloads() -> None:
    with core.LazyArray("eager", SMALL_N) as arr:
        for workload, fraction in itertools.product(core.WORKLOADS,
                                                    (0.01, 0.1, 1.0)):
            idx = pyworkloads.indices(workload, SMALL_N, fraction, 3, E)
            fp = arr.footprint(workload, fraction, 3)
            assert len(idx) == fp.accesses
            assert len({i // E for i in idx}) == fp.pages


@pytest.mark.parametrize("kind", pythunks.KINDS)
def test_python_thunks_evaluate_each_element_once(kind: str) -> None:
    arr = pythunks.ThunkArray(kind, 5000)
    idx = pyworkloads.indices("random", 5000, 1.0, 1, E)
    pyworkloads.run_pass(arr.get, idx)
    pyworkloads.run_pass(arr.get, idx)
    assert arr.evaluations == len(set(idx))


@pytest.mark.parametrize("kind", pythunks.KINDS)
def test_python_recurrence_read_last_first_does_not_recurse(kind: str) -> None:
    n = 20000                          # far past Python's recursion limit
    arr = pythunks.ThunkArray(kind, n, "recurrence")
    with core.LazyArray("eager", n, "recurrence") as ref:
        assert arr.get(n - 1) & pythunks.MASK == ref[n - 1] & pythunks.MASK
    assert arr.evaluations == n


def test_unknown_python_kind_or_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Python thunk kind"):
        pythunks.ThunkArray("py-nope", 10)
    with pytest.raises(ValueError, match="no Python version"):
        pythunks.ThunkArray("py-closure", 10, "spin")


@pytest.mark.parametrize("variant", ["sigsegv-mprotect", "uffd-sigbus",
                                     "eager"])
def test_memoryview_after_release_is_a_python_error(variant: str) -> None:
    if not core.availability(variant).available:
        pytest.skip(core.availability(variant).reason)
    arr = core.LazyArray(variant, SMALL_N)
    view = arr.view()
    assert isinstance(view, memoryview) and view.readonly
    assert view.format == "q" and len(view) == SMALL_N
    part = view[E:2 * E]               # a slice shares the memory
    arr.release()
    with pytest.raises(ValueError, match="released memoryview"):
        view[0]
    # the slice cannot be revoked: it keeps the memory alive and right
    with core.LazyArray("eager", SMALL_N) as ref:
        assert list(part) == [ref[i] for i in range(E, 2 * E)]
    with pytest.raises(core.ArrayStateError):
        arr.view()


@pytest.mark.parametrize("variant", ["sigsegv-redirect", "swcheck",
                                     "eager-handles"])
def test_element_view_after_release_is_a_python_error(variant: str) -> None:
    arr = core.LazyArray(variant, SMALL_N)
    view = arr.view()
    assert isinstance(view, views.ElementView)
    assert view[-1] == arr[SMALL_N - 1]
    arr.release()
    with pytest.raises(core.ArrayStateError, match="released"):
        view[0]
    with pytest.raises(core.ArrayStateError):
        view.reader()


@pytest.mark.parametrize("variant", ["sigsegv-mprotect", "sigsegv-redirect"])
def test_a_view_keeps_a_dropped_array_alive(variant: str) -> None:
    view = core.LazyArray(variant, SMALL_N).view()   # the array is garbage
    gc.collect()
    with core.LazyArray("eager", SMALL_N) as ref:
        assert view[SMALL_N - 1] == ref[SMALL_N - 1]
        assert sum(view[:100]) == sum(ref[i] for i in range(100))


def test_numpy_array_over_a_view_survives_release() -> None:
    arr = core.LazyArray("sigsegv-mprotect", SMALL_N)
    data = np.frombuffer(arr.view(), dtype=np.int64)
    with core.LazyArray("eager", SMALL_N) as ref:
        expected = sum(ref[i] for i in range(10, 20))
    assert int(data[10:20].sum()) % 2**64 == expected % 2**64
    counters = arr.counters()
    assert counters.faults == 1 and counters.pages_materialised == 1
    arr.release()                      # cannot revoke numpy's export
    assert int(data[10:20].sum()) % 2**64 == expected % 2**64
    assert not data.flags.writeable


def test_session_restores_cpu_affinity() -> None:
    if not core.availability("uffd-thread-same").available:
        pytest.skip("userfaultfd unavailable")
    before = os.sched_getaffinity(0)
    with core.LazyArray("uffd-thread-same", SMALL_N) as arr:
        view = arr.view()
        with views.session(arr):
            assert len(os.sched_getaffinity(0)) == 1
            arr.reset()                # a guarded call inside a session
            assert view[5] == arr[5]
            with pytest.raises(core.ArrayStateError, match="already open"):
                with views.session(arr):
                    pass
        assert os.sched_getaffinity(0) == before


def test_failed_evaluation_inside_a_view_read_is_fatal_and_says_why() -> None:
    code = ("from lazybench import _array as core, _views as views\n"
            "arr = core.LazyArray('sigsegv-redirect', 2000, 'recurrence')\n"
            "v = arr.view()\n"
            "with views.session(arr):\n"
            "    v[1999]\n"
            "print('not reached')\n")
    proc = run_python(code, timeout=60)
    assert proc.returncode < 0
    assert "nested lazy evaluations exceed the supported depth" in proc.stderr
    assert "not reached" not in proc.stdout
