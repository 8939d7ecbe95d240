"""release() while another thread is inside the array: the memory outlives
every call in flight (it is freed when the last one returns), a call that
starts after release is refused, and nothing leaks.

Each scenario runs in a subprocess: a use of freed memory must fail the
test, not take the suite down with it."""
from __future__ import annotations

import pytest

from lazybench import _array as core

from conftest import run_python

AVAILABLE = [v for v in core.VARIANTS if core.availability(v).available]

# Helpers shared by the scenarios.  Leaks are counted, not estimated: every
# array maps its elements (and its handles, pool or list) in mappings of
# exactly the array's size, an odd number of pages that nothing else maps,
# and the uffd and mprotect variants hold descriptors.  Once the last call
# has returned, none of them may be left.
COMMON = """
import os, random, sys, threading, time
from lazybench import _array as core
from lazybench._core import ffi, lib

variant = sys.argv[1]
PAGES = 515
N = PAGES * core.PAGE_ELEMENTS
BYTES = N * 8

def array_maps():
    count = 0
    for line in open('/proc/self/maps'):
        lo, hi = (int(x, 16) for x in line.split()[0].split('-'))
        count += hi - lo == BYTES
    return count

def fds():
    return len(os.listdir('/proc/self/fd'))

with core.LazyArray('eager', N) as ref:
    EXPECTED = ref.bench('random', 0.01, 3, 1).checksum

def check_no_leak(cycle, reps):
    cycle()
    fd0 = fds()
    for k in range(reps):
        cycle()
        assert array_maps() == 0, (k, array_maps())
    assert fds() == fd0, (fd0, fds())
"""

PYTHON_LEVEL = COMMON + """
outcomes = {}
# eager reads plain memory: more loops keep its calls as long as a lazy pass
LOOPS = 1000 if variant.startswith('eager') else 2

def cycle():
    arr = core.LazyArray(variant, N)
    started = threading.Event()
    seen = []

    def worker():
        started.set()
        try:
            while True:
                r = arr.bench('random', 0.01, 3, LOOPS, reset=True)
                seen.append(r.checksum)
        except core.ArrayStateError as exc:
            seen.append(str(exc))

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    time.sleep(random.random() * 0.004)
    arr.release()
    t.join()
    *sums, last = seen
    assert all(s == EXPECTED for s in sums), sums
    assert 'after release' in last, last
    outcomes[len(sums) > 0] = outcomes.get(len(sums) > 0, 0) + 1

check_no_leak(cycle, int(sys.argv[2]))
print('ok', outcomes)
"""


@pytest.mark.parametrize("variant", AVAILABLE)
def test_release_while_running_from_python(variant: str) -> None:
    proc = run_python(PYTHON_LEVEL, timeout=300, argv=(variant, "20"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok"), proc.stdout


# The C level alone, without the Python owner that already defers the free:
# lb_release from one thread while another is inside a guarded call, and
# while another holds a view session.
C_LEVEL = COMMON + """
def make():
    out = ffi.new('lb_array **')
    params = ffi.new('lb_params *', {'n': N, 'generator': 0, 'spin': 100,
                                     'seed': 1, 'fault_around': 1})
    rc = lib.lb_create(core.VARIANTS.index(variant), params, out)
    assert rc == 0, ffi.string(lib.lb_last_error())
    return out[0]

WORK = ffi.new('lb_workload *', {'kind': 1, 'fraction': 0.01, 'seed': 3})
# eager reads plain memory: more loops keep its calls as long as a lazy pass
LOOPS = 3000 if variant.startswith('eager') else 6

def in_flight():
    # released while a guarded call runs: that call completes and the
    # memory goes when it returns
    ptr = make()
    got = {}
    started = threading.Event()

    def worker():
        out = ffi.new('lb_result *')
        started.set()
        got['rc'] = lib.lb_bench(ptr, WORK, LOOPS, 1, out)
        got['sum'] = out.checksum

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    # The call must have begun (and taken its reference) before the
    # release, or the test itself would use a freed array: a variant
    # that faults shows it in its counters; for the others (no counter
    # moves during a call) the worker gets a head start.
    c = ffi.new('lb_counters *')
    faulting = not variant.startswith('eager') and variant != 'swcheck'
    deadline = time.monotonic() + (10.0 if faulting else 0.002)
    while time.monotonic() < deadline:
        lib.lb_counters_read(ptr, c)
        if c.faults:
            break
    time.sleep(random.random() * 0.002)
    lib.lb_release(ptr)                 # ptr is not touched after this
    t.join()
    assert got['rc'] == 0 and got['sum'] == EXPECTED, got

def in_session():
    # released while another thread holds a view session: calls that
    # start afterwards get LB_ESTATE; the last one out frees
    ptr = make()
    entered, released, done = (threading.Event() for _ in range(3))
    got = {}

    def holder():
        assert lib.lb_view_enter(ptr) == 0
        entered.set()
        released.wait()
        out = ffi.new('lb_result *')
        got['rc'] = lib.lb_run(ptr, WORK, out)
        got['msg'] = ffi.string(lib.lb_last_error()).decode()
        lib.lb_view_leave(ptr)

    t = threading.Thread(target=holder)
    t.start()
    entered.wait()
    lib.lb_release(ptr)
    out = ffi.new('lb_result *')
    got['main'] = lib.lb_run(ptr, WORK, out)   # alive: the session holds it
    got['main_msg'] = ffi.string(lib.lb_last_error()).decode()
    released.set()
    t.join()
    assert got['main'] == lib.LB_ESTATE, got
    assert got['rc'] == lib.LB_ESTATE, got
    assert 'after release' in got['main_msg'], got
    assert 'after release' in got['msg'], got

check_no_leak(in_flight, int(sys.argv[2]))
check_no_leak(in_session, 4)
print('ok')
"""


@pytest.mark.parametrize("variant", AVAILABLE)
def test_release_while_running_in_c(variant: str) -> None:
    proc = run_python(C_LEVEL, timeout=300, argv=(variant, "20"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok", proc.stdout
