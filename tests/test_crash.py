"""Real crashes end the process exactly once, whatever the order in which
signal handlers were installed and removed; nested lazy evaluations from
Python views never overflow a signal stack silently; a SIGSEGV sent by the
process to itself is treated like any fault that is not the core's.

Every scenario runs in a subprocess with a timeout, so a hang fails the
test instead of hanging the suite."""
from __future__ import annotations

import signal

import pytest

from lazybench import _array as core

from conftest import run_python

TIMEOUT = 30
REPORT = "Fatal Python error: "
NULL_DEREF = "import ctypes; ctypes.string_at(0)\n"


def _reports(proc) -> int:
    return proc.stderr.count(REPORT)


def _run(code: str, *args: str, argv: tuple[str, ...] = ()):
    return run_python(code, *args, timeout=TIMEOUT, argv=argv)


# ---- (a) the handler chain ---------------------------------------------

MAKE = ("def make():\n"
        "    a = core.LazyArray('sigsegv-mprotect', 1 << 14)\n"
        "    a.run('seq')\n"
        "    return a\n")

# Orders of enabling and disabling faulthandler around the life of arrays,
# and whether faulthandler is enabled when the crash happens.
ORDERS = {
    "enable-release-new-disable": (
        "a = make(); faulthandler.enable(); a.release(); b = make();"
        " faulthandler.disable()", False),
    "enable-release-new-disable-release": (
        "a = make(); faulthandler.enable(); a.release(); b = make();"
        " faulthandler.disable(); b.release()", False),
    "enable-release-new": (
        "a = make(); faulthandler.enable(); a.release(); b = make()", True),
    "enable-disable-release-new": (
        "a = make(); faulthandler.enable(); faulthandler.disable();"
        " a.release(); b = make()", False),
    "enable-release-disable-new": (
        "a = make(); faulthandler.enable(); a.release();"
        " faulthandler.disable(); b = make()", False),
    "enable-release-disable-new-enable": (
        "a = make(); faulthandler.enable(); a.release();"
        " faulthandler.disable(); b = make(); faulthandler.enable()", True),
    "enable-release-new-disable-enable": (
        "a = make(); faulthandler.enable(); a.release(); b = make();"
        " faulthandler.disable(); faulthandler.enable()", True),
    "before-arrays": (
        "faulthandler.enable(); a = make(); b = make(); a.release()", True),
    "after-array": (
        "a = make(); faulthandler.enable()", True),
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_null_dereference_ends_the_process_once(order: str) -> None:
    steps, enabled = ORDERS[order]
    code = ("import faulthandler\n"
            "from lazybench import _array as core\n" + MAKE
            + steps.replace("; ", "\n") + "\n"
            "print('crashing', flush=True)\n" + NULL_DEREF)
    proc = _run(code)
    assert "crashing" in proc.stdout, proc.stderr
    assert proc.returncode == -signal.SIGSEGV, proc.stderr
    assert _reports(proc) == (1 if enabled else 0), proc.stderr
    if enabled:
        assert "Fatal Python error: Segmentation fault" in proc.stderr


def test_previous_handler_that_returns_does_not_hang_a_real_crash() -> None:
    """Python's own signal handler returns without fixing the fault: the
    fault comes back unchanged, and the process then dies by SIGSEGV."""
    code = ("import signal\n"
            "signal.signal(signal.SIGSEGV, lambda *a: None)\n"
            "from lazybench import _array as core\n" + MAKE + "a = make()\n"
            + NULL_DEREF)
    proc = _run(code)
    assert proc.returncode == -signal.SIGSEGV, proc.stderr


# ---- (b) nested lazy evaluations from Python views ---------------------

FLAT = [v for v in ("sigsegv-mprotect", "uffd-sigbus", "uffd-minor")
        if core.availability(v).available]
ELEMENT = [v for v in core.VARIANTS
           if (v.startswith("sigsegv-redirect") or v in ("swcheck",
                                                         "eager-handles"))
           and core.viewable(v).available]
LEVELS = 40        # nested evaluations, far beyond a small signal stack

READ_LAST = ("import sys\n"
             "from lazybench import _array as core, _views as views\n"
             "variant = sys.argv[1]\n"
             f"n = {LEVELS} * core.granule(variant)\n"
             "arr = core.LazyArray(variant, n, 'recurrence')\n"
             "with core.LazyArray('eager', n, 'recurrence') as ref:\n"
             "    want = ref[n - 1]\n"
             "view = arr.view()\n")


@pytest.mark.parametrize("variant", FLAT)
def test_flat_view_nesting_beyond_the_signal_stack_says_why(
        variant: str) -> None:
    """faulthandler's small alternate stack is in place before the array
    (as under pytest): a deep chain of faults from a memoryview read
    outside a session stops with a message that names the cure, then
    faulthandler's report, once."""
    code = READ_LAST + "print(view[n - 1] == want)\n"
    proc = _run(code, "-X", "faulthandler", argv=(variant,))
    signo = signal.SIGBUS if variant.startswith("uffd") else signal.SIGSEGV
    assert proc.returncode == -signo, proc.stderr
    assert "lazybench.session(arr)" in proc.stderr
    assert "signal stack" in proc.stderr
    assert _reports(proc) == 1, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("variant", FLAT)
def test_flat_view_nesting_inside_a_session_works(variant: str) -> None:
    code = READ_LAST + ("with views.session(arr):\n"
                        "    print(view[n - 1] == want)\n")
    proc = _run(code, "-X", "faulthandler", argv=(variant,))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize("variant", ELEMENT)
def test_element_view_nesting_outside_a_session_works(variant: str) -> None:
    """Element views read through a C call, which takes its faults on the
    core's own signal stack."""
    code = READ_LAST + ("print(view[n - 1] == want)\n"
                        "print(arr.run('seq').checksum == "
                        "core.LazyArray('eager', n, 'recurrence')"
                        ".run('seq').checksum)\n")
    proc = _run(code, "-X", "faulthandler", argv=(variant,))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


# ---- (c) a SIGSEGV the process sends itself ------------------------------

FORGE = """
import ctypes, signal, threading
def forge_sigsegv(addr=0x10):
    # rt_tgsigqueueinfo with si_code SEGV_MAPERR: looks like a fault
    libc = ctypes.CDLL(None, use_errno=True)
    info = (ctypes.c_int * 32)()
    info[0] = signal.SIGSEGV      # si_signo
    info[2] = 1                   # si_code: SEGV_MAPERR
    ctypes.c_uint64.from_buffer(info, 16).value = addr   # si_addr
    rc = libc.syscall(297, ctypes.c_int(os.getpid()),
                      ctypes.c_int(threading.get_native_id()),
                      ctypes.c_int(signal.SIGSEGV), info)
    assert rc == 0, ctypes.get_errno()
"""

AFTER = ("arr.reset()\n"
         "with core.LazyArray('eager', 1 << 14) as ref:\n"
         "    want = ref.run('random').checksum\n"
         "assert arr.run('random').checksum == want\n"
         "print('arrays work', flush=True)\n")


def test_forged_sigsegv_with_default_action_kills() -> None:
    code = ("import os\n" + FORGE + "from lazybench import _array as core\n"
            "arr = core.LazyArray('sigsegv-mprotect', 1 << 14)\n"
            "arr.run('seq')\n"
            "forge_sigsegv()\n"
            "print('survived', flush=True)\n" + AFTER)
    proc = _run(code)
    assert proc.returncode == -signal.SIGSEGV, (proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout


def test_forged_sigsegv_with_faulthandler_reports_once() -> None:
    code = ("import os\n" + FORGE + "from lazybench import _array as core\n"
            "arr = core.LazyArray('sigsegv-mprotect', 1 << 14)\n"
            "arr.run('seq')\n"
            "forge_sigsegv()\n"
            "print('survived', flush=True)\n")
    proc = _run(code, "-X", "faulthandler")
    assert proc.returncode == -signal.SIGSEGV, (proc.stdout, proc.stderr)
    assert _reports(proc) == 1, proc.stderr
    assert "survived" not in proc.stdout


def test_forged_sigsegv_handled_by_the_previous_handler_keeps_arrays() -> None:
    """A handler installed before the array takes the sent signal and
    returns: lazybench's handler stays installed and arrays keep working."""
    code = ("import os\n" + FORGE +
            "seen = []\n"
            "signal.signal(signal.SIGSEGV, lambda s, f: seen.append(s))\n"
            "from lazybench import _array as core\n"
            "arr = core.LazyArray('sigsegv-mprotect', 1 << 14)\n"
            "arr.run('seq')\n"
            "forge_sigsegv()\n"
            "forge_sigsegv()\n"
            "print('handled', len(seen), flush=True)\n" + AFTER)
    proc = _run(code)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.split("\n")[:2] == ["handled 2", "arrays work"]
