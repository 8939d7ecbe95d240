"""The report's sections: what a section shows (:class:`Part`) and the
registry (:data:`SECTIONS`, filled by :func:`section` in the order the
modules that hold sections register them: lazybench._report's own, then
lazybench._sweepreport's)."""
from __future__ import annotations

import dataclasses
from typing import Callable

import pandas as pd

from lazybench import _format as fmt
from lazybench._frames import Frames


@dataclasses.dataclass(frozen=True)
class Part:
    """What a section shows: a paragraph, tables, and a paragraph after
    them.  Numbers are printed with `floatfmt` (a format spec, or
    _format.SIG: three significant digits without exponents)."""
    text: str = ""
    tables: tuple[pd.DataFrame, ...] = ()
    after: str = ""
    floatfmt: str = fmt.SIG
    terminal_columns: tuple[str, ...] | None = None   # None: all
    terminal_text: str | None = None                   # None: text


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    build: Callable[[Frames], Part | None]    # None: nothing to show
    terminal: int = 0     # printed after a run, in this order; 0: not


SECTIONS: list[Section] = []


def section(title: str, terminal: int = 0
            ) -> Callable[[Callable[[Frames], Part | None]],
                          Callable[[Frames], Part | None]]:
    """Register a report section: `build(frames)` returns its Part, or
    None when the run has nothing for it.  Sections appear in report.md in
    the order they are registered; those with a `terminal` rank are also
    printed after a run, by rank."""
    def register(build: Callable[[Frames], Part | None]
                 ) -> Callable[[Frames], Part | None]:
        SECTIONS.append(Section(title, build, terminal))
        return build
    return register
