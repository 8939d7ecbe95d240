"""Python-level cases: what a case reads from plain Python, and how.

A C variant is read through its view (``LazyArray.view()``) inside a view
session; a Python thunk kind through its array's getter.  Both are reset
between timed passes (untimed) and read by the same loop
(:func:`lazybench._pyworkloads.run_pass`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any, Callable, ContextManager, Sequence

from lazybench import _array as core
from lazybench import _pythunks as pythunks
from lazybench import _pyworkloads as pyworkloads
from lazybench import _views as views
from lazybench._case import Case

KINDS = pythunks.KINDS


def is_python_kind(variant: str) -> bool:
    return variant in KINDS


def supports(variant: str, generator: str) -> core.Availability:
    """Python-level cases need a Python version of the generator too (the
    checksum of every variant is compared with the C eager one)."""
    if generator not in pythunks.GENERATORS:
        return core.Availability(variant, False,
                                 f"generator {generator} has no Python "
                                 "version")
    if is_python_kind(variant):
        return core.Availability(variant, True, "")
    usable = core.viewable(variant)
    if not usable.available:
        return usable
    return core.supports(variant, generator)


class Target:
    """One array read from Python: `get` is i -> element."""

    def __init__(self, variant: str, n: int, generator: str, seed: int,
                 spin: int = 100) -> None:
        self.variant = variant
        self.last_ns = 0                 # of the last run()
        self._thunks: pythunks.ThunkArray | None = None
        self._array: core.LazyArray | None = None
        self._view: Any = None
        if is_python_kind(variant):
            self._thunks = pythunks.ThunkArray(variant, n, generator, seed)
            self.get: Callable[[int], int] = self._thunks.get
        else:
            self._array = core.LazyArray(variant, n, generator, spin, seed)
            self._view = self._array.view()
            self.get = (self._view.reader()
                        if isinstance(self._view, views.ElementView)
                        else self._view.__getitem__)

    def reset(self) -> None:
        if self._thunks is not None:
            self._thunks.reset()
        elif self._array is not None:
            self._array.reset()

    def session(self) -> ContextManager[None]:
        if self._array is None:
            return contextlib.nullcontext()
        return views.session(self._array)

    def run(self, idx: Sequence[int]) -> int:
        """One pass: its checksum.  `last_ns` gets its time, taken as
        time() takes it (the loop alone, inside the session)."""
        with self.session():
            t0 = time.perf_counter_ns()
            checksum = pyworkloads.run_pass(self.get, idx)
            self.last_ns = time.perf_counter_ns() - t0
        return checksum

    def time(self, idx: Sequence[int], loops: int, warm: bool) -> int:
        """Nanoseconds of `loops` passes, each on a fresh array unless
        `warm` (then over evaluated elements)."""
        total = 0
        for _ in range(loops):
            if not warm:
                self.reset()
            with self.session():
                total += pyworkloads.time_pass(self.get, idx)
        return total

    def counters(self) -> dict[str, int]:
        """The core's counters; for a thunk kind, its evaluations."""
        if self._array is not None:
            return dataclasses.asdict(self._array.counters())
        assert self._thunks is not None
        out = {f.name: 0 for f in dataclasses.fields(core.Counters)}
        out.update(elements_materialised=self._thunks.evaluations,
                   generator_calls=self._thunks.evaluations)
        return out

    def clear_counters(self) -> None:
        if self._array is not None:
            self._array.clear_counters()
        elif self._thunks is not None:
            self._thunks.evaluations = 0

    def release(self) -> None:
        if self._array is not None:
            self._array.release()
        self._array = self._view = self._thunks = None


class PySubject:
    """A Python-level case (see :class:`lazybench._case.Subject`): the
    Python loop over the case's indices."""

    def __init__(self, case: Case) -> None:
        self.warm = case.warm
        # the indices first: build_ns times building the array alone
        self.idx = pyworkloads.indices(case.workload, case.n, case.fraction,
                                       case.seed, core.PAGE_ELEMENTS)
        t0 = time.perf_counter_ns()
        self.target = Target(case.variant, case.n, case.generator,
                             case.seed, case.spin)
        self.build_ns = time.perf_counter_ns() - t0
        self.accesses = len(self.idx)
        self.touched_pages = len({i // core.PAGE_ELEMENTS for i in self.idx})
        self.pass_ns = 0

    def run_pass(self) -> int:
        checksum = self.target.run(self.idx)
        self.pass_ns = self.target.last_ns
        return checksum

    def time(self, loops: int) -> int:
        return self.target.time(self.idx, loops, self.warm)

    def counters(self) -> dict[str, int]:
        return self.target.counters()

    def clear_counters(self) -> None:
        self.target.clear_counters()

    def release(self) -> None:
        self.target.release()

    @staticmethod
    def preflight(case: Case) -> None:
        """Nothing to check before a run: the Python level's size is
        the profile's, within what the C cases already checked."""
