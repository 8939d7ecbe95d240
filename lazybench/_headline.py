"""The report's headline: for each mechanism, what one lazily computed
page and one element cost on a reference case, on the first pass, on a
warm pass and read from Python, in ns and as multiples of the bare SIGSEGV
round trip and of eager; then one generated sentence per mechanism.

Every figure is one cell of results.csv (the row is named by variant,
level, warm and the reference case), or one row of floors.csv; nothing is
averaged.  The sentences only compare figures in words ("costs least")."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pandas as pd

from lazybench import _array as core
from lazybench._case import format_fraction
from lazybench._families import FAMILIES, family_of, known_variants
from lazybench._format import sig
from lazybench._frames import floor_lookup
from lazybench._suite import COMPARISON_ONLY

SIGNAL_FLOOR = "sigsegv-roundtrip"
BASE = "eager"
# The reference case, where a run has it: one page is computed whole.
PREFERRED = {"generator": "hash", "workload": "seq"}
# headline column: (which row, results.csv column), in order
SOURCES: dict[str, tuple[str, str]] = {
    "page_ns": ("c", "ns_per_touched_page"),
    "page_x_sig": ("c", "page_over_sigsegv_floor"),
    "elem_ns": ("c", "ns_per_touched_element"),
    "x_eager": ("c", "x_eager"),
    "warm_ns": ("warm", "ns_per_touched_element"),
    "warm_x": ("warm", "x_eager"),
    "py_ns": ("python", "ns_per_touched_element"),
    "py_x": ("python", "x_eager"),
}
COLUMNS = ("mechanism", "variant", *SOURCES)
ROWS = {"c": "the first pass in C", "warm": "the warm pass in C",
        "python": "the first pass read from Python"}


def legend() -> str:
    """What each headline column is: which row, which results.csv
    column."""
    return "; ".join(f"{col} = {source} of {ROWS[which]}"
                     for col, (which, source) in SOURCES.items())

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Reference:
    """The case the headline reads, at one level."""
    level: str
    generator: str
    workload: str
    fraction: float

    def describe(self) -> str:
        return (f"{self.generator} generator, {self.workload} workload, "
                f"{format_fraction(self.fraction)} touched")


def reference(cases: pd.DataFrame, level: str) -> Reference | None:
    """The preferred generator and workload where the level has them
    (otherwise the first run), at the largest fraction; first passes at
    fault-around 1."""
    df = cases[(cases.level == level) & ~cases.warm &
               (cases.fault_around == 1)] if not cases.empty else cases
    if df.empty:
        return None
    chosen: dict[str, str] = {}
    for key, want in PREFERRED.items():
        have = list(dict.fromkeys(df[key]))
        chosen[key] = want if want in have else have[0]
        df = df[df[key] == chosen[key]]
    return Reference(level, chosen["generator"], chosen["workload"],
                     float(df.fraction.max()))


def row_of(cases: pd.DataFrame, variant: str, ref: Reference | None,
           warm: bool = False) -> Row | None:
    """The one results.csv row of `variant` on `ref`, or None; two rows
    for one case raise."""
    if ref is None or cases.empty:
        return None
    m = cases[(cases.variant == variant) & (cases.level == ref.level) &
              (cases.generator == ref.generator) &
              (cases.workload == ref.workload) &
              (cases.fraction == ref.fraction) & (cases.warm == warm) &
              (cases.fault_around == 1)]
    if len(m) > 1:
        raise ValueError(f"{len(m)} results rows for {variant} on "
                         f"{ref.describe()} ({ref.level} level)")
    return m.iloc[0].to_dict() if len(m) else None


@dataclasses.dataclass(frozen=True)
class Entry:
    """A variant's three rows on the reference cases."""
    variant: str
    c: Row | None
    warm: Row | None
    python: Row | None

    def get(self, which: str, column: str) -> float:
        row = getattr(self, which)
        return float(row[column]) if row is not None else float("nan")


@dataclasses.dataclass(frozen=True)
class Headline:
    c_ref: Reference | None
    python_ref: Reference | None
    entries: dict[str, Entry]
    signal_floor_ns: float
    table: pd.DataFrame
    sentences: list[str]


def _variants(cases: pd.DataFrame) -> list[str]:
    present = set(cases.variant) - COMPARISON_ONLY
    known = [v for v in known_variants() if v in present]
    return known + sorted(present - set(known))


def build(cases: pd.DataFrame, floors: pd.DataFrame) -> Headline | None:
    c_ref, py_ref = reference(cases, "c"), reference(cases, "python")
    if c_ref is None and py_ref is None:
        return None
    entries = {}
    for v in _variants(cases):
        e = Entry(v, row_of(cases, v, c_ref), row_of(cases, v, c_ref, True),
                  row_of(cases, v, py_ref))
        if e.c is not None or e.python is not None:
            entries[v] = e
    rows = []
    for v, e in entries.items():
        row: dict[str, Any] = {"mechanism": family_of(v).key, "variant": v}
        for col, (which, source) in SOURCES.items():
            row[col] = e.get(which, source)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    # a column no row has (no warm twin, no Python-level case) is left out
    table = table[[c for c in COLUMNS
                   if c not in SOURCES or table[c].notna().any()]]
    floor = floor_lookup(floors)
    head = Headline(c_ref, py_ref, entries, floor(SIGNAL_FLOOR), table, [])
    sentences = [s for fam in FAMILIES
                 if (say := SENTENCES.get(fam.key)) is not None
                 and (s := say(head)) is not None]
    fastest = _fastest_page(head, floor)
    if fastest is not None:
        sentences.insert(0, fastest)
    return dataclasses.replace(head, sentences=sentences)


# -- sentences, one per mechanism ----------------------------------------

def _ns(value: float) -> str:
    return f"{sig(value)} ns"


def _x(value: float) -> str:
    return f"{sig(value)} ×"


def _c(head: Headline, family: str) -> list[Entry]:
    return [e for e in head.entries.values()
            if e.c is not None and family_of(e.variant).key == family]


def _eager(head: Headline) -> str | None:
    e = head.entries.get(BASE)
    if e is None or e.c is None:
        return None
    text = (f"eager computes all {int(e.c['n']):,} elements before the first "
            f"read ({sig(e.get('c', 'build_ms'))} ms, outside the timed "
            f"pass), then reads one in {_ns(e.get('c', 'ns_per_touched_element'))}")
    h = head.entries.get("eager-handles")
    if h is not None and h.c is not None:
        text += (f"; through a handle table (eager-handles) in "
                 f"{_ns(h.get('c', 'ns_per_touched_element'))}")
    return text + "."


def _swcheck(head: Headline) -> str | None:
    found = _c(head, "swcheck")
    if not found:
        return None
    e = found[0]
    warm = e.get("warm", "x_eager")
    text = (f"{e.variant} tests a flag on every access: "
            f"{_ns(e.get('c', 'ns_per_touched_element'))} per element on the "
            f"first pass ({_x(e.get('c', 'x_eager'))} eager)")
    if warm == warm:
        text += (f", {_ns(e.get('warm', 'ns_per_touched_element'))} once "
                 f"evaluated ({_x(warm)} eager)")
    return text + "."


def _mprotect(head: Headline) -> str | None:
    found = _c(head, "mprotect")
    if not found:
        return None
    e = found[0]
    assert e.c is not None
    text = (f"{e.variant} takes one fault per page ({int(e.c['faults']):,} "
            f"faults for {int(e.c['touched_pages']):,} pages): "
            f"{_ns(e.get('c', 'ns_per_touched_page'))} per page, "
            f"{_x(e.get('c', 'page_over_sigsegv_floor'))} the bare SIGSEGV "
            f"round trip ({_ns(head.signal_floor_ns)})")
    warm = e.get("warm", "x_eager")
    if warm == warm:
        text += f"; an opened page reads at {_x(warm)} eager"
    return text + "."


def _redirect(head: Headline) -> str | None:
    found = {e.variant: e for e in _c(head, "redirect")}
    e = found.get("sigsegv-redirect") or next(iter(found.values()), None)
    if e is None:
        return None
    assert e.c is not None
    text = (f"{e.variant} faults on every access through a handle: "
            f"{_ns(e.get('c', 'ns_per_touched_element'))} per element, "
            f"{_x(e.get('c', 'x_eager'))} eager ({int(e.c['faults']):,} "
            f"faults, each {_x(e.get('c', 'fault_over_sigsegv_floor'))} "
            "the bare SIGSEGV round trip)")
    if e.warm is not None:
        text += (f"; a warm pass still takes {int(e.warm['faults']):,} "
                 f"faults ({_ns(e.get('warm', 'ns_per_touched_element'))} "
                 "per element)")
    heal = found.get("sigsegv-redirect-heal")
    if heal is not None and heal.warm is not None and heal is not e:
        text += (f", while {heal.variant} heals each handle once evaluated: "
                 f"{int(heal.warm['faults']):,} faults warm, "
                 f"{_x(heal.get('warm', 'x_eager'))} eager")
    return text + "."


def _uffd(head: Headline) -> str | None:
    found = sorted(_c(head, "uffd"),
                   key=lambda e: e.get("c", "ns_per_touched_page"))
    if not found:
        return None
    low = found[0]
    text = (f"{low.variant} costs least of the userfaultfd variants: "
            f"{_ns(low.get('c', 'ns_per_touched_page'))} per page, "
            f"{_x(low.get('c', 'page_over_sigsegv_floor'))} the bare SIGSEGV "
            "round trip")
    if len(found) > 1:
        high = found[-1]
        text += (f"; {high.variant} most, "
                 f"{_ns(high.get('c', 'ns_per_touched_page'))}")
    mp = head.entries.get("sigsegv-mprotect")
    if mp is not None and mp.c is not None:
        text += (f" (sigsegv-mprotect: "
                 f"{_ns(mp.get('c', 'ns_per_touched_page'))})")
    return text + "."


def _fastest_page(head: Headline,
                  floor: Callable[[str], float]) -> str | None:
    """The fastest lazy page on this machine: the page mechanism with the
    least time per page on the reference case, against its least possible
    cost (its joint floor plus the page's computation) where it has one."""
    pages = [e for e in head.entries.values() if e.c is not None
             and core.variant_info(e.variant).page_mechanism]
    if not pages:
        return None
    best = min(pages, key=lambda e: e.get("c", "ns_per_touched_page"))
    per_page = best.get("c", "ns_per_touched_page")
    text = (f"The fastest lazy page here is {best.variant}'s: "
            f"{_ns(per_page)} per page")
    joint = core.variant_info(best.variant).joint_floor
    least = floor(joint) + floor("page-compute") if joint else float("nan")
    if least == least:
        text += (f", {_x(per_page / least)} the least it can cost "
                 f"({joint} + page-compute, {_ns(least)})")
    others = sorted((e for e in pages if e is not best),
                    key=lambda e: e.get("c", "ns_per_touched_page"))
    if others:
        text += "; then " + ", ".join(
            f"{e.variant} {_ns(e.get('c', 'ns_per_touched_page'))}"
            for e in others)
    return text + "."


def _python(head: Headline) -> str | None:
    ref = head.python_ref
    read = [e for e in head.entries.values() if e.python is not None]
    views = [e for e in read if family_of(e.variant).key not in
             ("eager", "python")]
    thunks = [e for e in read if family_of(e.variant).key == "python"]
    if ref is None or not views or not thunks:
        return None

    def cheapest(es: list[Entry]) -> Entry:
        return min(es, key=lambda e: e.get("python",
                                           "ns_per_touched_element"))

    v, k = cheapest(views), cheapest(thunks)
    ev = v.get("python", "ns_per_touched_element")
    ek = k.get("python", "ns_per_touched_element")
    winner = "the C view" if ev < ek else "the Python thunk"
    return (f"Read from Python ({ref.describe()}), the cheapest lazy C "
            f"view, {v.variant}, costs {_ns(ev)} per element "
            f"({_x(v.get('python', 'x_eager'))} eager's view) and the "
            f"cheapest Python thunk, {k.variant}, {_ns(ek)} "
            f"({_x(k.get('python', 'x_eager'))} eager's view): {winner} is "
            "cheaper.")


SENTENCES: dict[str, Callable[[Headline], str | None]] = {
    "eager": _eager, "swcheck": _swcheck, "mprotect": _mprotect,
    "redirect": _redirect, "uffd": _uffd, "python": _python,
}
