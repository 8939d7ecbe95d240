"""How the report and the terminal print numbers: three significant
digits without exponents (0.694, 26.3, 13,500), a missing value as "-"."""
from __future__ import annotations

import math

import pandas as pd

SIG = "sig"          # the format name for three significant digits
MISSING = "-"


def sig(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, thousands separated, never
    in exponent form."""
    if value != value:
        return MISSING
    if value == 0 or math.isinf(value):
        return format(value, "g")
    value = float(f"{value:.{digits}g}")          # rounded once, here
    places = digits - 1 - math.floor(math.log10(abs(value)))
    if places > 0:
        return f"{value:.{places}f}"
    return f"{value:,.0f}"


def duration_ns(ns: float) -> str:
    """A time given in ns, to 3 significant digits in ns, us or ms:
    '5.73 ns', '9.01 us', '1.2 ms'."""
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} us"
    return f"{ns:.3g} ns"


def number(value: object, fmt: str = SIG) -> str:
    """One table cell as printed: floats with `fmt` (SIG or a format
    spec), anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value != value:
        return MISSING
    return sig(value) if fmt == SIG else format(value, fmt)


def render(table: pd.DataFrame, fmt: str = SIG) -> pd.DataFrame:
    """The table with every cell as the string it is printed as."""
    return table.map(lambda v: number(v, fmt)).astype(str)


def right_aligned(table: pd.DataFrame) -> list[bool]:
    """Which columns are right-aligned: the numbers."""
    return [pd.api.types.is_numeric_dtype(table[c]) and
            not pd.api.types.is_bool_dtype(table[c]) for c in table.columns]


def plain_table(table: pd.DataFrame, fmt: str = SIG) -> str:
    """The table for a terminal: columns two spaces apart, numbers
    right-aligned, text left."""
    cells = [list(map(str, table.columns))] + \
        render(table, fmt).values.tolist()
    widths = [max(len(row[k]) for row in cells)
              for k in range(len(table.columns))]
    right = right_aligned(table)
    return "\n".join(
        "  ".join(c.rjust(w) if r else c.ljust(w)
                  for c, w, r in zip(row, widths, right)).rstrip()
        for row in cells)
