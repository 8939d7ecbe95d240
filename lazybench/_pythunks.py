"""Pure-Python lazy arrays: what a Python user writes without the C core.

The same generators as the core's, in Python: ``hash`` (splitmix64's
finaliser of the index) and ``recurrence`` (element i a function of
element i-1); values are the same 64-bit numbers, so checksums match the
C variants'.  Three kinds of per-element thunk:

- ``py-closure``: a memoising thunk object, a closure and a cached value;
- ``py-cached-property``: one object per element whose value is a
  ``functools.cached_property``;
- ``py-lazy-object-proxy``: one ``lazy_object_proxy.Proxy`` per element.

``recurrence`` read out of order would recurse once per unevaluated
predecessor (Python's recursion limit is 1000), so a read first walks back
to the nearest evaluated element and then evaluates forwards, iteratively.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import lazy_object_proxy

from lazybench._core import lib

MASK = (1 << 64) - 1
# splitmix64's increment, as the core's generators and workloads use it
GOLDEN = int(lib.lb_golden)
GENERATORS: tuple[str, ...] = ("hash", "recurrence")
KINDS: tuple[str, ...] = ("py-closure", "py-cached-property",
                          "py-lazy-object-proxy")


def mix64(x: int) -> int:
    """splitmix64's finaliser, as the core's lb_mix64."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def hash_value(i: int, seed: int) -> int:
    return mix64((i + seed * GOLDEN) & MASK)


class _Thunk:
    """A memoising thunk: a closure until forced, then its value."""

    __slots__ = ("fn", "value", "done")

    def __init__(self, fn: Callable[[], int]) -> None:
        self.fn = fn
        self.value = 0
        self.done = False

    def force(self) -> int:
        if not self.done:
            self.value = self.fn()
            self.done = True
        return self.value


class _Element:
    """One element whose value is a cached_property."""

    __slots__ = ("compute", "i", "__dict__")

    def __init__(self, compute: Callable[[int], int], i: int) -> None:
        self.compute = compute
        self.i = i

    @functools.cached_property
    def value(self) -> int:
        return self.compute(self.i)


class ThunkArray:
    """n elements of `generator`, each behind a thunk of `kind`."""

    def __init__(self, kind: str, n: int, generator: str = "hash",
                 seed: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown Python thunk kind {kind!r} "
                             f"(known: {', '.join(KINDS)})")
        if generator not in GENERATORS:
            raise ValueError(f"generator {generator!r} has no Python "
                             f"version (Python has {', '.join(GENERATORS)})")
        if n < 1:
            raise ValueError("a thunk array needs at least one element")
        self.kind, self.n, self.generator, self.seed = kind, n, generator, seed
        self.evaluations = 0
        self._evaluated: list[int] = []
        self._items: list[Any] = [self._make(i) for i in range(n)]
        self._direct = self._get_direct()
        # i -> value, for timed loops (no bounds check)
        self.get: Callable[[int], int] = (
            self._get_recurrence if generator == "recurrence"
            else self._direct)

    def _compute(self, i: int) -> int:
        self.evaluations += 1
        self._evaluated.append(i)
        if self.generator == "hash":
            return hash_value(i, self.seed)
        if i == 0:
            return mix64((self.seed + 1) & MASK)
        # the predecessor is evaluated first (see _get_recurrence)
        return mix64((int(self._direct(i - 1)) + i) & MASK)

    def _make(self, i: int) -> Any:
        if self.kind == "py-closure":
            return _Thunk(lambda: self._compute(i))
        if self.kind == "py-cached-property":
            return _Element(self._compute, i)
        return lazy_object_proxy.Proxy(lambda: self._compute(i))

    def _get_direct(self) -> Callable[[int], int]:
        items = self._items
        if self.kind == "py-closure":
            return lambda i: items[i].force()
        if self.kind == "py-cached-property":
            return lambda i: items[i].value
        return lambda i: items[i].__wrapped__

    def is_evaluated(self, i: int) -> bool:
        item = self._items[i]
        if self.kind == "py-closure":
            return bool(item.done)
        if self.kind == "py-cached-property":
            return "value" in item.__dict__
        return bool(item.__resolved__)

    def _get_recurrence(self, i: int) -> int:
        if not self.is_evaluated(i):
            j = i
            while j > 0 and not self.is_evaluated(j - 1):
                j -= 1
            for k in range(j, i):
                self._direct(k)
        return int(self._direct(i))

    def reset(self) -> None:
        """Back to unevaluated: new thunks for the evaluated elements (the
        getters hold the list, which is updated in place)."""
        for i in self._evaluated:
            self._items[i] = self._make(i)
        self._evaluated = []

    def __len__(self) -> int:
        return self.n
