"""Command line: ``python -m lazybench [run|report|list] ...``.

``run`` is the default command.  Its pyperf workers re-run this same command
line with pyperf's worker options appended; those are split off here and
handed to pyperf's own parser.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
import sys
import time
from typing import Any, Sequence

from lazybench import __version__

USAGE_ERROR = 2
RUN_ERROR = 1
INTERRUPTED = 130       # 128 + SIGINT, what shells report for Ctrl-C


class UsageError(Exception):
    """Bad command-line input: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _csv(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError("empty list")
    return items


def _percent_list(value: str) -> tuple[float, ...]:
    out = []
    for item in _csv(value):
        try:
            pct = float(item.rstrip("%"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a percentage: {item!r}")
        if not 0 < pct <= 100:
            raise argparse.ArgumentTypeError(
                f"touched percentage {item!r} is not in (0, 100]")
        out.append(pct / 100)
    return tuple(out)


def _int_in(lowest: int, highest: int | None = None) -> Any:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}")
        if n < lowest:
            raise argparse.ArgumentTypeError(
                f"must be at least {lowest}: {value!r}")
        if highest is not None and n > highest:
            raise argparse.ArgumentTypeError(
                f"must be at most {highest}: {value!r}")
        return n
    return parse


RUN_HELP = """\
Run a suite: verify every case against eager, time it with pyperf, and write
results/<run>/ with pyperf.json, run.json (cases, counters, machine),
results.csv, floors.csv, report.md and plots/*.png.

A case is (variant, generator, workload, touched fraction).  The default suite
runs every available variant with every generator and workload at 1 %, 10 %
and 100 % touched (a few minutes on 2 cores); --quick runs the hash generator
only, on a quarter of the array, with fewer pyperf values (one to two
minutes)."""


def _build_parser() -> _Parser:
    from lazybench import core, pythunks, suite

    parser = _Parser(
        prog="python -m lazybench",
        description="lazybench: what lazy evaluation costs when the "
                    "hardware's memory protection does the checking.  "
                    "Without a command, runs the default suite.",
        allow_abbrev=False)
    parser.add_argument("--version", action="version",
                        version=f"lazybench {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run a suite (the default command)",
                         description=RUN_HELP, allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--quick", action="store_const", const="quick",
                     dest="suite", default="default",
                     help="the quick suite (same as --suite quick)")
    run.add_argument("--suite", choices=sorted(suite.PROFILES),
                     default="default", help="suite profile (default: default)")
    run.add_argument("--variants", type=_csv, metavar="LIST",
                     help="comma-separated variants (default: all available; "
                          f"known: {', '.join(core.VARIANTS)}, and the "
                          "Python thunk kinds "
                          f"{', '.join(pythunks.KINDS)}, which run only in "
                          "the Python-level table)")
    run.add_argument("--generators", type=_csv, metavar="LIST",
                     help=f"comma-separated generators ({', '.join(core.GENERATORS)})")
    run.add_argument("--workloads", type=_csv, metavar="LIST",
                     help=f"comma-separated workloads ({', '.join(core.WORKLOADS)})")
    run.add_argument("--touched", type=_percent_list, metavar="PCTS",
                     help="touched percentages, e.g. 1,10,100")
    run.add_argument("--elements", type=_int_in(1), metavar="N",
                     help=f"array length in int64 elements (default {suite.DEFAULT_N})")
    run.add_argument("--spin", type=_int_in(0, core.MAX_SPIN),
                     default=suite.DEFAULT_SPIN, metavar="ROUNDS",
                     help=f"mixing rounds per element of the spin generator "
                          f"(default {suite.DEFAULT_SPIN}, at most "
                          f"{core.MAX_SPIN})")
    run.add_argument("--no-python", action="store_true",
                     help="skip the Python-level cases (the table read "
                          "from Python through views and Python thunks)")
    run.add_argument("--results-dir", type=pathlib.Path,
                     default=pathlib.Path("results"), metavar="DIR",
                     help="where run folders go (default: ./results)")
    run.add_argument("--run-name", metavar="NAME",
                     help="run folder name (default: date-time-suite)")
    run.add_argument("--floors", type=_csv, help=argparse.SUPPRESS)
    run.add_argument("--save-baseline", action="store_true",
                     help="also store this run as results/baseline, "
                          "replacing the stored baseline")

    rep = sub.add_parser("report", allow_abbrev=False,
                         help="rebuild CSV, report and plots of a run folder")
    rep.add_argument("folder", type=pathlib.Path, help="a run folder")

    sub.add_parser("list", help="variants (with availability), generators, "
                                "workloads and floors")
    return parser


def _split_worker_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """In a pyperf worker, our options come first and pyperf's start at
    '--worker' (pyperf appends its options after program_args)."""
    if "--worker" in argv:
        k = argv.index("--worker")
        return argv[:k], argv[k:]
    return argv, []


def _normalise(argv: list[str]) -> list[str]:
    commands = {"run", "report", "list"}
    if not argv or (argv[0] not in commands and argv[0] not in
                    ("-h", "--help", "--version")):
        return ["run", *argv]
    return argv


def _selection(names: tuple[str, ...] | None, known: tuple[str, ...],
               kind: str) -> tuple[str, ...] | None:
    if names is None:
        return None
    for name in names:
        if name not in known:
            raise UsageError(f"unknown {kind} {name!r} (choose from "
                             f"{', '.join(known)})")
    return names


def _machine() -> dict[str, Any]:
    from importlib import metadata

    from lazybench import core

    return {"kernel": platform.release(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "capstone": core.CAPSTONE_VERSION,
            "capstone_wheel": metadata.version("capstone"),
            "pyperf": metadata.version("pyperf"),
            "page_elements": core.PAGE_ELEMENTS,
            "max_nesting": core.MAX_NESTING}


def cmd_list() -> int:
    from lazybench import core, pythunks

    print("variants:")
    for a in core.all_availability():
        state = "available" if a.available else f"unavailable: {a.reason}"
        print(f"  {a.variant:20} {state}")
    print("Python thunk kinds (Python-level table only): "
          + ", ".join(pythunks.KINDS))
    print("generators: " + ", ".join(core.GENERATORS))
    print("workloads:  " + ", ".join(core.WORKLOADS))
    print("floors:")
    for name, text in core.FLOORS.items():
        print(f"  {name:22} {text}")
    return 0


def cmd_report(folder: pathlib.Path) -> int:
    from lazybench import report, results

    run = results.load_run(folder)
    for path in report.write_report(run):
        print(path)
    return 0


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace, our_argv: list[str],
            pyperf_argv: list[str]) -> int:
    import pyperf

    from lazybench import core, pythunks, results, runner, suite

    worker = bool(pyperf_argv)
    if not worker:
        try:
            results.check_results_dir(args.results_dir)
        except results.ResultsError as exc:
            raise UsageError(f"--results-dir {args.results_dir}: {exc}") \
                from None
    profile = suite.PROFILES[args.suite]
    variants = _selection(args.variants, core.VARIANTS + pythunks.KINDS,
                          "variant")
    generators = _selection(args.generators, core.GENERATORS, "generator") \
        or profile.generators
    workloads = _selection(args.workloads, core.WORKLOADS, "workload") \
        or profile.workloads
    fractions = args.touched or profile.fractions
    n = args.elements or profile.n

    unavailable = []
    chosen = []
    for a in core.all_availability():
        if variants is not None and a.variant not in variants:
            continue
        if a.available:
            chosen.append(a.variant)
        else:
            unavailable.append({"variant": a.variant, "reason": a.reason})
    _check_size(n)
    cases = suite.build_cases(tuple(chosen), generators, workloads,
                              fractions, n, args.spin,
                              profile.per_element_generators,
                              profile.warm, profile.fault_around)
    kinds = [k for k in pythunks.KINDS if variants is None or k in variants]
    if not args.no_python:
        plan = tuple((g, w, f) for g, w, f in profile.python_plan
                     if (args.generators is None or g in generators)
                     and (args.workloads is None or w in workloads)
                     and (args.touched is None or f in fractions))
        cases += suite.build_python_cases(tuple(chosen + kinds), plan,
                                          min(n, profile.python_n))
    floors = args.floors or tuple(f for f in suite.FLOOR_NAMES
                                  if core.floor_available(f))

    bench_runner = pyperf.Runner(
        values=profile.values, processes=profile.processes,
        warmups=profile.warmups, min_time=profile.min_time,
        # Workers get the parent's resolved choices, so that a worker whose
        # environment differs cannot disagree on the list of benchmarks.
        program_args=("-m", "lazybench", *our_argv,
                      "--variants", ",".join(chosen + kinds),
                      "--floors", ",".join(floors)))
    if worker:
        bench_runner.parse_args(pyperf_argv)
        runner.bench_all(bench_runner, floors, cases)
        return 0

    _preflight(cases)
    name = args.run_name or results.new_run_name(profile.name)
    folder = results.RunFolder(args.results_dir, name)
    try:
        for u in unavailable:
            _log(f"variant {u['variant']} unavailable: {u['reason']}")
        started = time.monotonic()
        _log(f"verifying {len(cases)} cases against eager ...")
        records = _verify(cases)
        _log(f"timing {len(floors)} floors and {len(cases)} cases with "
             f"pyperf ({profile.processes} processes x {profile.values} "
             "values) ...")
        pyperf_args = ["--quiet", "--timeout", "600"]
        inherit = [v for v in ("PYTHONPATH", "LAZYBENCH_NO_USERFAULTFD")
                   if v in os.environ]
        if inherit:
            pyperf_args += ["--inherit-environ", ",".join(inherit)]
        bench_runner.parse_args(pyperf_args)
        benches = runner.bench_all_interruptible(bench_runner, floors,
                                                 cases)
        expected = [f"floor/{f}" for f in floors] + [c.name for c in cases]
        got = [b.get_name() for b in benches]
        if got != expected:
            missing = [n for n in expected if n not in got]
            extra = [n for n in got if n not in expected]
            raise core.LazyBenchError(
                "pyperf workers measured other benchmarks than asked for "
                f"(missing {missing[:3]}, unexpected {extra[:3]})")
        meta = {
            "format": results.FORMAT, "name": name, "profile": profile.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_s": round(time.monotonic() - started, 1),
            "argv": our_argv, "machine": _machine(),
            "floors": {f: core.FLOORS[f] for f in floors},
            "cases": records, "unavailable": unavailable,
        }
        bench_suite = pyperf.BenchmarkSuite(benches)
        results.write_run(folder.path, meta, bench_suite)
        path = folder.commit()
    except BaseException:
        folder.discard()
        raise
    return _finish_run(path, args.save_baseline, args.results_dir)


def _check_size(n: int) -> None:
    """Refuse sizes that cannot work before anything runs."""
    from lazybench import core

    if n > core.MAX_ELEMENTS:
        raise UsageError(f"--elements {n} is above the core's limit of "
                         f"{core.MAX_ELEMENTS}")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need = 8 * n * 3          # the eager reference, the case, the worker's
    if need > memory // 2:
        raise UsageError(f"--elements {n} needs about {need / 2**30:.1f} GiB "
                         f"at once; this machine has {memory / 2**30:.1f} GiB")


def _preflight(cases: Sequence[Any]) -> None:
    """Create and release one array per lazy variant and size, so that a
    size a variant refuses is reported before any work starts.  Lazy
    arrays compute nothing here."""
    from lazybench import core

    seen = set()
    for case in cases:
        key = (case.variant, case.n)
        if case.variant == "eager" or case.level == "python" or key in seen:
            continue
        seen.add(key)
        try:
            core.LazyArray(case.variant, case.n, case.generator).release()
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def _verify(cases: Sequence[Any]) -> list[dict[str, Any]]:
    from lazybench import verify

    return verify.verify_all(cases)


def _finish_run(path: pathlib.Path, save_baseline: bool,
                results_dir: pathlib.Path) -> int:
    from lazybench import report, results

    run = results.load_run(path)
    report.write_report(run)
    df = report.cases_frame(run)
    floors = report.floors_frame(run)
    print()
    print("floors (ns per operation):")
    print(floors[["floor", "ns_per_op", "what"]].to_string(
        index=False, float_format=lambda v: f"{v:.1f}"))
    titles = {"c": "ns per touched element, C workload loop, first pass:",
              "python": "ns per touched element, read from Python, first "
                        "pass:"}
    for level, title in titles.items():
        part = df[df.level == level] if not df.empty else df
        if part.empty:
            continue
        print()
        print(title)
        print(report.summary_table(part).to_string(
            float_format=lambda v: f"{v:.3g}"))
    if save_baseline:
        _store_baseline(path, results_dir)
    print()
    print(f"results: {path}/ (report.md, results.csv, plots/)")
    return 0


def _store_baseline(path: pathlib.Path, results_dir: pathlib.Path) -> None:
    from lazybench import results

    target = results_dir / results.BASELINE
    staging = results_dir / f".{results.BASELINE}.new"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(path, staging)
    old = results_dir / f".{results.BASELINE}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    print(f"baseline: {target}/")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("lazybench: interrupted", file=sys.stderr)
        return INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    from lazybench.core import LazyBenchError

    raw = list(sys.argv[1:] if argv is None else argv)
    ours, pyperf_argv = _split_worker_args(raw)
    ours = _normalise(ours)
    try:
        args = _build_parser().parse_args(ours)
        if args.command == "list":
            return cmd_list()
        if args.command == "report":
            return cmd_report(args.folder)
        return cmd_run(args, ours, pyperf_argv)
    except UsageError as exc:
        print(f"lazybench: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except (LazyBenchError, ValueError) as exc:
        print(f"lazybench: error: {exc}", file=sys.stderr)
        return USAGE_ERROR if _is_input_error(exc) else RUN_ERROR
    except RuntimeError as exc:          # pyperf: a worker failed
        first = str(exc).splitlines()[0] if str(exc) else "benchmark failed"
        print(f"lazybench: error: {first}", file=sys.stderr)
        return RUN_ERROR


def _is_input_error(exc: Exception) -> bool:
    from lazybench.results import ResultsError

    return isinstance(exc, (ResultsError, ValueError))
