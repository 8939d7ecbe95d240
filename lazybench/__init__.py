"""lazybench: what lazy evaluation costs when memory protection does the checking.

The public API is what this module exports; every module is private by
name, as in pyperf.  Names are imported on first use, so that a pyperf
worker, which needs only the core and the harness, does not load pandas
and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "LazyArray": "lazybench._array",
    "LazyBenchError": "lazybench._errors",
    "UnavailableError": "lazybench._errors",
    "LazyEvaluationError": "lazybench._errors",
    "ArrayStateError": "lazybench._errors",
    "session": "lazybench._views",
    "Selection": "lazybench._suite",
    "Plan": "lazybench._suite",
    "plan": "lazybench._suite",
    "run": "lazybench._pipeline",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from lazybench._array import LazyArray
    from lazybench._errors import (ArrayStateError, LazyBenchError,
                                  LazyEvaluationError, UnavailableError)
    from lazybench._pipeline import run
    from lazybench._suite import Plan, Selection, plan
    from lazybench._views import session


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lazybench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
