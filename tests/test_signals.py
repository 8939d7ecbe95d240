"""Faults that are not the core's still crash, with Python's report; the
handler is installed with the first lazy array and removed with the last."""
from __future__ import annotations

import signal

from conftest import run_python

NULL_DEREF = "import ctypes; ctypes.string_at(0)"
MAKE = ("from lazybench import _array as core\n"
        "arr = core.LazyArray('sigsegv-mprotect', 1 << 14)\n"
        "arr.run('seq')\n")


def _died_by_sigsegv(proc) -> bool:
    return proc.returncode == -signal.SIGSEGV


def test_null_dereference_with_live_array_reports_and_dies() -> None:
    proc = run_python(MAKE + NULL_DEREF, "-X", "faulthandler")
    assert _died_by_sigsegv(proc), proc.stderr
    assert "Fatal Python error: Segmentation fault" in proc.stderr
    assert "<string>" in proc.stderr          # the traceback points at it


def test_null_dereference_without_faulthandler_dies() -> None:
    proc = run_python(MAKE + NULL_DEREF)
    assert _died_by_sigsegv(proc), proc.stderr
    assert "Fatal Python error" not in proc.stderr


def test_handler_restored_after_last_release() -> None:
    code = (MAKE + "arr.release()\n"
            "import faulthandler; assert faulthandler.is_enabled()\n"
            + NULL_DEREF)
    proc = run_python(code, "-X", "faulthandler")
    assert _died_by_sigsegv(proc), proc.stderr
    assert "Fatal Python error: Segmentation fault" in proc.stderr


def test_sent_sigsegv_is_not_swallowed() -> None:
    code = MAKE + "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)\n"
    proc = run_python(code)
    assert _died_by_sigsegv(proc), proc.stderr


def test_lazy_fault_still_works_beside_faulthandler() -> None:
    code = ("import faulthandler; faulthandler.enable()\n" + MAKE +
            "from lazybench import _array as core\n"
            "with core.LazyArray('eager', 1 << 14) as ref:\n"
            "    assert arr.run('random').checksum == "
            "ref.run('random').checksum\n"
            "print('ok')\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def _error_text(setup: str, error: str) -> str:
    """Run `setup`, then arr.run('seq'); print the message of `error`."""
    code = (setup + "try:\n"
            "    arr.run('seq')\n"
            f"except core.{error} as exc:\n"
            "    print(exc)\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_displaced_handler_is_a_clear_error() -> None:
    setup = ("from lazybench import _array as core\n"
             "arr = core.LazyArray('sigsegv-mprotect', 1 << 14)\n"
             "import faulthandler; faulthandler.enable()\n")
    assert "handler of lazybench was replaced" in \
        _error_text(setup, "ArrayStateError")


def test_use_after_release_is_an_error() -> None:
    assert "after release" in \
        _error_text(MAKE + "arr.release()\n", "ArrayStateError")
