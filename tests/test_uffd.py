"""userfaultfd variants, fault-around, teardown and availability (fork:
test_fork.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lazybench import _array as core
from lazybench._core import lib

from conftest import SMALL_N, SMALL_PAGES, race, run_cli, run_python

UFFD = [v for v in core.VARIANTS if v.startswith("uffd")]
AVAILABLE_UFFD = [v for v in UFFD if core.availability(v).available]
AROUND = [v for v in core.VARIANTS if core.has_fault_around(v)
          and core.availability(v).available]


@pytest.mark.parametrize("variant", AROUND)
@pytest.mark.parametrize("k", [1, 4, 16])
def test_fault_around_faults_once_per_k_pages(variant: str, k: int) -> None:
    with core.LazyArray("eager", SMALL_N) as ref, \
            core.LazyArray(variant, SMALL_N, fault_around=k) as arr:
        assert arr.run("seq").checksum == ref.run("seq").checksum
        c = arr.counters()
    assert c.faults == -(-SMALL_PAGES // k)
    assert c.pages_materialised == SMALL_PAGES
    assert c.generator_calls == SMALL_N


def test_fault_around_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ValueError, match="no fault-around"):
        core.LazyArray("sigsegv-redirect", 64, fault_around=4)
    with pytest.raises(ValueError, match="between 1 and 64"):
        core.LazyArray("sigsegv-mprotect", 64, fault_around=65)


@pytest.mark.parametrize("variant", AVAILABLE_UFFD)
def test_two_threads_materialise_each_page_once(variant: str) -> None:
    with core.LazyArray("eager", SMALL_N) as ref:
        expected = ref.run("random", 1.0, seed=2).checksum
    with core.LazyArray(variant, SMALL_N) as arr:
        got = race(arr, "random", 1.0, seed=2)
        c = arr.counters()
    assert got == [expected, expected]
    assert c.pages_materialised == SMALL_PAGES
    assert c.generator_calls == SMALL_N


# uffd-move's region is writable (UFFDIO_MOVE needs it): its handler
# refuses stores with an error instead (test_uffd_move.py).
@pytest.mark.parametrize("variant", [v for v in AVAILABLE_UFFD
                                     if v != "uffd-move"])
def test_store_to_a_lazy_element_crashes(variant: str) -> None:
    code = ("from lazybench import _array as core\n"
            "from lazybench._core import lib\n"
            f"arr = core.LazyArray({variant!r}, 64)\n"
            "arr.selftest_form(lib.LB_FORM_STORE, 3, 5, 42)\n")
    proc = run_python(code, "-X", "faulthandler", timeout=60)
    assert proc.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in proc.stderr


def test_foreign_sigbus_is_chained() -> None:
    code = ("import mmap, os, tempfile\n"
            "from lazybench import _array as core\n"
            "arr = core.LazyArray('uffd-sigbus', 1 << 14)\n"
            "arr.run('seq')\n"
            "f = tempfile.TemporaryFile()\n"
            "f.truncate(8192)\n"
            "m = mmap.mmap(f.fileno(), 8192)\n"
            "f.truncate(0)\n"
            "m[5000]\n")            # past the end of the file: a real SIGBUS
    proc = run_python(code, "-X", "faulthandler", timeout=60)
    assert proc.returncode == -signal.SIGBUS, proc.stderr
    assert "Fatal Python error: Bus error" in proc.stderr


def test_sigbus_floors_restore_the_handler_and_free_their_descriptors() -> None:
    before = signal.getsignal(signal.SIGBUS)
    fds = len(os.listdir("/proc/self/fd"))
    assert core.floor_ns("sigbus-uffd-roundtrip", 200) > 0
    assert core.floor_ns("sigbus-copy", 5000) > 0     # spans two chunks
    assert signal.getsignal(signal.SIGBUS) == before
    assert len(os.listdir("/proc/self/fd")) == fds
    # the variant's own handler still resolves its faults afterwards
    with core.LazyArray("uffd-sigbus", SMALL_N) as arr:
        assert arr.run("seq").checksum == _eager_seq_checksum()


def _eager_seq_checksum() -> int:
    with core.LazyArray("eager", SMALL_N) as arr:
        return arr.run("seq").checksum


def _process_resources() -> tuple[int, int, int]:
    fds = len(os.listdir("/proc/self/fd"))
    threads = len(os.listdir("/proc/self/task"))
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f
                   if line.startswith("VmRSS:"))
    return fds, threads, rss


@pytest.mark.parametrize("variant", [v for v in core.VARIANTS
                                     if core.availability(v).available])
def test_thousand_arrays_leak_nothing(variant: str) -> None:
    def cycle() -> None:
        # strided: a fault on each of the 4 pages for every variant (seq
        # would take one per element on the redirect family, 2048 faults,
        # which cost the test about 25 s per variant and leak-check
        # nothing more)
        with core.LazyArray(variant, 4 * core.PAGE_ELEMENTS) as arr:
            arr.run("strided")

    for _ in range(50):                     # warm up caches and allocators
        cycle()
    fds, threads, rss = _process_resources()
    for _ in range(1000):
        cycle()
    fds2, threads2, rss2 = _process_resources()
    assert fds2 == fds
    assert threads2 == threads
    assert rss2 - rss < 8 * 1024             # KiB: 1000 arrays of 16 KiB each


def test_unavailable_userfaultfd_leaves_the_rest(tmp_path) -> None:
    env = dict(os.environ, LAZYBENCH_NO_USERFAULTFD="1")
    listing = subprocess.run([sys.executable, "-m", "lazybench", "list"],
                             capture_output=True, text=True, env=env)
    assert listing.returncode == 0
    assert "uffd-sigbus          unavailable: disabled by " \
           "LAZYBENCH_NO_USERFAULTFD" in listing.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "lazybench", "run", "--quick",
         "--variants", "eager,uffd-sigbus,uffd-thread-same",
         "--workloads", "seq", "--touched", "100", "--elements", "4096",
         "--processes", "1",
         "--results-dir", str(tmp_path), "--run-name", "r"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "variant uffd-sigbus unavailable" in proc.stderr
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Unavailable variants" in report
    assert "`uffd-thread-same`: disabled by LAZYBENCH_NO_USERFAULTFD" in report


@pytest.mark.parametrize("feature,variant", [("MOVE", "uffd-move"),
                                             ("MINOR_SHMEM", "uffd-minor")])
def test_a_hidden_feature_makes_only_its_variant_unavailable(
        feature: str, variant: str) -> None:
    """An older kernel, simulated: the variant that needs the feature is
    listed unavailable with the reason, every other one as before."""
    if not core.availability(variant).available:
        pytest.skip(f"{variant}: {core.availability(variant).reason}")
    env = dict(os.environ, LAZYBENCH_HIDE_UFFD_FEATURES=feature)
    proc = run_cli(["list"], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()
             if line.startswith("  ") and line.split()[0] in core.VARIANTS}
    assert set(lines) == set(core.VARIANTS)
    assert f"unavailable: UFFD_FEATURE_{feature} hidden by " \
           "LAZYBENCH_HIDE_UFFD_FEATURES" in lines[variant]
    for name, line in lines.items():
        if name != variant and core.availability(name).available:
            assert line.split()[1] == "available", line
