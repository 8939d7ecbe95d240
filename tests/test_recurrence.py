"""The recurrence generator touched last-first: nested faults up to the
documented depth, a clear error beyond it."""
from __future__ import annotations

import pytest

from lazybench import core


def _n(pages: int) -> int:
    return pages * core.PAGE_ELEMENTS


@pytest.mark.parametrize("variant", core.VARIANTS)
def test_last_first_within_depth(variant: str) -> None:
    pages = core.MAX_NESTING
    with core.LazyArray("eager", _n(pages), "recurrence") as ref, \
            core.LazyArray(variant, _n(pages), "recurrence") as arr:
        assert arr[_n(pages) - 1] == ref[_n(pages) - 1]
        if variant != "eager":
            c = arr.counters()
            assert c.max_nesting == pages
            assert c.pages_materialised == pages
            assert c.faults == pages
        assert arr.run("seq").checksum == ref.run("seq").checksum


def test_beyond_depth_is_a_clear_error_and_the_array_survives() -> None:
    pages = core.MAX_NESTING + 3
    with core.LazyArray("eager", _n(pages), "recurrence") as ref, \
            core.LazyArray("sigsegv-mprotect", _n(pages), "recurrence") as arr:
        with pytest.raises(core.LazyEvaluationError,
                           match=f"depth of {core.MAX_NESTING}"):
            arr[_n(pages) - 1]
        # The failed chain was given back: the array still works.
        assert arr[0] == ref[0]
        assert arr.run("seq").checksum == ref.run("seq").checksum
        assert arr[_n(pages) - 1] == ref[_n(pages) - 1]
