"""The errors lazybench raises, and the one place C status codes become
them.  Every message is one line the user can act on."""
from __future__ import annotations

from lazybench._core import ffi, lib


class LazyBenchError(Exception):
    """A failure the user can act on; its message is one line."""


class UnavailableError(LazyBenchError):
    """The variant cannot run on this kernel or machine."""


class LazyEvaluationError(LazyBenchError):
    """A lazy evaluation failed (nesting too deep, cyclic dependency)."""


class ArrayStateError(LazyBenchError):
    """The array was released, the core's signal handler was displaced, or
    the array was inherited across fork() (a child may only release it)."""


_ERRORS: dict[int, type[LazyBenchError]] = {
    lib.LB_EUNAVAIL: UnavailableError,
    lib.LB_ELAZY: LazyEvaluationError,
    lib.LB_ESTATE: ArrayStateError,
}


def check(rc: int, what: str) -> None:
    """Raise for a C status other than LB_OK, with the core's message:
    ValueError for bad input, else the matching LazyBenchError."""
    if rc == lib.LB_OK:
        return
    message = ffi.string(lib.lb_last_error()).decode(errors="replace")
    if rc == lib.LB_EINVAL:
        raise ValueError(f"{what}: {message}")
    raise _ERRORS.get(rc, LazyBenchError)(f"{what}: {message}")
