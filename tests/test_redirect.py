"""sigsegv-redirect: decoding real instructions, the decode cache, healing,
threads and the instructions it must refuse."""
from __future__ import annotations

import pytest

from lazybench import _array as core
from lazybench._core import lib

from conftest import SMALL_N, race, run_python

REDIRECT = [v for v in core.VARIANTS if v.startswith("sigsegv-redirect")]
# sigsegv-redirect-essay serves only the suite's own loops (see
# test_redirect_handles.py), so the self-test's loads are refused there.
FAULTING = [v for v in core.VARIANTS if v.startswith(("sigsegv", "uffd"))
            and v != "sigsegv-redirect-essay"]
REGS = ("rax rcx rdx rbx rsp rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15"
        .split())
LOAD_FORMS = {
    lib.LB_FORM_BASE: lambda v: v,
    lib.LB_FORM_DISP: lambda v: v,
    lib.LB_FORM_BASE_INDEX: lambda v: v,
    lib.LB_FORM_INDEX: lambda v: v,
    lib.LB_FORM_ALU: lambda v: v,
    lib.LB_FORM_CMP: lambda v: 1,
    lib.LB_FORM_MOVZX: lambda v: v & 0xFF,
    lib.LB_FORM_MOVSX: lambda v: ((v & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000,
    lib.LB_FORM_SSE: lambda v: v,
    lib.LB_FORM_AVX: lambda v: v,
}


def _combos() -> list[tuple[int, int]]:
    """Every (form, register) the self-test has: all 16 registers as a
    base; rsp only in the forms that can use it."""
    with core.LazyArray("eager", 8) as arr:
        out = []
        for form in LOAD_FORMS:
            for reg in range(16):
                try:
                    arr.selftest_form(form, reg, 0, arr[0])
                    out.append((form, reg))
                except ValueError:
                    pass
    return out


COMBOS = _combos()


def test_every_register_is_a_base() -> None:
    assert {reg for form, reg in COMBOS if form == lib.LB_FORM_BASE} == \
        set(range(16))


@pytest.mark.parametrize("variant", FAULTING)
def test_instruction_forms_read_the_right_value(variant: str) -> None:
    n = 8 * len(COMBOS) + 8
    failures = []
    with core.LazyArray("eager", n) as ref, core.LazyArray(variant, n) as arr:
        for k, (form, reg) in enumerate(COMBOS):
            i = 8 * k                       # a fresh, lazy element each time
            want = LOAD_FORMS[form](ref[i])
            got = arr.selftest_form(form, reg, i, ref[i])
            if got != want:
                failures.append((form, REGS[reg], got, want))
        c = arr.counters()
    assert failures == []
    if variant in REDIRECT:
        assert c.faults >= len(COMBOS)
        # the AVX load covers four elements: all four were forced
        avx = sum(1 for form, _ in COMBOS if form == lib.LB_FORM_AVX)
        assert c.elements_materialised == len(COMBOS) + 3 * avx


def test_decode_cache_decodes_each_call_site_once() -> None:
    sites = [(form, reg) for form, reg in COMBOS if reg in (0, 12)]
    with core.LazyArray("sigsegv-redirect", 8 * 3 * len(sites)) as arr:
        for rep in range(3):
            for k, (form, reg) in enumerate(sites):
                arr.selftest_form(form, reg, 8 * (rep * len(sites) + k))
        c = arr.counters()
    assert c.decodes == c.decode_misses == len(sites)
    assert c.decode_hits == 2 * len(sites)
    assert c.faults == 3 * len(sites)


def test_without_cache_every_fault_decodes() -> None:
    with core.LazyArray("sigsegv-redirect-nocache", SMALL_N) as arr:
        arr.run("seq")
        c = arr.counters()
    assert c.faults == SMALL_N
    assert c.decodes == SMALL_N
    assert c.decode_hits == c.decode_misses == 0


def test_workload_loop_is_decoded_once() -> None:
    with core.LazyArray("sigsegv-redirect", SMALL_N) as arr:
        arr.run("random", 1.0)
        c = arr.counters()
    assert c.faults == SMALL_N
    assert 1 <= c.decodes == c.decode_misses <= 2
    assert c.decode_hits == SMALL_N - c.decodes


@pytest.mark.parametrize("variant,second", [("sigsegv-redirect", SMALL_N),
                                            ("sigsegv-redirect-heal", 0)])
def test_healing(variant: str, second: int) -> None:
    with core.LazyArray("eager", SMALL_N) as ref, \
            core.LazyArray(variant, SMALL_N) as arr:
        assert arr.run("seq").checksum == ref.run("seq").checksum
        assert arr.counters().faults == SMALL_N
        arr.clear_counters()
        assert arr.run("seq").checksum == ref.run("seq").checksum
        assert arr.counters().faults == second
        arr.reset()                          # reset un-heals the list
        arr.clear_counters()
        assert arr.run("seq").checksum == ref.run("seq").checksum
        assert arr.counters().faults == SMALL_N


@pytest.mark.parametrize("variant", REDIRECT)
def test_two_threads_evaluate_each_thunk_once(variant: str) -> None:
    with core.LazyArray("eager", SMALL_N, "spin", spin=20) as ref:
        expected = ref.run("seq", 1.0).checksum
    with core.LazyArray(variant, SMALL_N, "spin", spin=20) as arr:
        got = race(arr, "seq")
        c = arr.counters()
    assert got == [expected, expected]
    assert c.generator_calls == c.elements_materialised == SMALL_N


@pytest.mark.parametrize("variant", [v for v in FAULTING
                                     if v.startswith("sigsegv")])
def test_store_is_refused_clearly(variant: str) -> None:
    with core.LazyArray(variant, 64) as arr:
        with pytest.raises(core.LazyEvaluationError, match="store"):
            arr.selftest_form(lib.LB_FORM_STORE, 3, 5, 42)
        assert arr[5] == core.LazyArray("eager", 64)[5]


def test_unsupported_instruction_in_subprocess_names_it() -> None:
    code = ("from lazybench import _array as core\n"
            "from lazybench._core import lib\n"
            "arr = core.LazyArray('sigsegv-redirect', 64)\n"
            "arr.selftest_form(lib.LB_FORM_STORE, 3, 5, 42)\n")
    proc = run_python(code, timeout=60)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "cannot redirect a store" in last
    assert "%rbx" in last and " at 0x" in last
