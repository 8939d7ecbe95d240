"""The core's additions for the sweeps: the random-pages workload, reference
checksums computed without an array, build times, benchmarks in several
threads, and sigsegv-mprotect's eviction past its mapping budget.

Cases are generated (every available variant x every workload x a few
fractions x the pure generators), and every checksum is compared with the
reference computed straight from the generator."""
from __future__ import annotations

import itertools
import math

import pytest

from lazybench import _array as core
from lazybench import _pyworkloads as pyworkloads
from lazybench._pythunks import GOLDEN, MASK, mix64

PE = core.PAGE_ELEMENTS
N = 7 * PE + 100                 # 8 pages, the last partly used
FRACTIONS = (0.001, 0.3, 1.0)
GENERATORS = ("hash", "spin")
SPIN = 7
SEED = 3


def _available() -> list[str]:
    return [v for v in core.VARIANTS if core.availability(v).available]


VARIANTS = _available()


def _pages(n: int) -> int:
    return -(-n // PE)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_workload_matches_the_reference(variant: str) -> None:
    """Every workload (random-pages included) at every fraction on both
    pure generators reads the checksum the generator alone gives."""
    assert "random-pages" in core.WORKLOADS
    for generator in GENERATORS:
        with core.LazyArray(variant, N, generator, spin=SPIN,
                            seed=SEED) as arr:
            for workload, fraction in itertools.product(core.WORKLOADS,
                                                        FRACTIONS):
                want = core.expected_checksum(N, generator, workload,
                                              fraction, spin=SPIN, seed=SEED)
                arr.reset()
                got = arr.run(workload, fraction, SEED)
                assert got.checksum == want, (generator, workload, fraction)
                fp = arr.footprint(workload, fraction, SEED)
                assert got.accesses == fp.accesses


def test_random_pages_stream() -> None:
    """random-pages: ceil(fraction * pages) reads (at least 1, at most the
    pages), each the first element of a page drawn uniformly with
    replacement by splitmix64 from the workload's seed (written here apart
    from the core); the footprint counts the distinct pages."""
    for n, fraction, seed in [(1, 1.0, 1), (PE, 0.5, 2), (N, 0.001, 9),
                              (N, 0.4, 5), (N, 1.0, 7),
                              (1000 * PE + 3, 0.25, 11)]:
        pages = _pages(n)
        want_m = min(max(math.ceil(fraction * pages), 1), pages)
        s, want = seed, []
        for _ in range(want_m):
            s = (s + GOLDEN) & MASK
            want.append(((mix64(s) * pages) >> 64) * PE)
        got = pyworkloads.indices("random-pages", n, fraction, seed, PE)
        assert got == want
        with core.LazyArray("eager", n, seed=seed) as arr:
            fp = arr.footprint("random-pages", fraction, seed)
            assert fp == core.Footprint(len({i // PE for i in want}), want_m)
            assert arr.run("random-pages", fraction, seed).checksum == \
                core.expected_checksum(n, "hash", "random-pages", fraction,
                                       seed=seed)


def test_random_pages_faults_once_per_distinct_page() -> None:
    with core.LazyArray("sigsegv-mprotect", 300 * PE) as arr:
        fp = arr.footprint("random-pages", 0.5, SEED)
        assert fp.pages < fp.accesses          # drawn with replacement
        arr.run("random-pages", 0.5, SEED)
        c = arr.counters()
        assert c.faults == c.pages_materialised == fp.pages
        assert c.evicted_pages == 0


def test_expected_checksum_refuses_bad_input() -> None:
    with pytest.raises(core.UnavailableError, match="recurrence generator "
                       "has no direct reference"):
        core.expected_checksum(N, "recurrence", "seq", 1.0)
    for kwargs in ({"n": 0}, {"n": core.MAX_ELEMENTS + 1},
                   {"spin": core.MAX_SPIN + 1}, {"spin": -1},
                   {"fraction": 0.0}, {"fraction": 1.5}, {"threads": 0},
                   {"threads": 65}, {"threads": 9, "disjoint": True}):
        args = {"n": N, "generator": "hash", "workload": "seq",
                "fraction": 1.0, **kwargs}
        with pytest.raises(ValueError) as info:
            core.expected_checksum(**args)
        assert "\n" not in str(info.value)


def test_expected_checksum_of_a_huge_array_is_direct() -> None:
    """No O(n) memory: 64 GiB of elements, 0.1 % of its pages."""
    n = 1 << 33
    a = core.expected_checksum(n, "hash", "random-pages", 0.001)
    assert a == core.expected_checksum(n, "hash", "random-pages", 0.001)
    assert a != core.expected_checksum(n, "hash", "random-pages", 0.001,
                                       seed=2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_threads_match_the_reference(variant: str) -> None:
    """1 and 2 threads, same and disjoint, every workload: the summed
    checksum is the reference's, the reads are the footprint's."""
    for generator in GENERATORS:
        with core.LazyArray(variant, N, generator, spin=SPIN,
                            seed=SEED) as arr:
            for workload, threads, disjoint in itertools.product(
                    core.WORKLOADS, (1, 2), (False, True)):
                fraction = 0.5
                want = core.expected_checksum(
                    N, generator, workload, fraction, spin=SPIN, seed=SEED,
                    threads=threads, disjoint=disjoint)
                got = arr.bench_threads(workload, fraction, SEED, threads,
                                        disjoint, loops=2)
                case = (generator, workload, threads, disjoint)
                assert got.checksum == want, case
                fp = arr.threads_footprint(workload, fraction, SEED, threads,
                                           disjoint)
                assert got.accesses == fp.accesses, case
                assert got.elapsed_ns > 0
    # one thread, its slice the whole array: lb_run's checksum
    with core.LazyArray(variant, N, "hash", seed=SEED) as arr:
        one = arr.bench_threads("random", 0.5, SEED, 1, True, 1)
        assert one.checksum == arr.run("random", 0.5, SEED).checksum


def test_threads_footprint() -> None:
    with core.LazyArray("eager", N) as arr:
        same = arr.threads_footprint("seq", 1.0, 1, 3, False)
        assert same == core.Footprint(_pages(N), 3 * N)
        split = arr.threads_footprint("seq", 1.0, 1, 3, True)
        assert split == core.Footprint(_pages(N), N)
        strided = arr.threads_footprint("strided", 1.0, 1, 4, True)
        assert strided == core.Footprint(_pages(N), _pages(N))


def test_thread_errors_are_one_line() -> None:
    with core.LazyArray("eager", 3 * PE) as arr:
        for threads, disjoint in ((4, True), (0, False), (65, False)):
            with pytest.raises(ValueError) as info:
                arr.bench_threads("seq", 1.0, 1, threads, disjoint, 1)
            assert "\n" not in str(info.value)
        with pytest.raises(ValueError, match="a page per thread"):
            arr.threads_footprint("seq", 1.0, 1, 4, True)
        with pytest.raises(ValueError, match="loops"):
            arr.bench_threads("seq", 1.0, 1, 2, False, 0)


def test_a_failing_thread_returns_its_error() -> None:
    """A lazy-evaluation failure inside one thread (the recurrence chain
    from page 1000 back to page 0 nests deeper than the core allows) is
    the call's error, with its message; the array stays usable."""
    pages = 2000
    with core.LazyArray("sigsegv-mprotect", pages * PE,
                        "recurrence") as arr:
        with pytest.raises(core.LazyEvaluationError) as info:
            arr.bench_threads("seq", 1.0, 1, 2, True, 1)
        message = str(info.value)
        assert "thread 1 of 2" in message and "nested" in message
        assert "\n" not in message
        arr.reset()
        with core.LazyArray("eager", pages * PE, "recurrence") as ref:
            assert arr.run("seq").checksum == ref.run("seq").checksum


def test_build_ns() -> None:
    for variant in VARIANTS:
        assert core.build_ns(variant, N) > 0
    cheap = min(core.build_ns("eager", 1 << 14, "spin", spin=0)
                for _ in range(3))
    dear = core.build_ns("eager", 1 << 14, "spin", spin=3000)
    assert dear > cheap
    with pytest.raises(ValueError):
        core.build_ns("eager", 0)


@pytest.mark.parametrize("variant", ["uffd-sigbus", "sigsegv-mprotect"])
def test_64_gib_array_random_pages(variant: str) -> None:
    """64 GiB of elements (2^33), 0.1 % of its 16.8 million pages at
    random: the checksum is the reference's, one fault per distinct page."""
    why = core.availability(variant)
    if not why.available:
        pytest.skip(f"{variant}: {why.reason}")
    n = 1 << 33
    want = core.expected_checksum(n, "hash", "random-pages", 0.001, seed=4)
    with core.LazyArray(variant, n, seed=4) as arr:
        fp = arr.footprint("random-pages", 0.001, 4)
        assert 16_000 < fp.pages <= fp.accesses
        got = arr.run("random-pages", 0.001, 4)
        assert got.checksum == want
        assert got.accesses == fp.accesses
        c = arr.counters()
        assert c.faults == c.pages_materialised == fp.pages


def test_eviction_past_the_mapping_budget() -> None:
    """More isolated pages than the mapping budget allows opened at once:
    the oldest isolated runs are closed again, the values stay right, the
    mappings stay within the budget, and a second pass (re-faulting the
    evicted pages) reads the same checksum; two threads on their slices
    too."""
    with core.LazyArray("sigsegv-mprotect", 1) as probe:
        budget = probe.mappings().budget
    n = 1 << 31                                  # 4 million pages
    pages = _pages(n)
    fraction = 1.2 * budget / pages              # each isolated page: 2
    want = core.expected_checksum(n, "hash", "random-pages", fraction,
                                  seed=6)
    with core.LazyArray("sigsegv-mprotect", n, seed=6) as arr:
        assert arr.run("random-pages", fraction, 6).checksum == want
        c = arr.counters()
        assert c.evicted_pages > 0
        assert c.faults == c.pages_materialised
        m = arr.mappings()
        assert m.array <= m.total <= m.budget
        assert arr.run("random-pages", fraction, 6).checksum == want
        assert arr.counters().evicted_pages > c.evicted_pages
        assert arr.mappings().total <= m.budget
        got = arr.bench_threads("random-pages", fraction, 6, 2, True, 1)
        assert got.checksum == core.expected_checksum(
            n, "hash", "random-pages", fraction, seed=6, threads=2,
            disjoint=True)
        assert arr.mappings().total <= m.budget
        arr.reset()
        assert arr.mappings().array == 1
