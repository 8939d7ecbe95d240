"""swcheck: a state word per element, checked on every read."""
from __future__ import annotations

import pytest

from lazybench import _array as core

from conftest import SMALL_N, race


@pytest.mark.parametrize("workload", ["seq", "random"])
def test_racing_threads_evaluate_each_element_once(workload: str) -> None:
    with core.LazyArray("eager", SMALL_N, "spin", spin=30) as ref:
        expected = ref.run(workload, 1.0, seed=3).checksum
    with core.LazyArray("swcheck", SMALL_N, "spin", spin=30) as arr:
        got = race(arr, workload, 1.0, seed=3)
        c = arr.counters()
        # every element the workload read was evaluated once, and no other
        arr.clear_counters()
        arr.force()
        rest = arr.counters().generator_calls
    assert got == [expected, expected]
    assert c.generator_calls == c.elements_materialised
    assert c.generator_calls + rest == SMALL_N
    assert c.faults == 0


def test_second_pass_computes_nothing() -> None:
    with core.LazyArray("swcheck", SMALL_N) as arr:
        arr.run("seq")
        arr.clear_counters()
        arr.run("seq")
        assert arr.counters().generator_calls == 0


def test_no_instruction_forms_without_addresses() -> None:
    from lazybench._core import lib

    with core.LazyArray("swcheck", 64) as arr:
        with pytest.raises(ValueError, match="no address"):
            arr.selftest_form(lib.LB_FORM_BASE, 0, 1)
