"""sigsegv-redirect against generated instruction corpora (tests/asmcorpus.py):
every store, read-modify-write and other non-read form is refused, every
listed read form gives what the same instruction gives on eager memory,
and the register that held the handle holds it again afterwards."""
from __future__ import annotations

import ctypes
import pathlib
import shutil

import capstone
import pytest

from lazybench import _array as core
from lazybench._core import ffi, lib

import asmcorpus

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None,
                                reason="needs gcc to assemble the corpus")

SAFE = [v for v in core.VARIANTS if v.startswith("sigsegv-redirect")
        and v != "sigsegv-redirect-essay"]
FLAGS = asmcorpus.cpu_flags()
SPACING = 16                        # elements between two forms' elements


def _verdict(address: int) -> tuple[int, str]:
    rc = lib.lb_redirect_check(address)
    return rc, ffi.string(lib.lb_last_error()).decode()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="module")
def refused_all(workdir: pathlib.Path) -> asmcorpus.Compiled:
    forms = asmcorpus.refused_forms(FLAGS, include_missing=True)
    return asmcorpus.Compiled(forms, workdir, "refused_all")


@pytest.fixture(scope="module")
def refused_here(workdir: pathlib.Path) -> asmcorpus.Compiled:
    forms = asmcorpus.refused_forms(FLAGS) + [
        f for f in asmcorpus.conflict_forms()
        if not f.feature or f.feature in FLAGS]
    return asmcorpus.Compiled(forms, workdir, "refused_here")


@pytest.fixture(scope="module")
def reads(workdir: pathlib.Path) -> asmcorpus.Compiled:
    if "avx" not in FLAGS:
        pytest.skip("the corpus harness uses AVX registers")
    return asmcorpus.Compiled(asmcorpus.read_forms(FLAGS), workdir, "reads")


def test_decoder_refuses_every_store_and_non_read_form(
        refused_all: asmcorpus.Compiled) -> None:
    forms = refused_all.forms
    kinds = {k: sum(f.kind == k for f in forms) for k in ("store", "other")}
    assert kinds["store"] >= 500 and kinds["other"] >= 20
    accepted = []
    for k, form in enumerate(forms):
        rc, message = _verdict(refused_all.instruction(k))
        if rc != lib.LB_ELAZY or "cannot redirect" not in message:
            accepted.append(form.name)
        # the message names the instruction as Capstone prints it
        assert " at 0x" in message
    assert accepted == []


def test_refusals_say_why(refused_all: asmcorpus.Compiled) -> None:
    by_name = {f.name: k for k, f in enumerate(refused_all.forms)}

    def why(name: str) -> str:
        return _verdict(refused_all.instruction(by_name[name]))[1]

    assert "a store" in why("movq %rax, (%rbx)")
    assert "xlatb" in why("xlatb")
    assert "without a memory operand" not in why("xlatb")
    assert "not known to only read" in why("xlatb")
    assert "string instruction" in why("lodsq")
    for name in ("cmpxchgq %rax, (%rbx)", "movntiq %rax, (%rbx)",
                 "stmxcsr (%rbx)", "fnstcw (%rbx)", "rolq (%rbx)"):
        name = next(n for n in by_name if n.split()[0] == name.split()[0])
        assert "cannot redirect" in why(name)


@pytest.mark.parametrize("variant", SAFE)
def test_running_refused_forms_never_changes_an_element(
        variant: str, refused_here: asmcorpus.Compiled) -> None:
    forms = refused_here.forms
    n = SPACING * (len(forms) + 1)
    wrong = []
    scratch = (ctypes.c_uint64 * 64)()      # string forms' other operand
    with core.LazyArray("eager", n) as ref, core.LazyArray(variant, n) as arr:
        for k, form in enumerate(forms):
            i = SPACING * (k + 1)
            try:
                arr.call(refused_here.function(k), i,
                         ctypes.addressof(scratch))
                ran = True
            except core.LazyEvaluationError as e:
                ran = False
                if "cannot redirect" not in str(e):
                    wrong.append((form.name, str(e)))
            if ran and form.kind != "other":
                wrong.append((form.name, "ran"))
            for j in (i - 1, i, i + 1):
                if arr[j] != ref[j]:
                    wrong.append((form.name, f"element {j} changed"))
    assert wrong == []


@pytest.mark.parametrize("variant", SAFE)
def test_read_corpus_matches_eager(variant: str,
                                   reads: asmcorpus.Compiled) -> None:
    forms = reads.forms
    n = SPACING * (len(forms) + 2)
    wrong = []
    with core.LazyArray("eager", n) as ref, core.LazyArray(variant, n) as arr:
        for k, form in enumerate(forms):
            i = SPACING * (k + 1)
            want = asmcorpus.run_form(ref, reads, k, i)
            try:
                got = asmcorpus.run_form(arr, reads, k, i)
            except core.LazyEvaluationError as e:
                wrong.append((form.name, str(e)))
                continue
            if got != want:
                wrong.append((form.name, [hex(x) for x in got],
                              [hex(x) for x in want]))
        c = arr.counters()
    assert wrong == []
    assert c.faults >= len(forms)
    assert len(forms) >= 600


def test_every_table_row_is_run_by_the_read_corpus(
        reads: asmcorpus.Compiled) -> None:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT
    md.detail = True
    covered = set()
    for k, form in enumerate(reads.forms):
        address = reads.instruction(k)
        assert _verdict(address)[0] == lib.LB_OK, form.name
        insn = next(md.disasm(ctypes.string_at(address, 15), address))
        mem = [j for j, op in enumerate(insn.operands)
               if op.type == capstone.x86.X86_OP_MEM]
        covered.add((insn.insn_name(), len(insn.operands), mem[0]))
    rows = set()
    nops, mem = ffi.new("int *"), ffi.new("int *")
    for k in range(lib.lb_read_form_rows()):
        name = ffi.string(lib.lb_read_form_mnemonic(k, nops, mem)).decode()
        rows.add((name, nops[0], mem[0]))
    assert rows - covered == set()


def test_conflicting_forms_are_refused(refused_here: asmcorpus.Compiled
                                       ) -> None:
    for k, form in enumerate(refused_here.forms):
        if form.kind != "conflict":
            continue
        with core.LazyArray("sigsegv-redirect", 64) as arr:
            with pytest.raises(core.LazyEvaluationError,
                               match="handle's register"):
                arr.call(refused_here.function(k), 8,
                         ctypes.addressof((ctypes.c_uint64 * 64)()))
