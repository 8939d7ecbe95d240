"""uffd-minor: memfd pages registered with userfaultfd for missing and
minor faults, filled by pwrite and mapped by UFFDIO_CONTINUE from the
SIGBUS handler.  What the tests over all variants do not say of it: a
store never goes through, reset, an older kernel without
UFFD_FEATURE_MINOR_SHMEM, fault-around, fork, one mapping whatever is
touched, a dropped page table entry mapped again."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

import pytest

from lazybench import _array as core
from lazybench._core import ffi, lib

from conftest import SMALL_N, SMALL_PAGES, run_python

VARIANT = "uffd-minor"
pytestmark = pytest.mark.skipif(
    not core.availability(VARIANT).available,
    reason=f"{VARIANT}: {core.availability(VARIANT).reason}")

PE = core.PAGE_ELEMENTS


def _address(arr: core.LazyArray) -> int:
    return int(ffi.cast("uintptr_t", lib.lb_view_address(arr._owner.ptr)))


def _maps_in(arr: core.LazyArray) -> int:
    """Lines of /proc/self/maps inside the array's region."""
    start = _address(arr)
    end = start + -(-arr.n * 8 // 4096) * 4096
    with open("/proc/self/maps") as f:
        spans = [tuple(int(x, 16) for x in line.split()[0].split("-"))
                 for line in f]
    return sum(start <= lo and hi <= end for lo, hi in spans)


@pytest.mark.parametrize("computed", [False, True])
def test_a_store_crashes_and_says_why(computed: bool) -> None:
    """A store to an element, lazy or computed, faults on the read-only
    mapping (SIGSEGV): it says why, then dies by the signal, with
    faulthandler's report, instead of writing."""
    code = ("from lazybench import _array as core\n"
            "from lazybench._core import lib\n"
            f"arr = core.LazyArray({VARIANT!r}, 4 * core.PAGE_ELEMENTS)\n"
            + ("arr.run('seq')\n" if computed else "")
            + "print('storing', flush=True)\n"
            "arr.selftest_form(lib.LB_FORM_STORE, 3, 5, 42)\n"
            "print('stored', flush=True)\n")
    proc = run_python(code, "-X", "faulthandler", timeout=60)
    assert proc.returncode == -signal.SIGSEGV, proc.stderr
    assert proc.stdout.strip() == "storing"
    assert "uffd-minor: a store to a lazy element" in proc.stderr
    assert proc.stderr.count("Fatal Python error: Segmentation fault") == 1


def test_values_after_reset() -> None:
    with core.LazyArray("eager", SMALL_N, "recurrence") as ref, \
            core.LazyArray(VARIANT, SMALL_N, "recurrence") as arr:
        want = ref.run("seq").checksum
        assert arr.run("random", 0.3, seed=4).checksum == \
            ref.run("random", 0.3, seed=4).checksum
        for _ in range(2):
            arr.reset()
            arr.clear_counters()
            assert [arr[i] for i in (0, PE, SMALL_N - 1)] == \
                [ref[i] for i in (0, PE, SMALL_N - 1)]
            assert arr.run("seq").checksum == want
            # every page computed again: the holes were punched
            assert arr.counters().pages_materialised == SMALL_PAGES


@pytest.mark.parametrize("k", [3, 16])
def test_fault_around(k: int) -> None:
    """k pages per fault, and runs cut short by pages being computed: a
    read in the middle claims its run of k, its recurrence reads back
    through the pages before it, one nested fault each (the run after
    each is being filled), then a scan faults once per k pages left."""
    with core.LazyArray("eager", SMALL_N, "recurrence") as ref, \
            core.LazyArray(VARIANT, SMALL_N, "recurrence",
                           fault_around=k) as arr:
        # a page in the middle first: its run, then the chain before it
        mid_page = SMALL_PAGES // 2
        mid = mid_page * PE + 5
        assert arr[mid] == ref[mid]
        assert arr.run("seq").checksum == ref.run("seq").checksum
        c = arr.counters()
    assert c.pages_materialised == SMALL_PAGES
    assert c.generator_calls == SMALL_N
    assert c.faults == 1 + mid_page + -(-(SMALL_PAGES - mid_page - k) // k)
    assert c.max_nesting == mid_page + 1


FORK = r'''
import ctypes, json, os, sys, time
from lazybench import _array as core
from lazybench._core import ffi, lib
n = int(sys.argv[1])
arr = core.LazyArray("uffd-minor", n)
with core.LazyArray("eager", n) as ref:
    want = ref.run("seq").checksum
    half_page = [ref[i] for i in range(0, n, core.PAGE_ELEMENTS)]
arr.run("seq", 0.5)                     # pages of the first half ready
addr = int(ffi.cast("uintptr_t", lib.lb_view_address(arr._owner.ptr)))
out = {}
for where in (0, n * 8 - 8):            # a ready page, a lazy one
    pid = os.fork()
    if pid == 0:
        # through an address taken before the fork: no value, no zeros
        v = ctypes.c_int64.from_address(addr + where).value
        os.write(1, f"read {v}\n".encode())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    out[str(where)] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
pid = os.fork()
if pid == 0:
    # the child's own arrays work; releasing the inherited one frees only
    # the child's copies
    with core.LazyArray("uffd-minor", n) as mine:
        ok = mine.run("seq").checksum == want
    arr.release()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
out["own"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
c = arr.counters()
out["checksum_ok"] = arr.run("seq").checksum == want
out["pages_ok"] = [arr[i] for i in range(0, n, core.PAGE_ELEMENTS)] == half_page
out["faults_before"] = c.faults
print(json.dumps(out))
'''


def test_fork_child_neither_changes_nor_reads_zeros() -> None:
    proc = subprocess.run([sys.executable, "-c", FORK, str(SMALL_N)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(line.startswith("read ")
                   for line in proc.stdout.splitlines()), proc.stdout
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["0"] == signal.SIGSEGV and got[str(SMALL_N * 8 - 8)] == \
        signal.SIGSEGV, got
    assert got["own"] == 0
    assert got["checksum_ok"] and got["pages_ok"], got


def test_one_mapping_after_a_scattered_touch() -> None:
    pages = 10_000
    with core.LazyArray(VARIANT, pages * PE) as arr:
        before = _maps_in(arr)
        arr.run("random-pages", 0.2, seed=5)
        touched = arr.counters().pages_materialised
        after = _maps_in(arr)
    assert before == after == 1
    assert touched > pages // 10        # scattered: many isolated pages


def test_a_dropped_page_table_entry_is_mapped_again() -> None:
    """Reclaim (or MADV_DONTNEED) may drop the page table entries of
    computed pages while the page cache keeps them: the next read is a
    minor fault, mapped again without computing the page again."""
    with core.LazyArray("eager", SMALL_N) as ref, \
            core.LazyArray(VARIANT, SMALL_N) as arr:
        want = ref.run("seq").checksum
        assert arr.run("seq").checksum == want
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                 ctypes.c_int]
        MADV_DONTNEED = 4
        assert libc.madvise(_address(arr), SMALL_PAGES * 4096,
                            MADV_DONTNEED) == 0
        before = arr.counters()
        assert arr.run("seq").checksum == want
        after = arr.counters()
    assert after.pages_materialised == before.pages_materialised
    assert after.faults - before.faults == SMALL_PAGES


def test_floors_restore_the_handler_and_free_their_descriptors() -> None:
    before = signal.getsignal(signal.SIGBUS)
    fds = len(os.listdir("/proc/self/fd"))
    for name in ("pwrite-page", "uffdio-continue", "sigbus-memfd-roundtrip"):
        assert core.floor_ns(name, 200) > 0, name
    assert core.floor_ns("sigbus-continue", 5000) > 0     # two chunks
    assert signal.getsignal(signal.SIGBUS) == before
    assert len(os.listdir("/proc/self/fd")) == fds
    # the variant's own handler still resolves its faults afterwards
    with core.LazyArray("eager", SMALL_N) as ref, \
            core.LazyArray(VARIANT, SMALL_N) as arr:
        assert arr.run("seq").checksum == ref.run("seq").checksum
