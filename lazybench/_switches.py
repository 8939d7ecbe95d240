"""Switch accounting: how many context switches, page faults, signals and
system calls one lazily computed page or element costs, measured, beside
the user/kernel transitions each mechanism implies.

Sources:
- ``getrusage(RUSAGE_SELF)``: voluntary and involuntary context switches
  and user/system time of the whole process (handler threads included);
- ``perf_event_open`` software events of the process (csrc/perf_events.c),
  each checked against a known count before it is believed: with
  ``perf_event_paranoid`` = 2 an unprivileged process may count user mode
  only, where context switches and migrations never happen, so they would
  read 0 whatever happened.  Such an event is reported "not permitted";
- the core's own counts while profiling: signals its handler took and
  system calls the fault path made (syscall tracepoints need privilege).
"""
from __future__ import annotations

import dataclasses
import mmap
import os
import pathlib
import resource
import time
from typing import Any

from lazybench import _array as core
from lazybench._core import ffi, lib

# perf's software events (linux/perf_event.h PERF_COUNT_SW_*).
EVENTS: dict[str, int] = {"context-switches": 3, "cpu-migrations": 4,
                          "page-faults": 2, "major-faults": 6}
PROBE_SLEEPS = 20           # voluntary switches the context-switch probe makes
PROBE_PAGES = 32            # fresh pages the page-fault probe touches
PROBE_HOPS = 4              # CPU changes the migration probe makes


def paranoid() -> int | None:
    try:
        return int(pathlib.Path(
            "/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class EventStatus:
    """How far a perf event can be believed here.  `mode`: "kernel+user",
    "user only" or "" (not open); `status`: "counts" (it matched its
    known count), "unchecked" (open, but no known count to check it
    against), or "not permitted" / the reason it could not be opened."""
    name: str
    mode: str
    status: str
    note: str

    @property
    def believed(self) -> bool:
        return self.status in ("counts", "unchecked")


def _probe(name: str, read: Any) -> tuple[str, str]:
    """Make a known number of `name` events and check the counter saw
    them: (status, note)."""
    if name == "context-switches":
        before = read()
        for _ in range(PROBE_SLEEPS):
            time.sleep(0.0002)          # blocks: one voluntary switch
        seen = read() - before
        if seen >= PROBE_SLEEPS // 2:
            return "counts", f"{seen} counted for {PROBE_SLEEPS} sleeps"
        return "not permitted", (f"{seen} counted for {PROBE_SLEEPS} sleeps "
                                 "(switches happen in the kernel)")
    if name == "page-faults":
        before = read()
        with mmap.mmap(-1, PROBE_PAGES * mmap.PAGESIZE) as m:
            for k in range(PROBE_PAGES):
                m[k * mmap.PAGESIZE] = 1
        seen = read() - before
        if seen >= PROBE_PAGES:
            return "counts", f"{seen} counted for {PROBE_PAGES} first touches"
        return "not permitted", (f"{seen} counted for {PROBE_PAGES} first "
                                 "touches")
    if name == "cpu-migrations":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return "unchecked", "one CPU: no migration to check it with"
        before = read()
        try:
            for k in range(PROBE_HOPS):
                os.sched_setaffinity(0, {cpus[k % 2]})
                time.sleep(0.0002)
        finally:
            os.sched_setaffinity(0, cpus)
        seen = read() - before
        if seen >= PROBE_HOPS // 2:
            return "counts", f"{seen} counted for {PROBE_HOPS} forced moves"
        return "not permitted", (f"{seen} counted for {PROBE_HOPS} forced "
                                 "moves (migrations happen in the kernel)")
    return "unchecked", "no known count to check it against"


class PerfCounters:
    """The software events of this process and the threads it starts
    after opening (open before creating the array, so that a handler
    thread is counted).  Each is opened counting kernel and user mode, or
    where that is refused (perf_event_paranoid), user mode only; then
    checked against a known count.  `user_only` asks for user mode only
    from the start (what an unprivileged process gets).  Use as a context
    manager."""

    def __init__(self, user_only: bool = False) -> None:
        self._fds: dict[str, int] = {}
        self.status: dict[str, EventStatus] = {}
        why = ffi.new("char[256]")
        level = paranoid()
        for name, event in EVENTS.items():
            modes = (1,) if user_only else (0, 1)
            fd, got = -1, 0
            for mode in modes:
                fd = int(lib.lb_perf_open(event, mode, why, 256))
                if fd >= 0 or not ffi.string(why).startswith(
                        b"not permitted"):
                    got = mode
                    break
            if fd < 0:
                reason = ffi.string(why).decode()
                self.status[name] = EventStatus(
                    name, "", "not permitted" if reason.startswith(
                        "not permitted") else "unavailable", reason)
                continue
            self._fds[name] = fd
            status, note = _probe(name, lambda fd=fd: self._read_fd(fd))
            if got:
                note += (f"; user mode only (perf_event_paranoid={level})"
                         if not user_only else "; user mode only (asked)")
            self.status[name] = EventStatus(
                name, "user only" if got else "kernel+user", status, note)

    @staticmethod
    def _read_fd(fd: int) -> int:
        v = int(lib.lb_perf_read(fd))
        if v < 0:
            raise OSError("reading a perf event failed")
        return v

    def read(self) -> dict[str, int | None]:
        """Each event's count so far; None where it is not believed."""
        return {name: (self._read_fd(self._fds[name])
                       if name in self._fds and self.status[name].believed
                       else None) for name in EVENTS}

    def close(self) -> None:
        for fd in self._fds.values():
            lib.lb_perf_close(fd)
        self._fds.clear()

    def __enter__(self) -> "PerfCounters":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the process has done so far."""
    voluntary: int
    involuntary: int
    user_s: float
    system_s: float
    perf: dict[str, int | None]

    @classmethod
    def take(cls, perf: PerfCounters) -> "Snapshot":
        r = resource.getrusage(resource.RUSAGE_SELF)
        return cls(r.ru_nvcsw, r.ru_nivcsw, r.ru_utime, r.ru_stime,
                   perf.read())


@dataclasses.dataclass
class Account:
    """Totals of a case: the process's switches and times and the perf
    events (None: not believed) over its uninstrumented runs, and the
    faults they are divided by; the core's signals, traps and fault-path
    system calls over its profiled runs (counted only while profiling),
    and the faults those are divided by."""
    faults: int = 0
    core_faults: int = 0
    voluntary: int = 0
    involuntary: int = 0
    user_s: float = 0.0
    system_s: float = 0.0
    perf: dict[str, int | None] = dataclasses.field(
        default_factory=lambda: {name: 0 for name in EVENTS})
    signals: int = 0
    traps: int = 0
    syscalls: int = 0

    def add(self, before: Snapshot, after: Snapshot, faults: int) -> None:
        self.faults += faults
        self.voluntary += after.voluntary - before.voluntary
        self.involuntary += after.involuntary - before.involuntary
        self.user_s += after.user_s - before.user_s
        self.system_s += after.system_s - before.system_s
        for name in EVENTS:
            a, b = after.perf[name], before.perf[name]
            cur = self.perf[name]
            self.perf[name] = (None if a is None or b is None or cur is None
                               else cur + a - b)

    def add_core(self, faults: int, signals: int, traps: int,
                 syscalls: int) -> None:
        self.core_faults += faults
        self.signals += signals
        self.traps += traps
        self.syscalls += syscalls

    def per_fault(self, total: float | int | None) -> float | None:
        if total is None or not self.faults:
            return None
        return total / self.faults

    def per_core_fault(self, total: int) -> float | None:
        return total / self.core_faults if self.core_faults else None


@dataclasses.dataclass(frozen=True)
class Model:
    """The user/kernel transitions one fault of a mechanism implies:
    exceptions (page faults, and the single step's debug trap), signals
    delivered (each ends in an rt_sigreturn system call), other system
    calls on the fault path, and scheduler context switches."""
    mechanism: str
    page_faults: float      # page-fault exceptions (perf page-faults)
    traps: float            # debug exceptions of a single step
    signals: float
    syscalls: float         # besides rt_sigreturn
    switches: float         # scheduler context switches
    path: str               # the sequence, in words

    @property
    def kernel_entries(self) -> float:
        """Exceptions, system calls and rt_sigreturns: each one user to
        kernel and one kernel to user mode transition."""
        return self.page_faults + self.traps + self.signals + self.syscalls


def model(variant: str) -> Model:
    """The transition model of `variant`'s fault path, from what the core
    declares of it (its signal, single step, handler thread)."""
    info = core.variant_info(variant)
    if not info.fault_driven:
        raise ValueError(f"{variant} is not driven by faults")
    per_page = 1 / core.PAGE_ELEMENTS
    if info.signal == "SIGSEGV" and info.granule == 1:
        if info.single_steps:
            return Model(
                "sigsegv-redirect", 1 + per_page, 1, 2, 0, 0,
                "page fault on the handle -> SIGSEGV handler (decode, force, "
                "move the register, set the trap flag) -> rt_sigreturn -> "
                "the read re-executes -> debug trap -> SIGTRAP handler "
                "(register back) -> rt_sigreturn; a first write to a fresh "
                "values page per 512 elements")
        return Model(
            "sigsegv-redirect-essay", 1 + per_page, 0, 1, 0, 0,
            "page fault on the handle -> SIGSEGV handler (decode, force, "
            "move the register) -> rt_sigreturn; a first write to a fresh "
            "values page per 512 elements")
    if info.signal == "SIGSEGV":
        # profiles run at fault-around 1
        if core.mprotect_source(1) == "memfd":
            return Model(
                "sigsegv-mprotect", 2, 0, 1, 2, 0,
                "protection fault -> SIGSEGV handler (compute, pwrite into "
                "the memfd, mprotect) -> rt_sigreturn -> the read faults "
                "again to map the page now readable")
        return Model(
            "sigsegv-mprotect", 1, 0, 1, 2, 0,
            "protection fault -> SIGSEGV handler (compute, pwrite through "
            "/proc/self/mem, which maps the page, mprotect) -> "
            "rt_sigreturn -> the read re-executes")
    if info.signal == "SIGBUS" and "pwrite-page" in info.parts:
        return Model(
            "uffd-minor", 1, 0, 1, 2, 0,
            "missing (or minor) fault on a memfd hole -> SIGBUS handler "
            "(compute, pwrite into the page cache, UFFDIO_CONTINUE maps it) "
            "-> rt_sigreturn")
    if info.signal == "SIGBUS" and info.joint_floor == "sigbus-move":
        # the source pages come from one MADV_POPULATE_WRITE per 16
        # (variant_uffd_move.c's MOVE_PREFAULT), at fault-around 1
        return Model(
            "uffd-move", 1, 0, 1, 2 + 1 / 16, 0,
            "missing-page fault -> SIGBUS handler (compute into a "
            "prefaulted source page, UFFDIO_MOVE, UFFDIO_WRITEPROTECT; "
            "MADV_POPULATE_WRITE once per 16 source pages) -> rt_sigreturn")
    if info.signal == "SIGBUS":
        return Model(
            "uffd-sigbus", 1, 0, 1, 1, 0,
            "missing-page fault -> SIGBUS handler (compute, UFFDIO_COPY) -> "
            "rt_sigreturn")
    return Model(
        "uffd-thread", 1, 0, 0, 3, 2,
        "missing-page fault -> the faulting thread sleeps in the kernel "
        "(context switch) -> the handler thread returns from poll, reads "
        "the event, computes, UFFDIO_COPY wakes the faulting thread -> "
        "the handler thread sleeps in poll again (context switch)")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the switch accounting: a measured count per fault
    beside what the model implies (None: no model figure / not believed)."""
    what: str
    measured: float | None
    model: float | None
    source: str


def rows(account: Account, m: Model,
         status: dict[str, EventStatus]) -> list[Row]:
    """The accounting of one profiled case, per fault."""
    pf = account.per_fault
    out = [
        Row("context switches, voluntary", pf(account.voluntary), None,
            "getrusage"),
        Row("context switches, involuntary", pf(account.involuntary), None,
            "getrusage"),
        Row("context switches, all", pf(account.voluntary +
                                        account.involuntary),
            m.switches, "getrusage"),
    ]
    for name in EVENTS:
        st = status[name]
        value = account.perf.get(name)
        source = f"perf {name}: " + (
            f"{st.mode}, {st.status}" if st.believed else st.status)
        expect = {"page-faults": m.page_faults, "context-switches":
                  m.switches}.get(name)
        out.append(Row(f"perf {name}",
                       pf(value) if st.believed else None, expect, source))
    cf = account.per_core_fault
    out += [
        Row("signals delivered", cf(account.signals), m.signals,
            "core, profiled runs (handler entries)"),
        Row("of which single-step traps", cf(account.traps), m.traps,
            "core, profiled runs"),
        Row("system calls on the fault path", cf(account.syscalls),
            m.syscalls, "core, profiled runs (pwrite, mprotect, ioctl, "
            "poll, read)"),
        Row("rt_sigreturn", cf(account.signals), m.signals,
            "one per signal (inferred)"),
        Row("user time, us", pf(account.user_s * 1e6), None, "getrusage"),
        Row("system time, us", pf(account.system_s * 1e6), None,
            "getrusage"),
    ]
    return out


def agrees(row: Row, tolerance: float = 0.25) -> bool | None:
    """The measured count within `tolerance` per fault of the model
    (None: nothing to compare)."""
    if row.measured is None or row.model is None:
        return None
    return abs(row.measured - row.model) <= tolerance
