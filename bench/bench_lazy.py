#!/usr/bin/env python3
"""pyperf script: lazybench's cases and floors under pyperf's own command line.

    python bench/bench_lazy.py --variants eager,sigsegv-mprotect \\
        --generators hash --touched 1,100 -o lazy.json
    python -m pyperf stats lazy.json

``--python-level`` adds the Python-level cases (views and Python thunks).
Every pyperf option works (--rigorous, --fast, -p, -n, -o, --affinity, ...).
``python -m lazybench run`` drives the same benchmarks and adds the
verification pass, counters, report and plots.
"""
from __future__ import annotations

import argparse

import pyperf

from lazybench import core, pythunks, runner, suite

OPTIONS = ("variants", "generators", "workloads", "touched", "elements",
           "spin")


def add_cmdline_args(cmd: list[str], args: argparse.Namespace) -> None:
    for name in OPTIONS:
        cmd.extend([f"--{name}", str(getattr(args, name))])
    if args.python_level:
        cmd.append("--python-level")


def _names(text: str) -> tuple[str, ...]:
    return tuple(s for s in text.split(",") if s)


def main() -> None:
    available = [a.variant for a in core.all_availability() if a.available]
    bench_runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    p = bench_runner.argparser
    p.add_argument("--variants", default=",".join(available))
    p.add_argument("--generators", default=",".join(core.GENERATORS))
    p.add_argument("--workloads", default=",".join(core.WORKLOADS))
    p.add_argument("--touched", default="1,10,100",
                   help="touched percentages")
    p.add_argument("--elements", type=int, default=suite.DEFAULT_N)
    p.add_argument("--spin", type=int, default=suite.DEFAULT_SPIN)
    p.add_argument("--python-level", action="store_true",
                   help="also the Python-level cases (the default suite's "
                        "Python plan cut to the selection, at most "
                        f"{suite.PROFILES['default'].python_n} elements); "
                        "--variants may then name Python thunk kinds "
                        f"({', '.join(pythunks.KINDS)})")
    args = bench_runner.parse_args()
    variants = _names(args.variants)
    if args.python_level and args.variants == ",".join(available):
        variants += pythunks.KINDS
    kinds = tuple(v for v in variants if v in pythunks.KINDS)
    variants = tuple(v for v in variants if v not in pythunks.KINDS)
    if kinds and not args.python_level:
        p.error("Python thunk kinds run only with --python-level")
    for v in variants:
        if v not in available:
            p.error(f"variant {v!r} is unknown or unavailable here")
    fractions = tuple(float(t.rstrip("%")) / 100 for t in _names(args.touched))
    cases = suite.build_cases(variants, _names(args.generators),
                              _names(args.workloads), fractions,
                              args.elements, args.spin,
                              per_element_generators=core.GENERATORS)
    if args.python_level:
        profile = suite.PROFILES["default"]
        plan = tuple((g, w, f) for g, w, f in profile.python_plan
                     if g in _names(args.generators)
                     and w in _names(args.workloads) and f in fractions)
        cases += suite.build_python_cases(variants + kinds, plan,
                                          min(args.elements, profile.python_n))
    floors = [f for f in suite.FLOOR_NAMES if core.floor_available(f)]
    runner.bench_all(bench_runner, floors, cases)


if __name__ == "__main__":
    main()
