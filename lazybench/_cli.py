"""Command line: ``python -m lazybench [run|report|compare|list] ...``.

``run`` is the default command.  Its pyperf workers re-run this same command
line with pyperf's worker options appended; those are split off here and
handed to pyperf's own parser.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
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


def _fraction(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}")
    if not 0 <= x < float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a fraction of at least 0 (0.5 is +50 %): {value!r}")
    return x


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
Run a suite: verify every case against eager, time it with pyperf, profile
every fault-driven variant at hash seq 100 % (as `lazybench profile` does),
and write results/<run>/ with pyperf.json, run.json (cases, counters,
machine, profiles), results.csv, floors.csv, per_page.csv, counters.csv,
phases.csv, phase_histograms.csv, switches.csv, profiles.csv, report.md and
plots/*.png; then print the floors and the headline.

A case is (variant, generator, workload, touched fraction).

The default suite (about 5 minutes on 2 cores): every available variant with
the hash, spin and recurrence generators, the seq, random and strided
workloads, 1 %, 10 % and 100 % touched, on {d.n} elements ({d_pages} pages); warm
and fault-around twins at 100 %; the Python-level cases (hash seq and random
at 1, 10 and 100 %, hash strided and recurrence seq at 100 %; every viewable
variant and the Python thunks) on {d_python_n} elements; every floor.  Variants
that fault on every access run hash, and recurrence in order only.

--quick (about 2.5 minutes): every available variant, hash only, seq and
random, 1 % and 100 % touched, on {q.n} elements ({q_pages} pages); no twin, no
Python-level case; every floor.

--suite fraction (about 3 minutes), the touched-fraction sweep: every
available variant, hash only, seq and random, {f_count} touched fractions
from {f_first} to {f_last} in 1-2-5 steps, on {f.n} elements ({f_pages} pages); no
twin, no Python-level case; every floor; pyperf as for the default suite.

The sweeps (when does laziness pay; README, "The sweeps"), which only
--variants narrows: --suite cost, generator cost per element from hash to
spin 20000 (about 100 us) x 7 touched fractions from 0.1 % to 100 %, random
access, on arrays that shrink as the cost grows; it gives the break-even
against eager (build plus one pass) and feeds `lazybench advise`.  --suite
size, arrays from 1 MiB to 64 GiB, 0.1 % of the pages touched at random, on
the page-based variants and eager (where it fits).  --suite threads, 1 to
the CPUs faulting threads on the same elements or on disjoint slices.
--suite full: the fraction grid and all three sweeps, 3 workers per case.

pyperf runs {d.processes} worker process per benchmark (quick: {q.processes} per case,
{q_floor}), each timing {d.values} values (quick: {q.values}) after {d.warmups}
warm-up, a value lasting at least {d_ms:g} ms (quick: {q_ms:g} ms).
The loops per value are chosen from the verification pass (the least power
of two lasting that long) and stored in plan.json."""


def _floor_workers(p: Any) -> str:
    """Workers per floor, as help texts say it."""
    signal, other = p.processes_for(True), p.processes_for(True, "other")
    return f"{signal} per floor" if signal == other else \
        f"{signal} per signal round trip, {other} per other floor"


def _run_help() -> str:
    from lazybench import _array as core
    from lazybench import _suite as suite

    d, q = suite.PROFILES["default"], suite.PROFILES["quick"]
    f = suite.PROFILES["fraction"]
    return RUN_HELP.format(
        d=d, q=q, f=f, d_pages=d.n // core.PAGE_ELEMENTS,
        q_pages=q.n // core.PAGE_ELEMENTS, f_pages=f.n // core.PAGE_ELEMENTS,
        f_count=len(f.fractions), f_first=f"{f.fractions[0] * 100:g} %",
        f_last=f"{f.fractions[-1] * 100:g} %",
        d_python_n=min(d.n, d.python_n), d_ms=d.min_time * 1000,
        q_ms=q.min_time * 1000, q_floor=_floor_workers(q))


def _build_parser() -> _Parser:
    from lazybench import _array as core
    from lazybench import _compare as compare
    from lazybench import _pythunks as pythunks
    from lazybench import _suite as suite

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
                         description=_run_help(), allow_abbrev=False,
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
                     help="array length in int64 elements (default: the "
                          "suite's, "
                          + ", ".join(f"{p.n} for {name}" for name, p
                                      in suite.PROFILES.items()) + ")")
    run.add_argument("--spin", type=_int_in(0, core.MAX_SPIN),
                     default=suite.DEFAULT_SPIN, metavar="ROUNDS",
                     help=f"mixing rounds per element of the spin generator "
                          f"(default {suite.DEFAULT_SPIN}, at most "
                          f"{core.MAX_SPIN})")
    run.add_argument("--processes", type=_int_in(1, 64), metavar="N",
                     help="pyperf worker processes per case and per floor "
                          "(default: the suite's: "
                          + ", ".join(
                              f"{p.processes} per case and "
                              f"{_floor_workers(p)} for {name}"
                              for name, p in suite.PROFILES.items())
                          + "); a run with other than its suite's is not "
                            "comparable with the suite's baseline")
    run.add_argument("--no-python", action="store_true",
                     help="skip the Python-level cases (the table read "
                          "from Python through views and Python thunks)")
    run.add_argument("--results-dir", type=pathlib.Path,
                     default=pathlib.Path("results"), metavar="DIR",
                     help="where run folders go (default: ./results)")
    run.add_argument("--run-name", metavar="NAME",
                     help="run folder name (default: date-time-suite)")
    run.add_argument("--plan", type=pathlib.Path, help=argparse.SUPPRESS)
    run.add_argument("--save-baseline", action="store_true",
                     help="also store this run as its suite's baseline, "
                          "replacing it: results/baseline for the default "
                          "suite, results/baseline-quick for --quick")

    rep = sub.add_parser("report", allow_abbrev=False,
                         help="rebuild CSV, report and plots of a run folder")
    rep.add_argument("folder", type=pathlib.Path, help="a run folder")

    cmp = sub.add_parser(
        "compare", allow_abbrev=False,
        help="compare two run folders for regressions",
        description="Compare run NEW against run BASE: the cases both "
                    "have, their counters exactly, a normalised time per "
                    "case, the floors in absolute time, and the machine. "
                    "Exit status 0: no regression, 1: a regression, "
                    "2: bad input.")
    cmp.add_argument("base", type=pathlib.Path, help="the reference run "
                     "folder (e.g. results/baseline)")
    cmp.add_argument("new", type=pathlib.Path, help="the run folder to check")
    cmp.add_argument("--threshold", type=_fraction, metavar="FRACTION",
                     default=compare.THRESHOLD,
                     help="growth of a variant's geometric mean of its "
                          "cases' new/base ns per fault over the signal "
                          "floors that counts "
                          f"(default {compare.THRESHOLD:g}, i.e. "
                          f"+{compare.THRESHOLD * 100:g} %%)")
    cmp.add_argument("--element-threshold", type=_fraction,
                     metavar="FRACTION", default=compare.ELEMENT_THRESHOLD,
                     help="the same for the variants that do not fault, "
                          "ns per element over eager's "
                          f"(default {compare.ELEMENT_THRESHOLD:g})")
    cmp.add_argument("--case-threshold", type=_fraction, metavar="FRACTION",
                     default=compare.CASE_THRESHOLD,
                     help="growth of one case's normalised median that "
                          "counts, if the sample ranges do not overlap "
                          f"(default {compare.CASE_THRESHOLD:g})")
    cmp.add_argument("--floor-threshold", type=_fraction,
                     metavar="FRACTION", default=compare.FLOOR_THRESHOLD,
                     help="the same for the floors' and eager's absolute "
                          f"times (default {compare.FLOOR_THRESHOLD:g}, "
                          "i.e. 6 x: they move that much between host "
                          "states)")
    cmp.add_argument("--format", choices=sorted(compare.RENDERERS),
                     default="text", help="output format (default: text)")
    cmp.add_argument("--plot", type=pathlib.Path, metavar="FILE",
                     help="also write a PNG of new/base per case")

    hist = sub.add_parser(
        "history", allow_abbrev=False,
        help="the stored runs of a results folder, with their environment "
             "and a metric's trend per variant",
        description="List the run folders under --results-dir (the stored "
                    "baselines too), oldest first, with kernel, CPU and git "
                    "revision, and one metric per variant on each run's "
                    "reference case (hash, seq, 100 %% where it has it).")
    hist.add_argument("--results-dir", type=pathlib.Path,
                      default=pathlib.Path("results"), metavar="DIR",
                      help="where the run folders are (default: ./results)")
    hist.add_argument("--metric", default="fault_over_sigsegv_floor",
                      help="a numeric column of results.csv (default: "
                           "fault_over_sigsegv_floor)")
    hist.add_argument("--plot", type=pathlib.Path, metavar="FILE",
                      help="also write a PNG: one line per variant")

    prof = sub.add_parser(
        "profile", allow_abbrev=False,
        help="profile one case in depth: where a fault's time goes, and "
             "the switches it costs",
        description="Profile one case of a fault-driven variant: each "
                    "fault's phases (delivery, resolve, resume) timed with "
                    "the TSC, with percentiles; the switch accounting "
                    "(context switches, perf software events checked "
                    "against known counts, signals and system calls counted "
                    "by the core) beside the transition model of the "
                    "mechanism; the floors, measured in the same run; the "
                    "case's cost as a multiple of the bare SIGSEGV round "
                    "trip; the instrumentation's overhead.  Writes "
                    "DIR/profile-<date>-<variant>/ with profile.json, "
                    "phases.csv, phase_histograms.csv (the raw histograms), "
                    "switches.csv, profiles.csv, floors.csv, phases.png "
                    "(stacked phases, floors marked) and latency_cdf.png.")
    prof.add_argument("variant", help="a fault-driven variant")
    prof.add_argument("--generator", default="hash",
                      help="generator (default: hash)")
    prof.add_argument("--workload", default="seq",
                      help="workload (default: seq)")
    prof.add_argument("--touched", type=_percent_list, metavar="PCT",
                      default=(1.0,),
                      help="touched percentage (default: 100)")
    prof.add_argument("--elements", type=_int_in(1, core.MAX_ELEMENTS),
                      default=suite.DEFAULT_N, metavar="N",
                      help=f"array length (default: {suite.DEFAULT_N})")
    prof.add_argument("--results-dir", type=pathlib.Path,
                      default=pathlib.Path("results"), metavar="DIR",
                      help="where the profile folder goes (default: "
                           "./results)")
    prof.add_argument("--name", metavar="NAME",
                      help="profile folder name (default: "
                           "profile-<date>-<time>-<variant>)")

    adv = sub.add_parser(
        "advise", allow_abbrev=False,
        help="the cheapest mechanism here for a touched fraction, a "
             "generator cost and an access pattern",
        description="Print the cheapest mechanism on this machine for "
                    "--touched, --cost and --pattern, and by how much "
                    "(total cost of one array: build plus one pass).  It "
                    "interpolates the newest stored run under --results-dir "
                    "whose cost sweep (--suite cost or full) holds the "
                    "point, or measures the point itself (a few seconds) "
                    "when none does.")
    adv.add_argument("--touched", required=True, metavar="PCT",
                     help="touched percentage, e.g. 5%%")
    adv.add_argument("--cost", required=True, metavar="TIME",
                     help="generator cost per element, e.g. 2us, 500ns")
    adv.add_argument("--pattern", default="random", metavar="WORKLOAD",
                     help="access pattern: a workload "
                          f"({', '.join(core.WORKLOADS)}; default random)")
    adv.add_argument("--results-dir", type=pathlib.Path,
                     default=pathlib.Path("results"), metavar="DIR",
                     help="where stored runs are (default: ./results)")

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
    commands = {"run", "report", "compare", "history", "profile", "advise",
                "list"}
    if not argv or (argv[0] not in commands and argv[0] not in
                    ("-h", "--help", "--version")):
        return ["run", *argv]
    return argv


def cmd_list() -> int:
    from lazybench import _array as core, _pythunks as pythunks

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
    from lazybench import _report as report, _results as results

    _, paths = report.write_report(results.load_run(folder))
    for path in paths:
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lazybench import _compare as compare, _results as results

    done = compare.compare(results.load_run(args.base),
                           results.load_run(args.new),
                           args.threshold, args.floor_threshold,
                           args.case_threshold, args.element_threshold)
    if args.plot is not None:
        compare.write_plot(done, args.plot)
    print(compare.RENDERERS[args.format](done))
    return RUN_ERROR if done.failed else 0


def cmd_history(args: argparse.Namespace) -> int:
    from lazybench import _history as history

    done = history.collect(args.results_dir, args.metric)
    if args.plot is not None:
        history.write_plot(done, args.plot)
    print(history.render(done))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from lazybench import _profframes as profframes
    from lazybench import _profile as profiling
    from lazybench import _profreport as profreport
    from lazybench import _results as results

    if len(args.touched) != 1:
        raise UsageError("--touched: one percentage for a profile")
    try:
        results.check_results_dir(args.results_dir)
    except results.ResultsError as exc:
        raise UsageError(f"--results-dir {args.results_dir}: {exc}") from None
    try:
        done = profiling.profile(args.variant, args.generator, args.workload,
                                 args.touched[0], args.elements)
    except profiling.ProfileError as exc:
        raise UsageError(str(exc)) from None
    record = profframes.record(done)
    folder = profreport.write_folder(record, args.results_dir, args.name)
    print(profreport.text(record))
    print()
    print(f"profile: {folder}/ (phases.csv, phase_histograms.csv, "
          "switches.csv, phases.png, latency_cdf.png)")
    return 0


def cmd_advise(args: argparse.Namespace) -> int:
    from lazybench import _advise as advise

    try:
        print(advise.advise(args.results_dir, args.touched, args.cost,
                            args.pattern))
    except advise.AdviceError as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_run(args: argparse.Namespace, our_argv: list[str],
            pyperf_argv: list[str]) -> int:
    if pyperf_argv:                       # a pyperf worker: the parent's plan
        from lazybench import _runner as runner

        if args.plan is None:
            raise UsageError("a pyperf worker needs --plan")
        runner.work(args.plan, pyperf_argv)
        return 0

    from lazybench import _pipeline as pipeline
    from lazybench import _report as report
    from lazybench import _results as results
    from lazybench import _suite as suite
    from lazybench._progress import Reporter

    try:
        results.check_results_dir(args.results_dir)
    except results.ResultsError as exc:
        raise UsageError(f"--results-dir {args.results_dir}: {exc}") from None
    if args.plan is not None:
        raise UsageError("--plan is only for pyperf's workers")
    plan = suite.plan(args.suite, suite.Selection(
        variants=args.variants, generators=args.generators,
        workloads=args.workloads, fractions=args.touched,
        n=args.elements, spin=args.spin, python=not args.no_python,
        processes=args.processes))
    done = pipeline.run(plan, args.results_dir, args.run_name,
                        args.save_baseline, our_argv, Reporter())
    print(report.terminal(done.frames))
    if done.baseline is not None:
        print(f"baseline: {done.baseline}/")
    print()
    print(f"results: {done.path}/ (report.md, results.csv, plots/)")
    return 0


def _core_missing() -> str | None:
    """Why the C core cannot be imported, in one line, or None.

    The usual cause: lazybench was installed with ``pip install .`` and is
    run from its source folder, whose ``lazybench/`` (with no core built
    in it) comes first on sys.path and hides the installed package."""
    try:
        import lazybench._core  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "lazybench._core":
            raise
        folder = pathlib.Path(__file__).resolve().parent
        return (f"the C core is not built in {folder}; from a source "
                "folder, install with 'pip install -e .' (it builds the "
                "core in place), or run from another folder to use an "
                "installed lazybench")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    missing = _core_missing()
    if missing is not None:
        print(f"lazybench: error: {missing}", file=sys.stderr)
        return USAGE_ERROR
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("lazybench: interrupted", file=sys.stderr)
        return INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    from lazybench._array import LazyBenchError

    raw = list(sys.argv[1:] if argv is None else argv)
    ours, pyperf_argv = _split_worker_args(raw)
    ours = _normalise(ours)
    try:
        args = _build_parser().parse_args(ours)
        if args.command == "list":
            return cmd_list()
        if args.command == "report":
            return cmd_report(args.folder)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "history":
            return cmd_history(args)
        if args.command == "profile":
            return cmd_profile(args)
        if args.command == "advise":
            return cmd_advise(args)
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
    from lazybench._results import ResultsError

    return isinstance(exc, (ResultsError, ValueError))
