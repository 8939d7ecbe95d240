"""Every workload on every variant and generator reads what eager reads."""
from __future__ import annotations

import itertools

import pytest

from lazybench import _array as core
from lazybench._suite import FRACTIONS

from conftest import SMALL_N

CASES = list(itertools.product(core.GENERATORS, core.WORKLOADS, FRACTIONS))


@pytest.mark.parametrize("variant", [v for v in core.VARIANTS if v != "eager"])
@pytest.mark.parametrize("generator,workload,fraction", CASES)
def test_checksum_equals_eager(variant: str, generator: str, workload: str,
                               fraction: float) -> None:
    support = core.supports(variant, generator)
    if not support.available:
        # refused by design, with its reason, never run wrong
        with pytest.raises(core.UnavailableError, match=support.reason[:30]):
            core.LazyArray(variant, SMALL_N, generator)
        return
    n = SMALL_N
    if core.granule(variant) == 1 and generator == "recurrence" \
            and workload != "seq":
        # out of order, the chain nests one fault per element
        n = core.MAX_NESTING
    with core.LazyArray("eager", n, generator, spin=20) as ref, \
            core.LazyArray(variant, n, generator, spin=20) as arr:
        expected = ref.run(workload, fraction, seed=5)
        got = arr.run(workload, fraction, seed=5)
        again = arr.run(workload, fraction, seed=5)
    assert got.accesses == expected.accesses > 0
    assert got.checksum == expected.checksum
    assert again.checksum == expected.checksum


@pytest.mark.parametrize("variant", core.VARIANTS)
def test_elements_match_eager(variant: str) -> None:
    with core.LazyArray("eager", SMALL_N, "hash") as ref, \
            core.LazyArray(variant, SMALL_N, "hash") as arr:
        for i in (SMALL_N - 1, 0, 511, 512, 1234, SMALL_N // 2):
            assert arr[i] == ref[i]


@pytest.mark.parametrize("variant", core.VARIANTS)
def test_reset_gives_the_same_values(variant: str) -> None:
    n = core.MAX_NESTING if core.granule(variant) == 1 else SMALL_N
    generator = "recurrence" if core.supports(variant, "recurrence") \
        .available else "spin"
    with core.LazyArray(variant, n, generator) as arr:
        first = arr.run("random", 0.3, seed=9).checksum
        arr.reset()
        assert arr.run("random", 0.3, seed=9).checksum == first


def test_generators_differ() -> None:
    sums = set()
    for g in core.GENERATORS:
        with core.LazyArray("eager", SMALL_N, g, spin=3) as arr:
            sums.add(arr.run("seq").checksum)
    assert len(sums) == len(core.GENERATORS)
