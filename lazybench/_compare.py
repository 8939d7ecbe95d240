"""``compare BASE NEW``: a regression comparison of two run folders.

Cases are matched by (level, variant, generator, workload, fraction, warm,
fault_around, n).  Per matched case:

- the deterministic counters are compared exactly: any difference is a
  regression;
- one normalised time metric: for a case that faults, the best pyperf
  worker's ns per fault over the same run's signal floors (the geometric
  mean of the best workers of ``sigsegv-roundtrip`` and
  ``sigbus-uffd-roundtrip``; ``sigsegv-roundtrip`` alone without
  userfaultfd); for one that does not, the median ns per touched
  element over eager's same case; eager's own cases
  (ratio 1 by construction) are compared in absolute time with the floors;
- context switches per fault, compared as rates with a tolerance and
  reported as notes only.

Per variant, the geometric mean of its cases' new/base ratios of that
metric: a variant regressed when it grew by more than the threshold.  A
single case regressed when its median grew by more than the (wider) case
threshold and every new sample is above every base sample.  The floors are
compared in absolute ns per operation with their own threshold:
normalising cancels exactly the kernel and CPU slowdowns they show.
pyperf's t-test is printed as information.  The default thresholds are
the CI gate's, chosen from the spread measured between runs and host
states (README, "The CI gate").
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import statistics
from typing import (TYPE_CHECKING, Any, Callable, Iterable, NamedTuple,
                    Sequence)

from lazybench._case import floor_benchmark_name
from lazybench._results import ResultsError, RunData

if TYPE_CHECKING:
    import pandas as pd

    from lazybench._frames import Frames

# pandas, the frames and matplotlib are imported where used: the command
# line's parser reads this module's defaults in every pyperf worker.

# The CI gate's thresholds, from the spread measured between quick runs of
# unchanged code and between host states (README, "The CI gate"):
# - a variant's geometric mean of the best worker's ns per fault over the
#   signal floors moved by up to 1.26 x between same-code runs of one
#   afternoon, and per fault over the signal floors by up to 1.025 x
#   between the two host states of the stored runs: 1.26 x 1.025 = 1.29;
# - swcheck's, per element over eager, by up to 1.47 x: 2 x;
# - a single case by up to 3.26 x (swcheck, seq, 100 %): 4 x;
# - absolute floors by up to 5.2 x, eager's times by up to 3.8 x, between
#   host states: an absolute time fails past 6 x only.
THRESHOLD = 0.35            # a variant's per-fault geometric mean: +35 %
ELEMENT_THRESHOLD = 1.0     # a variant's per-element geometric mean: +100 %
CASE_THRESHOLD = 3.0        # one case's normalised figure: +300 %
FLOOR_THRESHOLD = 5.0       # floors and eager's absolute times: +500 %
# Context switches per fault: a change larger than this (in switches per
# fault) is noted; the rates depend on the scheduler, never a regression.
CTX_TOLERANCE = 0.10
# tsc_hz differences within this fraction are not an environment change.
TSC_TOLERANCE = 0.01

KEY = ("level", "variant", "generator", "workload", "fraction", "warm",
       "fault_around", "n")
SIGSEGV_FLOOR = "sigsegv-roundtrip"
PER_FAULT = "best ns per fault / signal floors"
PER_FAULT_SIGSEGV = "best ns per fault / SIGSEGV floor"  # no userfaultfd
PER_ELEMENT = "ns per element / eager"

# (column of the cases frame or a function of its row, printed name)
COUNTERS: tuple[tuple[str, str], ...] = (
    ("faults_per_touched_page", "faults per touched page"),
    ("second_pass_faults", "second-pass faults"),
    ("decodes", "decodes"),
    ("decode_misses", "decode misses"),
    ("generator_calls_per_access", "generator calls per touched element"),
    ("pages_materialised", "pages materialised"),
    ("elements_materialised", "elements materialised"),
)
CTX_RATES = (("vol_ctx_per_fault", "voluntary context switches per fault"),
             ("invol_ctx_per_fault",
              "involuntary context switches per fault"))
ENV_KEYS = ("kernel", "cpu_model", "microcode", "mitigations", "thp",
            "compiler", "git_revision", "lazybench", "python", "capstone",
            "cpu_count", "tsc_hz")

Key = tuple[Any, ...]


class CompareError(ResultsError):
    """The two runs cannot be compared (no case in common)."""


# -- what is compared --------------------------------------------------------

class Metric(NamedTuple):
    """A time metric of one run: its figure (a results.csv or floors.csv
    cell; `median` for short) and its samples: the per-fault figure's per
    pyperf worker, the others' per pyperf value."""
    kind: str
    median: float
    samples: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One metric of one case (or floor) in both runs."""
    name: str            # the case or floor
    what: str            # the metric
    base: Metric
    new: Metric
    threshold: float
    significant: bool | None      # pyperf's t-test; None: not computed

    @property
    def ratio(self) -> float:
        return self.new.median / self.base.median \
            if self.base.median else float("nan")

    @property
    def regressed(self) -> bool:
        return self.ratio > 1 + self.threshold and \
            min(self.new.samples) > max(self.base.samples)

    @property
    def improved(self) -> bool:
        return self.ratio < 1 / (1 + self.threshold) and \
            max(self.new.samples) < min(self.base.samples)


@dataclasses.dataclass(frozen=True)
class VariantVerdict:
    """A variant's normalised cases in both runs, taken together."""
    variant: str
    cases: tuple[Verdict, ...]
    threshold: float

    @property
    def ratio(self) -> float:
        """The geometric mean of its cases' new/base ratios."""
        ratios = [v.ratio for v in self.cases]
        if not ratios or not all(r > 0 for r in ratios):
            return float("nan")
        return math.exp(statistics.fmean(math.log(r) for r in ratios))

    @property
    def regressed(self) -> bool:
        return self.ratio > 1 + self.threshold

    @property
    def improved(self) -> bool:
        return self.ratio < 1 / (1 + self.threshold)


@dataclasses.dataclass(frozen=True)
class Change:
    """A counter, context-switch rate or machine fact that differs."""
    name: str
    what: str
    base: Any
    new: Any


@dataclasses.dataclass(frozen=True)
class Comparison:
    base: RunData
    new: RunData
    counters: list[Change]
    metrics: list[Verdict]          # normalised, one per compared case
    variants: list[VariantVerdict]  # the same, per variant
    absolute: list[Verdict]         # floors, then eager's cases
    ctx_notes: list[Change]
    environment: list[Change]
    only_base: list[str]
    only_new: list[str]
    threshold: float
    element_threshold: float
    case_threshold: float
    floor_threshold: float

    @property
    def regressed_variants(self) -> list[VariantVerdict]:
        return [v for v in self.variants if v.regressed]

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.metrics if v.regressed]

    @property
    def improvements(self) -> list[Verdict]:
        return [v for v in self.metrics if v.improved]

    @property
    def failed(self) -> bool:
        return bool(self.counters or self.regressed_variants or
                    self.regressions or
                    any(v.regressed for v in self.absolute))


# -- the cases of a run ------------------------------------------------------

class Reference(NamedTuple):
    """What a faulting case's time is divided by in this run."""
    kind: str            # PER_FAULT, or PER_FAULT_SIGSEGV without uffd
    column: str          # the results.csv column of the figure
    floor_ns: float      # NaN: not measured


def _reference(floors: pd.DataFrame) -> Reference:
    from lazybench._frames import floor_lookup, signal_floors

    best = floor_lookup(floors, "best_ns_per_op")
    both = signal_floors(best)
    if not math.isnan(both):
        return Reference(PER_FAULT, "best_fault_over_signal_floors", both)
    return Reference(PER_FAULT_SIGSEGV, "best_fault_over_sigsegv_floor",
                     best(SIGSEGV_FLOOR))


@dataclasses.dataclass(frozen=True)
class Side:
    """One run: its frames, its cases by key, and their pyperf values."""
    frames: Frames
    cases: pd.DataFrame              # indexed by the position in `keys`
    keys: list[Key]
    reference: Reference

    @classmethod
    def of(cls, run: RunData) -> "Side":
        from lazybench._frames import Frames

        frames = Frames.of(run)
        cases = frames.cases.copy()
        cases["generator_calls_per_access"] = \
            cases.generator_calls / cases.accesses.clip(lower=1)
        keys = [tuple(_plain(row[k]) for k in KEY)
                for _, row in cases.iterrows()]
        return cls(frames, cases.reset_index(drop=True), keys,
                   _reference(frames.floors))

    def row(self, key: Key) -> pd.Series:
        return self.cases.iloc[self.keys.index(key)]

    def values(self, benchmark: str) -> tuple[float, ...]:
        bench = self.frames.run.benchmark(benchmark)
        return tuple(bench.get_values()) if bench is not None else ()

    def worker_means(self, benchmark: str) -> tuple[float, ...]:
        from lazybench._frames import worker_means

        bench = self.frames.run.benchmark(benchmark)
        return tuple(worker_means(bench)) if bench is not None else ()


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so that keys compare and hash alike."""
    return value.item() if hasattr(value, "item") else value


def is_base_variant(variant: str) -> bool:
    from lazybench._frames import base_variants

    return variant in base_variants()


def _eager_row(side: Side, row: pd.Series) -> pd.Series | None:
    """Eager's same case of this run, as cases_frame's x_eager finds it."""
    df = side.cases
    match = df[(df.variant == "eager") & (df.fault_around == 1) &
               (df.level == row.level) & (df.generator == row.generator) &
               (df.workload == row.workload) &
               (df.fraction == row.fraction) & (df.warm == row.warm)]
    return match.iloc[0] if len(match) else None


def normalised(side: Side, row: pd.Series) -> Metric | None:
    """The case's normalised time metric: its figure, and its samples per
    pyperf worker (a faulting case) or per value (another); None for
    eager's own cases and where the reference was not measured."""
    if row.faults > 0:
        ref = side.reference
        means = side.worker_means(row["name"])
        if math.isnan(ref.floor_ns) or not means:
            return None
        per = 1e9 / row.faults / ref.floor_ns
        return Metric(ref.kind, float(row[ref.column]),
                      tuple(v * per for v in means))
    values = side.values(row["name"])
    if is_base_variant(row.variant):
        return None
    eager = _eager_row(side, row)
    if eager is None or not values or not eager.time_s > 0:
        return None
    eager_ns = eager.ns_per_touched_element
    per = 1e9 / max(int(row.accesses), 1) / eager_ns
    return Metric(PER_ELEMENT, float(row.x_eager),
                  tuple(v * per for v in values))


def absolute(side: Side, benchmark: str) -> Metric | None:
    """A benchmark's absolute time in ns: median and values."""
    values = side.values(benchmark)
    if not values:
        return None
    ns = tuple(v * 1e9 for v in values)
    return Metric("ns", float(statistics.median(ns)), ns)


# -- comparing ---------------------------------------------------------------

def significance(base: Sequence[float], new: Sequence[float]) -> bool | None:
    """pyperf's two-sample t-test, when each side has at least 2 samples
    (and pyperf can compute it: equal counts, some spread)."""
    from pyperf._utils import is_significant

    if len(base) < 2 or len(new) < 2:
        return None
    try:
        significant, _ = is_significant(list(base), list(new))
    except (ValueError, ZeroDivisionError):
        return None
    return bool(significant)


def verdict(name: str, what: str, base: Metric, new: Metric,
            threshold: float) -> Verdict:
    return Verdict(name, what, base, new, threshold,
                   significance(base.samples, new.samples))


def counter_changes(name: str, base: pd.Series,
                    new: pd.Series) -> list[Change]:
    return [Change(name, what, _plain(base[col]), _plain(new[col]))
            for col, what in COUNTERS if base[col] != new[col]]


def ctx_changes(name: str, base: pd.Series, new: pd.Series,
                tolerance: float = CTX_TOLERANCE) -> list[Change]:
    out = []
    for col, what in CTX_RATES:
        b, n = float(base[col]), float(new[col])
        if b == b and n == n and abs(n - b) > tolerance:
            out.append(Change(name, what, b, n))
    return out


def _env_differs(key: str, base: Any, new: Any) -> bool:
    if key == "tsc_hz" and isinstance(base, (int, float)) \
            and isinstance(new, (int, float)) and base:
        return abs(new - base) / abs(base) > TSC_TOLERANCE
    return bool(base != new)


def environment(base: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Machine facts that differ; mitigations one per vulnerability."""
    out = []
    for key in ENV_KEYS:
        b, n = base.get(key), new.get(key)
        if isinstance(b, dict) and isinstance(n, dict):
            out += [Change("machine", f"{key}.{k}", b.get(k), n.get(k))
                    for k in sorted(set(b) | set(n)) if b.get(k) != n.get(k)]
        elif _env_differs(key, b, n):
            out.append(Change("machine", key, b, n))
    return out


def _floor_verdicts(base: Side, new: Side,
                    threshold: float) -> list[Verdict]:
    out = []
    floors = [f for f in base.frames.floors.floor
              if f in set(new.frames.floors.floor)]
    for floor in floors:
        b = absolute(base, floor_benchmark_name(floor))
        n = absolute(new, floor_benchmark_name(floor))
        if b is not None and n is not None:
            out.append(verdict(floor, "ns per operation", b, n, threshold))
    return out


def by_variant(metrics: Sequence[Verdict], variant_of: dict[str, str],
               threshold: float,
               element_threshold: float) -> list[VariantVerdict]:
    """The cases' verdicts grouped per variant (and level and metric), in
    the order the variants first come; per-fault metrics get `threshold`,
    per-element ones `element_threshold`."""
    groups: dict[tuple[str, str], list[Verdict]] = {}
    for v in metrics:
        groups.setdefault((variant_of[v.name], v.what), []).append(v)
    return [VariantVerdict(variant, tuple(cases),
                           element_threshold if what == PER_ELEMENT
                           else threshold)
            for (variant, what), cases in groups.items()]


def _variant_label(row: pd.Series) -> str:
    return str(row.variant) if row.level == "c" \
        else f"{row.variant} ({row.level} level)"


def compare(base_run: RunData, new_run: RunData,
            threshold: float = THRESHOLD,
            floor_threshold: float = FLOOR_THRESHOLD,
            case_threshold: float = CASE_THRESHOLD,
            element_threshold: float = ELEMENT_THRESHOLD) -> Comparison:
    base, new = Side.of(base_run), Side.of(new_run)
    common = [k for k in base.keys if k in set(new.keys)]
    if not common:
        raise CompareError(f"{base_run.folder} and {new_run.folder} have "
                           "no case in common")
    counters: list[Change] = []
    metrics: list[Verdict] = []
    eager: list[Verdict] = []
    notes: list[Change] = []
    variant_of: dict[str, str] = {}
    for key in common:
        b, n = base.row(key), new.row(key)
        name = str(n["name"])
        variant_of[name] = _variant_label(n)
        counters += counter_changes(name, b, n)
        notes += ctx_changes(name, b, n)
        if is_base_variant(str(b.variant)):
            mb, mn = absolute(base, b["name"]), absolute(new, n["name"])
            if mb is not None and mn is not None:
                eager.append(verdict(name, "ns per pass", mb, mn,
                                     floor_threshold))
            continue
        mb, mn = normalised(base, b), normalised(new, n)
        if mb is not None and mn is not None and mb.kind == mn.kind:
            metrics.append(verdict(name, mb.kind, mb, mn, case_threshold))
    return Comparison(
        base_run, new_run, counters, metrics,
        by_variant(metrics, variant_of, threshold, element_threshold),
        _floor_verdicts(base, new, floor_threshold) + eager, notes,
        environment(base_run.meta["machine"], new_run.meta["machine"]),
        _one_side(base, new), _one_side(new, base), threshold,
        element_threshold, case_threshold, floor_threshold)


def _one_side(side: Side, other: Side) -> list[str]:
    theirs = set(other.keys)
    return [f"{side.cases.iloc[i]['name']} (n={key[-1]})"
            for i, key in enumerate(side.keys) if key not in theirs]


# -- output ------------------------------------------------------------------

Table = tuple[str, list[str], list[list[str]]]     # title, header, rows


def _pct(base: float, new: float) -> str:
    if not (isinstance(base, (int, float)) and isinstance(new, (int, float))):
        return "-"
    if base == 0:
        return "-" if new == 0 else "new"
    return f"{(new / base - 1) * 100:+.1f} %"


def sig(value: float) -> str:
    from lazybench._format import sig as three_digits

    return three_digits(value)


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return sig(value)


def _sig_text(v: Verdict) -> str:
    if v.significant is None:
        return "n/a"
    return "significant" if v.significant else "not significant"


def _verdict_rows(verdicts: Iterable[Verdict],
                  otherwise: str = "") -> list[list[str]]:
    """One row per verdict; `otherwise` is the verdict column of a case
    that neither regressed nor improved by itself."""
    rows = []
    for v in verdicts:
        state = ("REGRESSED" if v.regressed else
                 "improved" if v.improved else otherwise)
        rows.append([v.name, v.what, sig(v.base.median), sig(v.new.median),
                     _pct(v.base.median, v.new.median), _sig_text(v),
                     state])
    return rows


VERDICT_HEADER = ["case", "metric", "base", "new", "change", "t-test",
                  "verdict"]
CHANGE_HEADER = ["case", "what", "base", "new", "change"]


def _change_rows(changes: Iterable[Change]) -> list[list[str]]:
    return [[c.name, c.what, _num(c.base), _num(c.new),
             _pct(c.base, c.new)] for c in changes]


VARIANT_HEADER = ["variant", "metric", "cases", "change", "largest case",
                  "verdict"]


def _variant_rows(variants: Iterable[VariantVerdict]) -> list[list[str]]:
    rows = []
    for v in variants:
        top = max(v.cases, key=lambda x: x.ratio)
        state = ("REGRESSED" if v.regressed else
                 "improved" if v.improved else "")
        rows.append([v.variant, v.cases[0].what, str(len(v.cases)),
                     _pct(1.0, v.ratio),
                     f"{top.name} {_pct(top.base.median, top.new.median)}",
                     state])
    return rows


def tables(c: Comparison) -> list[Table]:
    """The sections of the output, in order."""
    thr, cthr = f"{c.threshold * 100:g} %", f"{c.case_threshold * 100:g} %"
    ethr = f"{c.element_threshold * 100:g} %"
    fthr = f"{c.floor_threshold * 100:g} %"
    faster = f"{1 / (1 + c.case_threshold):.3g}"
    return [
        ("Changed counters (each a regression)", CHANGE_HEADER,
         _change_rows(c.counters)),
        (f"Variants (geometric mean of their cases' new/base; regressed "
         f"beyond +{thr} per fault, +{ethr} per element)", VARIANT_HEADER,
         _variant_rows(c.variants)),
        ("Cases of the regressed variants", VERDICT_HEADER,
         _verdict_rows((x for v in c.regressed_variants for x in v.cases),
                       "variant REGRESSED")),
        (f"Case regressions (normalised median up more than {cthr}, "
         "sample ranges apart)",
         VERDICT_HEADER, _verdict_rows(c.regressions)),
        (f"Case improvements (normalised median below {faster} x base, "
         "sample ranges apart)", VERDICT_HEADER,
         _verdict_rows(c.improvements)),
        (f"Floors and eager, absolute (threshold +{fthr})", VERDICT_HEADER,
         _verdict_rows(c.absolute)),
        ("Environment", ["fact", "base", "new"],
         [[e.what, _num(e.base), _num(e.new)] for e in c.environment]),
        ("Context switches per fault (notes, not regressions)",
         CHANGE_HEADER, _change_rows(c.ctx_notes)),
        ("Cases on one side only", ["case", "run"],
         [[n, "base only"] for n in c.only_base] +
         [[n, "new only"] for n in c.only_new]),
    ]


def summary(c: Comparison) -> str:
    floors = sum(v.regressed for v in c.absolute)
    return (f"{len(c.metrics)} cases of {len(c.variants)} variants "
            f"compared: {len(c.counters)} changed counters, "
            f"{len(c.regressed_variants)} regressed variants, "
            f"{len(c.regressions)} case regressions, "
            f"{len(c.improvements)} case improvements, {floors} floors or "
            f"eager cases beyond their threshold; "
            f"{'REGRESSED' if c.failed else 'no regression'}")


def warnings(c: Comparison) -> list[str]:
    return [f"warning: environment differs: {e.what}: {_num(e.base)} -> "
            f"{_num(e.new)}" for e in c.environment]


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows])
              for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in
                             zip(row, widths)).rstrip()
            for row in [header, *rows]]


def render_text(c: Comparison) -> str:
    lines = [f"base: {c.base.folder}", f"new:  {c.new.folder}",
             *warnings(c), ""]
    for title, header, rows in tables(c):
        lines.append(f"{title}: {len(rows) if rows else 'none'}")
        if rows:
            lines += _text_table(header, rows)
        lines.append("")
    lines.append(summary(c))
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(c: Comparison) -> str:
    lines = [f"**lazybench compare**: `{c.base.folder.name}` -> "
             f"`{c.new.folder.name}`", ""]
    lines += [f"> {w}" for w in warnings(c)] + ([""] if c.environment else [])
    for title, header, rows in tables(c):
        lines.append(f"### {title}")
        lines.append("")
        if not rows:
            lines += ["none", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_md_cell(x) for x in row) + " |"
                  for row in rows]
        lines.append("")
    lines.append(f"**{summary(c)}**")
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[Comparison], str]] = {
    "text": render_text, "markdown": render_markdown}


# -- plot --------------------------------------------------------------------

def flagged(c: Comparison) -> set[str]:
    """The cases that fail: regressed themselves, or of a regressed
    variant."""
    return {v.name for v in c.regressions} | \
        {x.name for v in c.regressed_variants for x in v.cases}


def figure(c: Comparison) -> Any:
    """Horizontal bars of new/base of each compared case's normalised
    metric on a log axis, grouped by variant, with a black mark at each
    variant's geometric mean; red: the case regressed or its variant
    did."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    red = flagged(c)
    rows = [v for g in c.variants for v in g.cases]
    fig, ax = plt.subplots(figsize=(8, 1.8 + 0.28 * max(len(rows), 1)))
    colours = ["tab:red" if v.name in red else
               "tab:green" if v.improved else "tab:grey" for v in rows]
    ax.barh(range(len(rows)), [v.ratio - 1 for v in rows], left=1,
            color=colours)
    first = 0
    for g in c.variants:
        last = first + len(g.cases) - 1
        ax.plot([g.ratio, g.ratio], [first - 0.45, last + 0.45],
                color="black", linewidth=2,
                label="variant's geometric mean" if first == 0
                else None)
        if last + 1 < len(rows):
            ax.axhline(last + 0.5, color="lightgrey", linewidth=0.6)
        first = last + 1
    ax.set_xscale("log")
    ax.axvline(1, color="black", linewidth=0.8)
    ax.axvline(1 + c.threshold, color="tab:red", linestyle=":",
               linewidth=1,
               label=f"threshold, variant per fault: +{c.threshold * 100:g} %")
    ax.axvline(1 + c.case_threshold, color="tab:red", linestyle="--",
               linewidth=1,
               label=f"threshold, one case: +{c.case_threshold * 100:g} %")
    ratios = [v.ratio for v in rows if v.ratio > 0]
    ax.set_xlim(min(ratios + [0.8]) / 1.15,
                max(ratios + [1 + c.case_threshold]) * 1.15)
    ax.xaxis.set_major_locator(FixedLocator(
        [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 10, 20, 50, 100]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(range(len(rows)), [v.name for v in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("new / base of the normalised metric (log); red: the "
                  "case or its variant regressed")
    ax.set_title(f"{c.base.folder.name} -> {c.new.folder.name}", pad=34)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def write_plot(c: Comparison, path: pathlib.Path) -> None:
    from lazybench import _plots as plots

    plots.save_png(figure(c), path)

