"""fork(): a child never changes its parent's arrays, refuses to use the
arrays it inherited (ArrayStateError naming fork), releases them without
touching the parent, and creates and runs arrays of its own correctly.

Each scenario runs in a fresh interpreter that forks; the parent waits for
every child with a deadline and kills a child that hangs, so a hang shows
up as a failure, never as a stuck test run."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from lazybench import _array as core

from conftest import SMALL_N, SMALL_PAGES

AVAILABLE = [v for v in core.VARIANTS if core.availability(v).available]
LAZY_FLAT = [v for v in AVAILABLE
             if v.startswith(("sigsegv-mprotect", "uffd"))]

# Shared by the scenarios: fork, then wait for the child with a deadline.
PRELUDE = r'''
import gc, json, os, signal, sys, threading, time
from lazybench import _array as core, _views as views

def wait_child(pid, timeout=20.0):
    """'exit N', 'signal N' or 'hung' (the child was killed)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return f"signal {os.WTERMSIG(status)}"
            return f"exit {os.WEXITSTATUS(status)}"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.005)

def attempt(f):
    try:
        f()
        return "ok"
    except core.ArrayStateError as exc:
        return f"ArrayStateError: {exc}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"

def report(fd, **kw):
    os.write(fd, (json.dumps(kw) + "\n").encode())

def parent_state(arr, want, **extra):
    """Print, as JSON with `extra`, the parent's array after the fork:
    its checksum and samples against eager's, and its counters."""
    n = len(arr)
    arr.run("seq")
    c = arr.counters()
    print(json.dumps(dict(
        extra,
        checksum_ok=arr.run("seq").checksum == want["seq"],
        sample_ok=[arr[i] for i in (0, 1, n // 2, n - 1)] == want["sample"],
        faults=c.faults, pages=c.pages_materialised,
        elements=c.elements_materialised, calls=c.generator_calls)))

def eager_checksums(n):
    with core.LazyArray("eager", n) as ref:
        return {"seq": ref.run("seq").checksum,
                "random": ref.run("random", 0.5, seed=3).checksum,
                "sample": [ref[i] for i in (0, 1, n // 2, n - 1)]}
'''

SCENARIO_INHERITED = PRELUDE + r'''
variant, n = sys.argv[1], int(sys.argv[2])
want = eager_checksums(n)
arr = core.LazyArray(variant, n)
arr.run("seq", 0.5)                 # half evaluated when the child is made
element_view = arr.view() if core.viewable(variant).available and \
    core.lib.lb_view_address(arr._owner.ptr) == core.ffi.NULL else None
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    ops = {
        "force": arr.force,
        "get": lambda: arr[n - 1],
        "run": lambda: arr.run("seq"),
        "bench": lambda: arr.bench("seq", 1.0, 1, 2),
        "view": arr.view,
        "session": lambda: views.session(arr).__enter__(),
    }
    if element_view is not None:
        ops["element view read"] = lambda: element_view[n - 1]
    ops["reset"] = arr.reset        # last: nothing may refill what it drops
    for name, op in ops.items():
        report(w, op=name, outcome=attempt(op))
    arr.release()                   # frees the child's copy only
    os._exit(0)
os.close(w)
child = wait_child(pid)
lines = os.read(r, 1 << 20).decode().splitlines()
# the parent's array goes on as before
parent_state(arr, want, child=child, ops=[json.loads(x) for x in lines])
'''


def _python(scenario: str, *args: str,
            timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", scenario, *args],
                          capture_output=True, text=True, timeout=timeout)


def _run(scenario: str, *args: str, timeout: float = 120) -> dict:
    proc = _python(scenario, *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _parent_untouched(variant: str, out: dict) -> None:
    """The parent computed each element once, in the parent: nothing was
    installed into its array from outside, nothing of it was dropped."""
    assert out["checksum_ok"] and out["sample_ok"], out
    assert out["elements"] == SMALL_N, out
    assert out["calls"] == SMALL_N, out
    if variant in LAZY_FLAT:
        assert out["faults"] == SMALL_PAGES, out
        assert out["pages"] == SMALL_PAGES, out


@pytest.mark.parametrize("variant", AVAILABLE)
def test_child_refuses_inherited_array(variant: str) -> None:
    out = _run(SCENARIO_INHERITED, variant, str(SMALL_N))
    assert out["child"] == "exit 0", out
    ops = {o["op"]: o["outcome"] for o in out["ops"]}
    expected = {"reset", "force", "get", "run", "bench", "view", "session"}
    assert expected <= set(ops), out
    for name, outcome in ops.items():
        assert outcome.startswith("ArrayStateError") and "fork" in outcome, \
            (name, outcome)
    _parent_untouched(variant, out)


SCENARIO_OWN = PRELUDE + r'''
variant, n, exit_how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
want = eager_checksums(n)
arr = core.LazyArray(variant, n)    # alive, unevaluated, in the parent
other = core.LazyArray(variant, n)
other.run("seq", 0.5)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    got = []
    for size in (n, n, 3 * n):      # same size first: the likeliest address
        expect = want if size == n else eager_checksums(size)
        with core.LazyArray(variant, size) as own:
            got.append(own.run("seq").checksum == expect["seq"])
            own.reset()
            got.append(own.run("random", 0.5, seed=3).checksum
                       == expect["random"])
            got.append([own[i] for i in (0, 1, size // 2, size - 1)]
                       == expect["sample"])
    report(w, own=got)
    if exit_how == "gc":            # the interpreter releases arr and other
        os.close(w)
        sys.exit(0)
    arr.release()
    other.release()
    os._exit(0)
os.close(w)
child = wait_child(pid)
lines = os.read(r, 1 << 20).decode().splitlines()
other.release()
parent_state(arr, want, child=child,
             own=[json.loads(x)["own"] for x in lines])
'''


@pytest.mark.parametrize("exit_how", ["release", "gc"])
@pytest.mark.parametrize("variant", AVAILABLE)
def test_child_runs_its_own_arrays(variant: str, exit_how: str) -> None:
    out = _run(SCENARIO_OWN, variant, str(SMALL_N), exit_how)
    assert out["child"] == "exit 0", out
    assert out["own"] == [[True] * 9], out
    _parent_untouched(variant, out)


SCENARIO_CHURN = PRELUDE + r'''
variant, n, forks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = eager_checksums(n)
stop = threading.Event()
errors = []

def churn():
    while not stop.is_set():
        try:
            with core.LazyArray(variant, n) as a:
                if a.run("seq").checksum != want["seq"]:
                    errors.append("wrong checksum")
                a.reset()
                a.run("random", 0.5, seed=3)
        except Exception as exc:
            errors.append(repr(exc))

keep = core.LazyArray(variant, n)
keep.run("seq", 0.25)
thread = threading.Thread(target=churn)
thread.start()
outcomes = []
for k in range(forks):
    pid = os.fork()
    if pid == 0:
        try:
            with core.LazyArray(variant, n) as own:
                ok = own.run("seq").checksum == want["seq"]
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    outcomes.append(wait_child(pid, timeout=10))
stop.set()
thread.join()
parent_state(keep, want, outcomes=outcomes, errors=errors[:5])
'''


@pytest.mark.parametrize("variant", AVAILABLE)
def test_forks_while_another_thread_churns(variant: str) -> None:
    forks = 20 if variant == "uffd-sigbus" else 8
    out = _run(SCENARIO_CHURN, variant, str(SMALL_N), str(forks),
               timeout=60 + 12 * forks)
    hung = out["outcomes"].count("hung")
    failed = sum(o not in ("exit 0", "hung") for o in out["outcomes"])
    assert (hung, failed) == (0, 0), out
    assert out["errors"] == [], out
    _parent_untouched(variant, out)


SCENARIO_STALE_VIEW = PRELUDE + r'''
variant, n = sys.argv[1], int(sys.argv[2])
want = eager_checksums(n)
arr = core.LazyArray(variant, n)
arr.run("seq", 0.5)
view = arr.view()                   # a memoryview taken before the fork
pid = os.fork()
if pid == 0:
    value = view[n - 1]             # a page the parent never evaluated
    print("child read", "right" if value == want["sample"][-1] else "WRONG",
          flush=True)
    os._exit(0)
child = wait_child(pid)
parent_state(arr, want, child=child)
'''


@pytest.mark.parametrize("variant", LAZY_FLAT)
def test_stale_view_read_in_child_dies(variant: str) -> None:
    """A memoryview is plain memory: a read in the child cannot raise.  The
    inherited lazy memory is closed there, so the read ends the child with
    SIGSEGV (with a message naming fork where lazybench's SIGSEGV handler
    is installed): never a value computed into the parent's memory, never
    zeros, never a hang."""
    proc = _python(SCENARIO_STALE_VIEW, variant, str(SMALL_N), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["child"] == f"signal {int(signal.SIGSEGV)}", (out, proc.stderr)
    assert "child read" not in proc.stdout
    if variant == "sigsegv-mprotect":
        assert "fork" in proc.stderr, proc.stderr
    _parent_untouched(variant, out)
