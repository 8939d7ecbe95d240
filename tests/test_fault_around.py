"""Adaptive fault-around (fault_around=auto): the window rule on synthetic
fault streams, and arrays that use it (the right values, the faults the
rule predicts)."""
from __future__ import annotations

import random

import pytest

from lazybench import _array as core
from lazybench import _case
from lazybench._core import ffi, lib

from conftest import SMALL_N, SMALL_PAGES

AUTO = core.FAULT_AROUND_AUTO
MAX = core.FAULT_AROUND_AUTO_MAX
AROUND = [v for v in core.VARIANTS if core.has_fault_around(v)
          and core.availability(v).available]


def sequential_stream(first: int, faults: int) -> list[int]:
    """The pages a sequential scan from `first` faults on under the rule:
    each fault lands on the page after the previous window."""
    pages, state = [], ffi.new("lb_fa_state *")
    page = first
    for _ in range(faults):
        pages.append(page)
        page += lib.lb_fa_step(state, page)
    return pages


def test_the_python_constant_is_the_cores() -> None:
    assert _case.FAULT_AROUND_AUTO == core.FAULT_AROUND_AUTO


def test_a_sequential_stream_grows_the_window_to_its_limit() -> None:
    windows = core.fault_around_windows(sequential_stream(0, 12))
    assert windows[0] == 1
    assert all(b == min(a * 4, MAX) for a, b in zip(windows, windows[1:]))
    assert windows[-1] == MAX


@pytest.mark.parametrize("seed", range(5))
def test_random_faults_keep_one_page(seed: int) -> None:
    rng = random.Random(seed)
    pages, last = [], -10
    while len(pages) < 500:
        p = rng.randrange(1 << 20)
        if p != last + 1:           # a random fault continues no stream
            pages.append(p)
            last = p
    assert core.fault_around_windows(pages) == [1] * len(pages)


def test_a_stream_that_turns_random_shrinks_to_one_page() -> None:
    seq = sequential_stream(100, 6)
    rng = random.Random(3)
    jumps = [rng.randrange(10 ** 6, 2 * 10 ** 6) for _ in range(5)]
    windows = core.fault_around_windows(seq + jumps)
    assert windows[len(seq) - 1] == MAX
    assert windows[len(seq):] == [1] * len(jumps)
    # and a new stream grows again from one page
    again = core.fault_around_windows(seq + jumps + sequential_stream(7, 3))
    assert again[-3:] == [1, 4, 16]


def test_faults_between_two_streams_restart_at_one_page() -> None:
    # two interleaved scans never continue each other's run
    a, b = 0, 10 ** 6
    windows = core.fault_around_windows([a, b, a + 1, b + 1, a + 2, b + 2])
    assert windows == [1] * 6


@pytest.mark.parametrize("variant", AROUND)
def test_auto_reads_right_and_faults_as_the_rule_says(variant: str) -> None:
    with core.LazyArray("eager", SMALL_N) as ref, \
            core.LazyArray(variant, SMALL_N, fault_around=AUTO) as arr:
        for workload in ("seq", "random"):
            assert arr.run(workload).checksum == \
                ref.run(workload).checksum
            c = arr.counters()
            assert c.pages_materialised == SMALL_PAGES
            assert c.generator_calls == SMALL_N
            if workload == "seq":
                covered, expected = 0, 0
                for w in core.fault_around_windows(
                        sequential_stream(0, SMALL_PAGES)):
                    if covered >= SMALL_PAGES:
                        break
                    covered += w
                    expected += 1
                assert c.faults == expected
            arr.reset()
            arr.clear_counters()


def test_auto_is_refused_where_fault_around_means_nothing() -> None:
    with pytest.raises(ValueError, match="no fault-around"):
        core.LazyArray("sigsegv-redirect", 64, fault_around=AUTO)
    with pytest.raises(ValueError, match="or auto"):
        core.LazyArray("sigsegv-mprotect", 64, fault_around=-2)
