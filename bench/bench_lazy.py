#!/usr/bin/env python3
"""pyperf script: lazybench's cases and floors under pyperf's own command line.

    python bench/bench_lazy.py --variants eager,sigsegv-mprotect \\
        --generators hash --touched 1,100 -o lazy.json
    python -m pyperf stats lazy.json

The cases are the default suite's (``--suite quick`` for the quick one),
narrowed by the options, exactly as ``python -m lazybench run`` plans them
(``lazybench._suite.plan``).  ``--python-level`` adds the Python-level cases
(views and Python thunks).  Every pyperf option works (--rigorous, --fast,
-p, -n, -o, --affinity, ...).  ``python -m lazybench run`` drives the same
benchmarks and adds the verification pass, counters, report and plots.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

import pyperf

from lazybench import _pythunks as pythunks, _runner as runner, _suite as suite



def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(s for s in text.split(",") if s)


def _selection(args: argparse.Namespace) -> suite.Selection:
    touched = _names(args.touched)
    return suite.Selection(
        variants=_names(args.variants), generators=_names(args.generators),
        workloads=_names(args.workloads),
        fractions=None if touched is None else
        tuple(float(t.rstrip("%")) / 100 for t in touched),
        n=args.elements, spin=args.spin, python=args.python_level)


def main() -> None:
    plan_file: list[str] = []

    def add_cmdline_args(cmd: list[str], args: argparse.Namespace) -> None:
        # workers time the parent's plan; they do not plan again
        cmd.extend(["--plan", plan_file[0]])

    bench_runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    p = bench_runner.argparser
    p.add_argument("--suite", choices=sorted(suite.PROFILES),
                   default="default")
    p.add_argument("--variants")
    p.add_argument("--generators")
    p.add_argument("--workloads")
    p.add_argument("--touched", help="touched percentages")
    p.add_argument("--elements", type=int)
    p.add_argument("--spin", type=int, default=suite.DEFAULT_SPIN)
    p.add_argument("--python-level", action="store_true",
                   help="also the Python-level cases; --variants may then "
                        "name Python thunk kinds "
                        f"({', '.join(pythunks.KINDS)})")
    p.add_argument("--plan", help=argparse.SUPPRESS)
    args = bench_runner.parse_args()
    if args.plan:                          # a worker
        runner.bench_all(bench_runner, suite.Plan.load(args.plan))
        return
    names = _names(args.variants) or ()
    if not args.python_level and any(v in pythunks.KINDS for v in names):
        p.error("Python thunk kinds run only with --python-level")
    try:
        plan = suite.plan(args.suite, _selection(args))
    except ValueError as exc:
        p.error(str(exc))
    unavailable = [u.variant for u in plan.unavailable
                   if args.variants is not None]
    if unavailable:
        p.error(f"variant {unavailable[0]!r} is unavailable here")
    fd, path = tempfile.mkstemp(prefix="lazybench-plan.", suffix=".json")
    os.close(fd)
    plan_file.append(path)
    try:
        plan.save(pathlib.Path(path))
        runner.bench_all(bench_runner, plan)
    finally:
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
