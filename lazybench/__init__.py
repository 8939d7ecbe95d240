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
    "LazyArray": "lazybench.core",
    "LazyBenchError": "lazybench.errors",
    "UnavailableError": "lazybench.errors",
    "LazyEvaluationError": "lazybench.errors",
    "ArrayStateError": "lazybench.errors",
    "session": "lazybench.views",
    "Selection": "lazybench.suite",
    "Plan": "lazybench.suite",
    "plan": "lazybench.suite",
    "run": "lazybench.pipeline",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from lazybench.core import LazyArray
    from lazybench.errors import (ArrayStateError, LazyBenchError,
                                  LazyEvaluationError, UnavailableError)
    from lazybench.pipeline import run
    from lazybench.suite import Plan, Selection, plan
    from lazybench.views import session


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lazybench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
