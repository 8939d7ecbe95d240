"""Views: the elements of a C lazy array, read from plain Python.

``LazyArray.view()`` returns, for a variant with flat memory (eager,
sigsegv-mprotect, the uffd variants), a read-only ``memoryview`` of int64
(format ``'q'``) over the array's own memory.  ``v[i]``, ``sum(v[a:b])``
or ``numpy.frombuffer(v, dtype=numpy.int64)[a:b].sum()`` read that memory
directly, and the first read of a lazy page takes the variant's fault path
exactly as the C workloads do.

Variants without flat memory (sigsegv-redirect reaches elements through
protected handles, swcheck through a state check, eager-handles through a
list of addresses) return an :class:`ElementView` instead: a read-only
sequence whose reads go through the variant's own access path in the core,
one element per call.

Safety: a view keeps the C array's memory alive (it holds the array's
owner), so no buffer ever points at freed memory.  Releasing the array
releases the views it handed out; using one afterwards raises Python's
``ValueError`` (memoryview) or :class:`~lazybench._array.ArrayStateError`
(ElementView).  A buffer exported further from a memoryview (a NumPy array
made from it), and a function from :meth:`ElementView.reader`, cannot be
revoked: they keep the memory alive and readable until they are dropped.
A read in flight on another thread when the array is released completes
first (it holds the owner too).

In a child process made by ``fork()``, views of the arrays it inherited
are refused like the arrays themselves (ArrayStateError naming fork); a
memoryview taken before the fork is plain memory and cannot refuse, so
reading the lazy memory behind it ends the child with SIGSEGV (an eager
array's memory is the child's private copy and still reads its values).

Faults taken from Python have no call to return an error from: a lazy
evaluation that fails inside a view read (nesting too deep, out of
memory) prints its reason and ends the process with a crash report.  Use
``LazyArray.get``/``run`` where such errors must be recoverable.

Signal stacks: nested lazy evaluations (a generator reading other lazy
elements, such as ``recurrence``) take one signal frame each, a few KiB
with the CPU's vector state.  Inside :func:`session` the thread takes
faults on the core's own signal stack (sized for ``core.MAX_NESTING``
levels) and, for uffd-thread, with its CPU placement.  An
:class:`ElementView` read is a C call that switches to that stack by
itself.  A memoryview read outside a session faults on whatever signal
stack the thread has: the thread's own stack when none was set up, or a
small alternate stack installed by someone else (``faulthandler.enable()``,
``python -X faulthandler`` and pytest install one of a few KiB on the
thread that enables it).  There a fault checks the room left before
nesting deeper and, when another level would not fit, prints a message
naming the cure (read inside ``views.session(arr)``) and ends the process
with a crash report, instead of overflowing that stack, which the kernel
would answer with a silent SIGSEGV.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterator, Protocol, Union, overload

from lazybench._core import ffi, lib
from lazybench._errors import ArrayStateError, check


class LazyArray(Protocol):
    """What a view needs of :class:`lazybench._array.LazyArray`."""

    variant: str
    n: int

    def _hold(self) -> Any: ...


class ElementView:
    """Read-only sequence of int for variants without flat memory."""

    def __init__(self, array: LazyArray, ptr: Any, owner: Any) -> None:
        self._owner = owner          # keeps the C array alive; owner.ptr
        self._variant = array.variant
        self._n = array.n
        self.__weakref__: Any

    def invalidate(self) -> None:
        self._owner = None

    def _hold(self) -> Any:
        """The array's owner, held by a read for its duration."""
        owner = self._owner
        if owner is None:
            raise ArrayStateError(f"view of a released {self._variant} array")
        rc = lib.lb_check(owner.ptr)       # inherited across fork()?
        if rc != lib.LB_OK:
            check(rc, f"{self._variant} view")
        return owner

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[int, list[int]]:
        owner = self._hold()
        ptr = owner.ptr
        if isinstance(i, slice):
            return [int(lib.lb_view_read(ptr, k))
                    for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"index {i} out of range for {self._n} elements")
        return int(lib.lb_view_read(ptr, i))

    def reader(self) -> Any:
        """A function i -> element with no bounds check, for timed loops.
        It keeps the array's memory alive until it is dropped."""
        owner = self._hold()
        ptr = owner.ptr
        read = lib.lb_view_read
        return lambda i, _keep=owner: read(ptr, i)

    def __iter__(self) -> Iterator[int]:
        owner = self._hold()
        ptr = owner.ptr
        for k in range(self._n):
            yield int(lib.lb_view_read(ptr, k))


View = Union[memoryview, ElementView]


def open_view(array: LazyArray, ptr: Any, owner: Any) -> View:
    address = lib.lb_view_address(ptr)
    if address == ffi.NULL:
        return ElementView(array, ptr, owner)
    # The buffer keeps the cdata alive, and the cdata's (empty) destructor
    # keeps the owner alive: the memory lives as long as any buffer on it.
    keep = ffi.gc(ffi.cast("char *", address), lambda _p, o=owner: None)
    raw = ffi.buffer(keep, array.n * 8)
    return memoryview(raw).toreadonly().cast("q")


def weak(view: View) -> "weakref.ref[Any]":
    return weakref.ref(view)


def invalidate(view: View) -> None:
    """Make further use of the view an error, where Python allows it."""
    if isinstance(view, memoryview):
        with contextlib.suppress(BufferError):   # exported further: stays
            view.release()
    else:
        view.invalidate()


@contextlib.contextmanager
def session(array: LazyArray) -> Iterator[None]:
    """Prepare this thread to take the array's faults from Python reads:
    the core's signal stack, decoder and CPU placement (see module doc)."""
    owner = array._hold()            # held until the session ends
    check(lib.lb_view_enter(owner.ptr), f"{array.variant} view session")
    try:
        yield
    finally:
        lib.lb_view_leave(owner.ptr)
