"""Python face of the C core: lazy arrays, their counters, and the floors.

Every variant is driven through the same small C interface (``csrc/lb_api.h``);
this module turns its status codes into exceptions with one-line messages.
"""
from __future__ import annotations

import dataclasses
import signal
from typing import Any, Iterable

from lazybench import _views as views
from lazybench._core import ffi, lib
from lazybench._errors import (ArrayStateError, LazyBenchError,
                              LazyEvaluationError, UnavailableError)
from lazybench._errors import check as _check


def _names(count: int, name_of: Any) -> tuple[str, ...]:
    return tuple(ffi.string(name_of(i)).decode() for i in range(count))


VARIANTS: tuple[str, ...] = _names(lib.lb_variant_count(), lib.lb_variant_name)
GENERATORS: tuple[str, ...] = _names(lib.LB_GEN_COUNT, lib.lb_generator_name)
WORKLOADS: tuple[str, ...] = _names(lib.LB_WL_COUNT, lib.lb_workload_name)
PAGE_ELEMENTS: int = int(lib.lb_page_elements())
MAX_NESTING: int = int(lib.lb_max_nesting())
MAX_ELEMENTS: int = int(lib.lb_max_elements())
MAX_SPIN: int = int(lib.lb_max_spin())
CAPSTONE_VERSION: str = ffi.string(lib.lb_capstone_version()).decode()
COMPILER: str = ffi.string(lib.lb_compiler()).decode()


def uffd_how() -> str | None:
    """How this process's last userfaultfd was opened (the system call with
    UFFD_USER_MODE_ONLY, or /dev/userfaultfd); None if none opened yet."""
    how = lib.lb_uffd_how()
    return None if how == ffi.NULL else ffi.string(how).decode()


def mprotect_source(fault_around: int = 1) -> str:
    """Where a sigsegv-mprotect array created now with `fault_around`
    writes its pages: '/proc/self/mem' (anonymous memory, one page fault a
    fault; fault-around 1) or 'memfd' (larger fault-arounds, a kernel that
    refuses forced writes, or LAZYBENCH_MPROTECT_MEMFD set)."""
    return ffi.string(lib.lb_mprotect_source(fault_around)).decode()


def tsc_hz() -> float | None:
    """The TSC rate measured against CLOCK_MONOTONIC over about 20 ms;
    None where the core cannot read a TSC."""
    hz = float(lib.lb_tsc_hz())
    return hz if hz > 0 else None


def _index(names: tuple[str, ...], name: str, kind: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(f"unknown {kind} {name!r} (choose from "
                         f"{', '.join(names)})") from None


def supports(variant: str, generator: str) -> Availability:
    """Whether `variant` runs `generator` (uffd-thread refuses recurrence)."""
    v = _index(VARIANTS, variant, "variant")
    g = _index(GENERATORS, generator, "generator")
    params = ffi.new("lb_params *", {"n": 1, "generator": g})
    why = ffi.new("char[256]")
    ok = bool(lib.lb_variant_supports(v, params, why, 256))
    return Availability(variant, ok, "" if ok else ffi.string(why).decode())


# lb_params.fault_around for adaptive fault-around, and its largest window.
FAULT_AROUND_AUTO: int = int(lib.LB_FAULT_AROUND_AUTO)
FAULT_AROUND_AUTO_MAX: int = int(lib.LB_FA_AUTO_MAX)


def fault_around_windows(pages: Iterable[int]) -> list[int]:
    """The window adaptive fault-around gives each fault of a stream of
    faulting pages, as if each claimed its whole window (lb_fa_step: the
    rule alone, for tests on synthetic streams)."""
    state = ffi.new("lb_fa_state *")
    return [int(lib.lb_fa_step(state, p)) for p in pages]


def has_fault_around(variant: str) -> bool:
    return bool(lib.lb_variant_has_fault_around(
        _index(VARIANTS, variant, "variant")))


def granule(variant: str) -> int:
    """Elements one fault materialises (a page, or a single element)."""
    return int(lib.lb_variant_granule(_index(VARIANTS, variant, "variant")))


@dataclasses.dataclass(frozen=True)
class Availability:
    variant: str
    available: bool
    reason: str


def availability(variant: str) -> Availability:
    v = _index(VARIANTS, variant, "variant")
    why = ffi.new("char[256]")
    ok = bool(lib.lb_variant_available(v, why, 256))
    return Availability(variant, ok, "" if ok else ffi.string(why).decode())


def viewable(variant: str) -> Availability:
    """Whether user code may read the variant's arrays (views, handles):
    sigsegv-redirect-essay's handles are for the suite's own loops only."""
    why = lib.lb_variant_no_handles(_index(VARIANTS, variant, "variant"))
    if why == ffi.NULL:
        return Availability(variant, True, "")
    return Availability(variant, False, ffi.string(why).decode())


def all_availability() -> list[Availability]:
    return [availability(v) for v in VARIANTS]


@dataclasses.dataclass(frozen=True)
class Counters:
    faults: int
    pages_materialised: int
    elements_materialised: int
    generator_calls: int
    max_nesting: int
    decodes: int
    decode_hits: int
    decode_misses: int
    # pages sigsegv-mprotect closed again to stay within its mapping
    # budget (0 in records written before the counter existed)
    evicted_pages: int = 0


@dataclasses.dataclass(frozen=True)
class RunResult:
    checksum: int
    accesses: int
    elapsed_ns: int


@dataclasses.dataclass(frozen=True)
class Footprint:
    pages: int
    accesses: int


@dataclasses.dataclass(frozen=True)
class Mappings:
    """sigsegv-mprotect's mapping budget: kernel mappings accounted to one
    array's region (0 for other variants), to all such arrays of the
    process, the most that total may reach, and vm.max_map_count."""
    array: int
    total: int
    budget: int
    max_map_count: int


class _Owner:
    """Owns one C array and frees it when the last reference goes: the
    LazyArray holds one, every view of it (see views.py) and every call in
    flight, so the memory outlives any buffer still pointing into it and
    any call another thread is making when the array is released.  (The
    core counts calls in flight too: this keeps the pointer itself valid.)
    """

    def __init__(self, ptr: Any) -> None:
        self.ptr = ptr

    def __del__(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr is not None:
            lib.lb_release(ptr)


class LazyArray:
    """n int64 elements computed by a C generator, reached by one variant.

    Use as a context manager, or call :meth:`release`; a released array
    raises :class:`ArrayStateError` instead of touching freed memory.
    """

    def __init__(self, variant: str, n: int, generator: str = "hash",
                 spin: int = 100, seed: int = 1,
                 fault_around: int = 1) -> None:
        self.variant = variant
        self.generator = generator
        v = _index(VARIANTS, variant, "variant")
        g = _index(GENERATORS, generator, "generator")
        params = ffi.new("lb_params *", {"n": n, "generator": g,
                                         "spin": spin, "seed": seed,
                                         "fault_around": fault_around})
        out = ffi.new("lb_array **")
        _check(lib.lb_create(v, params, out), f"creating a {variant} array")
        self._owner: _Owner | None = _Owner(out[0])
        self._views: list[Any] = []      # weak references to handed-out views
        self.n = n

    def _hold(self) -> _Owner:
        """The owner, for the duration of a call: whoever holds it keeps
        the C array alive even if another thread releases it meanwhile."""
        owner = self._owner
        if owner is None:
            raise ArrayStateError(f"{self.variant} array used after release")
        return owner

    def _call(self, what: str, fn: Any, *args: Any) -> None:
        """fn(ptr, *args), a C call that drops the GIL, holding the owner
        until it returns; a status other than LB_OK raises."""
        owner = self._hold()
        rc = fn(owner.ptr, *args)
        # Dropped before raising, so that a traceback kept by the caller
        # does not keep a released array alive.
        del owner
        _check(rc, what)

    def __len__(self) -> int:
        return self.n

    def __enter__(self) -> "LazyArray":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # Views outlive a dropped array: they hold its owner.  Only an
        # explicit release() revokes them.
        self._owner = None

    def release(self) -> None:
        """Invalidate the views handed out, and free the C array (at once,
        or when the last buffer still exported from a view goes)."""
        self._owner = None
        for ref in getattr(self, "_views", ()):
            view = ref()
            if view is not None:
                views.invalidate(view)
        self._views = []

    def view(self) -> Any:
        """A read-only view of the elements for plain Python code; reading
        it takes the variant's fault path (see :mod:`lazybench._views`)."""
        owner = self._hold()
        _check(lib.lb_check(owner.ptr), f"{self.variant} view")
        usable = viewable(self.variant)
        if not usable.available:
            raise UnavailableError(f"view of {self.variant}: "
                                   f"{usable.reason}")
        view = views.open_view(self, owner.ptr, owner)
        self._views.append(views.weak(view))
        return view

    def handle(self, i: int) -> int:
        """The address C code reads element i through, as an int.

        For sigsegv-redirect it is the element's protected handle (the
        essay's technique); for eager-handles the list entry; for flat
        variants the element's own lazily mapped address.  Dereference it
        only inside :meth:`call` or :func:`lazybench._views.session`: a
        fault on a handle anywhere else is a fatal error with a message.
        Raises :class:`UnavailableError` for variants that give out none
        (swcheck, sigsegv-redirect-essay)."""
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} elements")
        out = ffi.new("uintptr_t *")
        self._call(f"handle of element {i}", lib.lb_handle, i, out)
        return int(out[0])

    def call(self, function: Any, i: int, arg: Any = None) -> int:
        """Call C code ``int64_t function(const void *handle, void *arg)``
        with element i's handle, inside a guarded call: a read the core
        cannot serve safely (a store, an instruction it does not know to
        only read) raises :class:`LazyEvaluationError` naming the
        instruction.  `function` is a cffi function pointer or an address
        (int, e.g. from ctypes); `arg` an address or None."""
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} elements")
        fn = ffi.cast("lb_user_fn", function)
        ptr = ffi.cast("void *", 0 if arg is None else arg)
        out = ffi.new("int64_t *")
        self._call(f"call on element {i}", lib.lb_call, fn, i, ptr, out)
        return int(out[0])

    def reset(self) -> None:
        """Back to unevaluated, with fresh pages (eager keeps its values)."""
        self._call(f"resetting {self.variant}", lib.lb_reset)

    def force(self) -> None:
        self._call(f"forcing {self.variant}", lib.lb_force)

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} elements")
        out = ffi.new("int64_t *")
        self._call(f"reading element {i}", lib.lb_get, i, out)
        return int(out[0])

    @staticmethod
    def _workload(workload: str, fraction: float, seed: int) -> Any:
        k = _index(WORKLOADS, workload, "workload")
        return ffi.new("lb_workload *", {"kind": k, "fraction": fraction,
                                         "seed": seed})

    def run(self, workload: str, fraction: float = 1.0,
            seed: int = 1) -> RunResult:
        w = self._workload(workload, fraction, seed)
        out = ffi.new("lb_result *")
        self._call(f"{self.variant} {workload} workload", lib.lb_run, w, out)
        return RunResult(int(out.checksum), int(out.accesses),
                         int(out.elapsed_ns))

    def bench(self, workload: str, fraction: float, seed: int,
              loops: int, reset: bool = True) -> RunResult:
        """`loops` times: reset (untimed) unless `reset` is false, then run
        the workload (timed in C).  elapsed_ns is the sum over loops of the
        workload alone."""
        w = self._workload(workload, fraction, seed)
        out = ffi.new("lb_result *")
        self._call(f"{self.variant} {workload} benchmark", lib.lb_bench, w,
                   loops, int(reset), out)
        return RunResult(int(out.checksum), int(out.accesses),
                         int(out.elapsed_ns))

    def bench_threads(self, workload: str, fraction: float, seed: int,
                      threads: int, disjoint: bool,
                      loops: int) -> RunResult:
        """`loops` times: reset (untimed), then the workload in `threads`
        threads released together (timed in C: from their release to the
        last one's end).  Each thread reads the whole array (``disjoint``
        false) or its own contiguous slice of pages.  checksum: the sum of
        the threads' checksums of the last loop; accesses: the reads of one
        loop, all threads; elapsed_ns: the summed loop times."""
        w = self._workload(workload, fraction, seed)
        out = ffi.new("lb_result *")
        self._call(f"{self.variant} {workload} benchmark in {threads} "
                   f"threads", lib.lb_bench_threads, w, threads,
                   int(disjoint), loops, out)
        return RunResult(int(out.checksum), int(out.accesses),
                         int(out.elapsed_ns))

    def threads_footprint(self, workload: str, fraction: float, seed: int,
                          threads: int, disjoint: bool) -> Footprint:
        """Distinct pages and reads (all threads) of one loop of
        :meth:`bench_threads`."""
        w = self._workload(workload, fraction, seed)
        pages = ffi.new("int64_t *")
        accesses = ffi.new("int64_t *")
        self._call(f"{workload} footprint in {threads} threads",
                   lib.lb_threads_footprint, w, threads, int(disjoint),
                   pages, accesses)
        return Footprint(int(pages[0]), int(accesses[0]))

    def selftest_form(self, form: int, reg: int, i: int,
                      expected: int = 0) -> int:
        """Read element i with instruction form `form` through register
        `reg` (see enum lb_form in csrc/lb_api.h)."""
        out = ffi.new("int64_t *")
        self._call(f"form {form} register {reg}", lib.lb_selftest_form,
                   form, reg, i, expected, out)
        return int(out[0])

    def footprint(self, workload: str, fraction: float = 1.0,
                  seed: int = 1) -> Footprint:
        w = self._workload(workload, fraction, seed)
        pages = ffi.new("int64_t *")
        accesses = ffi.new("int64_t *")
        self._call(f"{workload} footprint", lib.lb_workload_footprint, w,
                   pages, accesses)
        return Footprint(int(pages[0]), int(accesses[0]))

    def counters(self) -> Counters:
        c = ffi.new("lb_counters *")
        owner = self._hold()
        lib.lb_counters_read(owner.ptr, c)
        del owner
        return Counters(**{f.name: int(getattr(c, f.name))
                           for f in dataclasses.fields(Counters)})

    def clear_counters(self) -> None:
        owner = self._hold()
        lib.lb_counters_clear(owner.ptr)

    def mappings(self) -> Mappings:
        out = ffi.new("int64_t[4]")
        owner = self._hold()
        lib.lb_mappings(owner.ptr, out, out + 1, out + 2, out + 3)
        return Mappings(*(int(x) for x in out))


def _params(n: int, generator: str, spin: int, seed: int,
            fault_around: int = 1) -> Any:
    return ffi.new("lb_params *", {
        "n": n, "generator": _index(GENERATORS, generator, "generator"),
        "spin": spin, "seed": seed, "fault_around": fault_around})


def expected_checksum(n: int, generator: str, workload: str,
                      fraction: float, spin: int = 100, seed: int = 1,
                      threads: int = 1, disjoint: bool = False) -> int:
    """The checksum a run of `workload` on an array of n elements of
    `generator` returns (with `threads`, the sum of the threads' checksums
    of :meth:`LazyArray.bench_threads`), computed from the generator alone,
    without an array.  `seed` is the generator's and the workload's, as a
    suite case uses one seed for both (``LazyArray(..., seed=s)`` read by
    ``run(workload, fraction, s)``).  Recurrence has none:
    :class:`UnavailableError`."""
    w = LazyArray._workload(workload, fraction, seed)
    out = ffi.new("uint64_t *")
    _check(lib.lb_expected(_params(n, generator, spin, seed), w, threads,
                           int(disjoint), out),
           f"expected checksum of {generator} {workload}")
    return int(out[0])


def build_ns(variant: str, n: int, generator: str = "hash", spin: int = 100,
             seed: int = 1, fault_around: int = 1) -> int:
    """Nanoseconds creating one array takes (eager computes every element
    then); the array is released after, untimed."""
    v = _index(VARIANTS, variant, "variant")
    out = ffi.new("int64_t *")
    _check(lib.lb_build_ns(v, _params(n, generator, spin, seed,
                                      fault_around), out),
           f"building a {variant} array")
    return int(out[0])


# The floors, as the core's table lists them (csrc/floors.c): name ->
# description, in the order they are measured and reported.
_FLOOR_NAMES: tuple[str, ...] = _names(lib.lb_floor_count(), lib.lb_floor_name)
FLOORS: dict[str, str] = dict(zip(
    _FLOOR_NAMES, _names(lib.lb_floor_count(), lib.lb_floor_what)))


def floor_available(name: str) -> bool:
    """Floors of a kernel feature that may be refused (userfaultfd)."""
    why = ffi.new("char[256]")
    return bool(lib.lb_floor_available(_index(_FLOOR_NAMES, name, "floor"),
                                       why, 256))


def floor_ns(name: str, iterations: int) -> int:
    """Total nanoseconds of `iterations` operations of floor `name`."""
    ns = int(lib.lb_floor_run(_index(_FLOOR_NAMES, name, "floor"),
                              iterations))
    if ns < 0:
        _check(ns, f"floor {name}")
    return ns


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    """What the core declares about a variant, next to its code: elements
    per fault, whether it honours fault-around, whether it is a base for
    ratios (computes everything before the workload), the floors its
    fault path is made of, in order, and the floor that times its signal
    and installation together ("" if none)."""
    name: str
    granule: int
    has_fault_around: bool
    base: bool
    parts: tuple[str, ...]
    joint_floor: str
    # how its faults are taken (the profile): the signal ("" if none),
    # whether faults drive it at all, whether each is single-stepped
    signal: str = ""
    fault_driven: bool = False
    single_steps: bool = False

    @property
    def page_mechanism(self) -> bool:
        """A lazy page: faults drive it and each materialises a page."""
        return self.fault_driven and not self.base and \
            self.granule == PAGE_ELEMENTS


def variant_info(name: str) -> VariantInfo:
    v = _index(VARIANTS, name, "variant")
    parts = []
    while (part := lib.lb_variant_part(v, len(parts))) != ffi.NULL:
        parts.append(ffi.string(part).decode())
    joint = lib.lb_variant_joint_floor(v)
    return VariantInfo(
        name=name, granule=int(lib.lb_variant_granule(v)),
        has_fault_around=bool(lib.lb_variant_has_fault_around(v)),
        base=bool(lib.lb_variant_base(v)), parts=tuple(parts),
        joint_floor="" if joint == ffi.NULL else ffi.string(joint).decode(),
        signal=_SIGNALS.get(int(lib.lb_variant_signal(v)), ""),
        fault_driven=bool(lib.lb_variant_fault_driven(v)),
        single_steps=bool(lib.lb_variant_single_steps(v)))


_SIGNALS = {int(signal.SIGSEGV): "SIGSEGV", int(signal.SIGBUS): "SIGBUS"}
