"""What a stored run holds: the structure of run.json, and which pyperf
benchmarks must come with it.  Checked when a run is read back, so that a
damaged or mismatched run folder is refused in one line instead of
failing somewhere inside the report.
"""
from __future__ import annotations

from typing import Any, Union

import pyperf

from lazybench._case import floor_benchmark_name

FORMAT = 1

# A spec is the type(s) a value must have, a dict of the keys an object
# must have (a key ending in "?" may be missing), or a one-item list: a
# list whose items all match that item.  Keys not named are not checked.
Spec = Union[type, tuple[type, ...], dict[str, "Spec"], list["Spec"]]

NUMBER = (int, float)
COUNTERS: Spec = {**{key: int for key in (
    "faults", "pages_materialised", "elements_materialised",
    "generator_calls", "max_nesting")},
    **{f"{key}?": int for key in ("decodes", "decode_hits", "decode_misses",
                                  "evicted_pages")}}

# Everything of a case record that the report reads.
RECORD: Spec = {
    "name": str,
    "case": {"variant": str, "generator": str, "workload": str,
             "fraction": NUMBER, "n": int, "warm?": bool, "level?": str,
             "fault_around?": int, "spin?": int, "sweep?": str,
             "threads?": int, "disjoint?": bool},
    "accesses": int, "touched_pages": int, "build_ns": NUMBER,
    "counters": COUNTERS, "second_pass": COUNTERS,
    "rusage": {"minflt": int, "nvcsw": int, "nivcsw": int},
    "memory?": {"rss_before": int, "rss_after": int, "peak_rss": int},
    "tlb_shootdowns?": int,
}

RUN: Spec = {
    "format": int, "name": str, "profile": str, "created": str,
    "machine": dict, "floors?": dict, "cases": [RECORD],
    "unavailable?": [{"variant": str, "reason": str}],
    "skipped?": [{"name": str, "variant": str, "reason": str}],
    "concurrent_floors?": [{"floor": str, "threads": int,
                            "ns_per_op": NUMBER,
                            "over_one_thread": NUMBER}],
}


class FormatError(ValueError):
    """A stored run does not have the expected structure."""


def _type_names(types: tuple[type, ...]) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number",
             str: "a string", dict: "an object", list: "a list"}
    if types == NUMBER:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check(value: Any, spec: Spec, where: str) -> None:
    if isinstance(spec, dict):
        _check(value, dict, where)
        for key, item in spec.items():
            name = key.rstrip("?")
            if name in value:
                _check(value[name], item,
                       f"{where}.{name}" if where else name)
            elif name == key:
                raise FormatError(f"{where}: no {name!r}")
    elif isinstance(spec, list):
        _check(value, list, where)
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
    else:
        types = spec if isinstance(spec, tuple) else (spec,)
        # JSON true is no integer here, though Python's bool is an int
        if not isinstance(value, types) or \
                (isinstance(value, bool) and bool not in types):
            raise FormatError(f"{where}: {_type_names(types)} expected, "
                              f"got {type(value).__name__} {value!r:.40}")


def check_run(meta: Any) -> None:
    """Raise FormatError naming the first part of run.json that is missing
    or of the wrong type."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"not a lazybench run file (format {FORMAT})")
    _check(meta, RUN, "")
    names = [rec["name"] for rec in meta["cases"]]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise FormatError(f"case {twice!r} listed twice")


def benchmark_names(meta: dict[str, Any]) -> list[str]:
    """The pyperf benchmarks a run of this run.json measured."""
    return [floor_benchmark_name(f) for f in meta.get("floors", {})] + \
        [rec["name"] for rec in meta["cases"]]


def check_benchmarks(meta: dict[str, Any],
                     suite: pyperf.BenchmarkSuite) -> None:
    """Raise FormatError unless `suite` holds exactly the run's benchmarks,
    each with values."""
    expected = benchmark_names(meta)
    got = suite.get_benchmark_names()
    missing = [n for n in expected if n not in got]
    if missing:
        raise FormatError(
            f"not this run's benchmarks: {len(missing)} of {len(expected)} "
            f"missing (first {missing[0]!r})")
    extra = [n for n in got if n not in expected]
    if extra:
        raise FormatError(f"not this run's benchmarks: {len(extra)} not in "
                          f"the run (first {extra[0]!r})")
    for name in expected:
        if suite.get_benchmark(name).get_nvalue() == 0:
            raise FormatError(f"benchmark {name!r} has no values")
