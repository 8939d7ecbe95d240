"""Handles in user code: LazyArray.handle(i) read by C code compiled with
gcc (inline asm and -O2), through LazyArray.call and inside
views.session(), including every case where the essay's technique leaks
the moved register (a second read through it, p[0] + p[1], memcpy, a
pointer compare, the handle's register as data)."""
from __future__ import annotations

import ctypes
import pathlib
import shutil
import subprocess
import textwrap

import pytest

from lazybench import _array as core, _views as views

from conftest import run_python

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None,
                                reason="needs gcc")

SAFE = [v for v in core.VARIANTS if v.startswith("sigsegv-redirect")
        and v != "sigsegv-redirect-essay"]
# Every variant whose elements user code can reach by address.
ADDRESSED = [v for v in core.VARIANTS if v not in ("swcheck",
                                                   "sigsegv-redirect-essay")
             and core.availability(v).available]

READERS = r"""
#include <stdint.h>
#include <string.h>

/* mov (%rbx),%rax; mov 8(%rbx),%rax: the second read through the same
 * register */
int64_t second_read(const void *h, void *arg)
{
    int64_t v;
    __asm__ volatile("mov (%%rbx), %%rax\n\tmov 8(%%rbx), %%rax"
                     : "=a"(v) : "b"(h) : "memory");
    return v;
}

/* gcc -O2 reads p[0] and p[1] through one register */
int64_t sum_two(const void *h, void *arg)
{
    const int64_t *p = h;
    return p[0] + p[1];
}

int64_t sum_eight(const void *h, void *arg)
{
    const int64_t *p = h;
    int64_t s = 0;
    for (int k = 0; k < 8; k++)
        s += p[k] * (k + 1);
    return s;
}

/* the register holding the handle, read back after the load */
int64_t pointer_after(const void *h, void *arg)
{
    uint64_t v, after;
    __asm__ volatile("mov (%%rbx), %%rax\n\tmov %%rbx, %%rdx"
                     : "=a"(v), "=d"(after) : "b"(h) : "memory");
    *(uint64_t *)arg = v;
    return (int64_t)after;
}

/* add (%rax),%rax: the handle's register is also the data operand */
int64_t add_self(const void *h, void *arg)
{
    int64_t v;
    __asm__ volatile("add (%%rax), %%rax" : "=a"(v) : "a"(h) : "memory");
    return v;
}

/* memcpy(arg + 8, h, *(size_t *)arg) */
int64_t copy(const void *h, void *arg)
{
    size_t len = *(size_t *)arg;
    memcpy((char *)arg + 8, h, len);
    return 0;
}
"""


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    d = tmp_path_factory.mktemp("readers")
    (d / "readers.c").write_text(READERS)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o",
                    str(d / "readers.so"), str(d / "readers.c")], check=True)
    lib = ctypes.CDLL(str(d / "readers.so"))
    for name in ("second_read", "sum_two", "sum_eight", "pointer_after",
                 "add_self", "copy"):
        f = getattr(lib, name)
        f.restype = ctypes.c_int64
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return lib


def _address(fn: object) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


def _expected(name: str, ref: core.LazyArray, i: int) -> int:
    mask = (1 << 64) - 1
    if name == "second_read":
        return ref[i + 1]
    if name == "sum_two":
        return ((ref[i] + ref[i + 1] + (1 << 63)) & mask) - (1 << 63)
    total = sum(ref[i + k] * (k + 1) for k in range(8))
    return ((total + (1 << 63)) & mask) - (1 << 63)


@pytest.mark.parametrize("variant", ADDRESSED)
@pytest.mark.parametrize("name", ["second_read", "sum_two", "sum_eight"])
def test_reads_through_one_register(variant: str, name: str,
                                    readers: ctypes.CDLL) -> None:
    fn = getattr(readers, name)
    with core.LazyArray("eager", 4096) as ref, \
            core.LazyArray(variant, 4096) as arr:
        # through a guarded call, then directly inside a view session
        assert arr.call(_address(fn), 100) == _expected(name, ref, 100)
        with views.session(arr):
            assert fn(arr.handle(2000), None) == _expected(name, ref, 2000)
            assert fn(arr.handle(3000), None) == _expected(name, ref, 3000)


@pytest.mark.parametrize("variant", SAFE)
def test_the_register_holds_the_handle_afterwards(
        variant: str, readers: ctypes.CDLL) -> None:
    value = ctypes.c_uint64()
    with core.LazyArray("eager", 512) as ref, \
            core.LazyArray(variant, 512) as arr:
        with views.session(arr):
            h = arr.handle(7)
            assert readers.pointer_after(h, ctypes.byref(value)) == h
        assert value.value == ref[7] % (1 << 64)


@pytest.mark.parametrize("variant", SAFE)
def test_the_handle_register_as_data_is_refused(
        variant: str, readers: ctypes.CDLL) -> None:
    with core.LazyArray(variant, 512) as arr:
        with pytest.raises(core.LazyEvaluationError,
                           match=r"handle's register.*add.*%rax"):
            arr.call(_address(readers.add_self), 5)
        with core.LazyArray("eager", 512) as ref:
            assert arr[5] == ref[5]


@pytest.mark.parametrize("variant", SAFE)
@pytest.mark.parametrize("size", [24, 40, 100, 256, 4096])
def test_memcpy_from_a_handle(variant: str, size: int,
                              readers: ctypes.CDLL) -> None:
    buf = ctypes.create_string_buffer(8 + size)
    ctypes.c_size_t.from_buffer(buf).value = size
    n = 4 * 512
    with core.LazyArray("eager", n) as ref, core.LazyArray(variant, n) as arr:
        want = ctypes.string_at(ref.handle(512), size)
        try:
            arr.call(_address(readers.copy), 512, ctypes.addressof(buf))
        except core.LazyEvaluationError as e:
            # glibc copies large blocks with rep movsb: refused, by name
            assert "cannot redirect" in str(e) and "movs" in str(e)
            return
        assert buf.raw[8:] == want


def test_memcpy_outcomes_are_reported(readers: ctypes.CDLL) -> None:
    """Which sizes glibc's memcpy copies correctly and which it refuses:
    at least the small ones must work."""
    ok = []
    for size in (24, 40, 100, 256):
        buf = ctypes.create_string_buffer(8 + size)
        ctypes.c_size_t.from_buffer(buf).value = size
        with core.LazyArray("sigsegv-redirect", 2048) as arr:
            arr.call(_address(readers.copy), 512, ctypes.addressof(buf))
            ok.append(size)
    assert ok == [24, 40, 100, 256]


def _child(variant: str, body: str, lib: pathlib.Path) -> str:
    return textwrap.dedent(f"""
        import ctypes, faulthandler
        from lazybench import _array as core, _views as views
        lib = ctypes.CDLL({str(lib)!r})
        for name in ("sum_two", "add_self"):
            getattr(lib, name).restype = ctypes.c_int64
            getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        arr = core.LazyArray({variant!r}, 4096)
    """) + textwrap.dedent(body)


@pytest.fixture(scope="module")
def readers_path(readers: ctypes.CDLL) -> pathlib.Path:
    return pathlib.Path(readers._name)


def test_refusal_inside_a_session_is_fatal_with_its_reason(
        readers_path: pathlib.Path) -> None:
    code = _child("sigsegv-redirect", """
        with views.session(arr):
            lib.add_self(arr.handle(3), None)
        print("survived")
    """, readers_path)
    proc = run_python(code, timeout=60)
    assert proc.returncode != 0 and "survived" not in proc.stdout
    assert "cannot redirect" in proc.stderr and "add" in proc.stderr


@pytest.mark.parametrize("faulthandler", [False, True])
def test_a_handle_outside_a_session_is_a_clear_fatal_error(
        readers_path: pathlib.Path, faulthandler: bool) -> None:
    # faulthandler enabled first, as pytest and python -X faulthandler do
    code = _child("sigsegv-redirect", """
        lib.sum_two(arr.handle(3), None)
        print("survived")
    """, readers_path)
    if faulthandler:
        code = "import faulthandler; faulthandler.enable()\n" + code
    proc = run_python(code, timeout=60)
    assert proc.returncode != 0 and "survived" not in proc.stdout
    assert "outside a guarded call and outside lazybench.session()" in proc.stderr


def test_essay_variant_gives_out_no_handles() -> None:
    with core.LazyArray("sigsegv-redirect-essay", 512) as arr:
        with pytest.raises(core.UnavailableError, match="no handles"):
            arr.handle(0)
        with pytest.raises(core.UnavailableError, match="no handles"):
            arr.view()
        with pytest.raises(core.UnavailableError, match="no handles"):
            arr.call(1, 0)
        # its own workload loops and element reads still work
        with core.LazyArray("eager", 512) as ref:
            assert arr.run("random").checksum == ref.run("random").checksum
            assert arr[100] == ref[100]


def test_essay_variant_refuses_reads_from_other_code() -> None:
    from lazybench._core import lib

    with core.LazyArray("sigsegv-redirect-essay", 512) as arr:
        with pytest.raises(core.LazyEvaluationError,
                           match="outside the suite's workload loops"):
            arr.selftest_form(lib.LB_FORM_BASE, 3, 5)


def test_swcheck_gives_out_no_handles() -> None:
    with core.LazyArray("swcheck", 512) as arr:
        with pytest.raises(core.UnavailableError, match="state check"):
            arr.handle(0)
