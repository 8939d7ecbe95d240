"""The recurrence generator touched last-first: nested faults up to the
documented depth, a clear error beyond it."""
from __future__ import annotations

import pytest

from lazybench import _array as core


RECURRENT = [v for v in core.VARIANTS
             if core.supports(v, "recurrence").available]
LAZY = [v for v in RECURRENT if not v.startswith("eager")]


@pytest.mark.parametrize("variant", RECURRENT)
def test_last_first_within_depth(variant: str) -> None:
    """One nested fault per granule (page or element), back to element 0."""
    levels = core.MAX_NESTING
    n = levels * core.granule(variant)
    with core.LazyArray("eager", n, "recurrence") as ref, \
            core.LazyArray(variant, n, "recurrence") as arr:
        assert arr[n - 1] == ref[n - 1]
        if variant in LAZY:
            c = arr.counters()
            assert c.max_nesting == levels
            assert c.elements_materialised == n
            assert c.generator_calls == n
        assert arr.run("seq").checksum == ref.run("seq").checksum


@pytest.mark.parametrize("variant", LAZY)
def test_beyond_depth_is_a_clear_error_and_the_array_survives(
        variant: str) -> None:
    n = (core.MAX_NESTING + 3) * core.granule(variant)
    with core.LazyArray("eager", n, "recurrence") as ref, \
            core.LazyArray(variant, n, "recurrence") as arr:
        with pytest.raises(core.LazyEvaluationError,
                           match=f"depth of {core.MAX_NESTING}"):
            arr[n - 1]
        # The failed chain was given back: the array still works.
        assert arr[0] == ref[0]
        assert arr.run("seq").checksum == ref.run("seq").checksum
        assert arr[n - 1] == ref[n - 1]
