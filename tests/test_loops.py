"""pyperf's loops, chosen in the managing process: from the verification
pass for a case, from one loop timed there for a floor.  pyperf then
starts one worker per benchmark, none to calibrate loops."""
from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from lazybench import _suite as suite
from lazybench import _verify as verify
from lazybench._case import Case

from conftest import run_python

MIN_TIME = 0.025                       # seconds, the default profile's


@pytest.mark.parametrize("pass_ns", [1, 7, 999, 12_345, 3_000_000,
                                     MIN_TIME * 1e9 / 2 - 1])
def test_cheap_pass_gets_the_least_power_of_two_lasting_min_time(
        pass_ns: int) -> None:
    loops = suite.choose_loops(pass_ns, MIN_TIME)
    assert loops >= 2 and loops & (loops - 1) == 0       # a power of two
    assert loops * pass_ns >= MIN_TIME * 1e9              # lasts min_time
    assert loops // 2 * pass_ns < MIN_TIME * 1e9          # the least one


@pytest.mark.parametrize("pass_ns", [MIN_TIME * 1e9, 10 ** 9, 10 ** 12])
def test_long_pass_gets_one_loop(pass_ns: int) -> None:
    assert suite.choose_loops(int(pass_ns), MIN_TIME) == 1


def test_loops_stay_within_pyperfs_limit() -> None:
    assert suite.choose_loops(0, 10.0) == suite.MAX_LOOPS


def _plan(cases: int = 3) -> suite.Plan:
    profile = dataclasses.replace(suite.PROFILES["default"],
                                  min_time=MIN_TIME)
    return suite.Plan(
        profile,
        tuple(Case("eager", "hash", "seq", f, 4096)
              for f in (0.01, 0.1, 1.0)[:cases]),
        ("null-syscall", "mprotect"))


def test_plan_stores_its_loops_and_loads_them_back(
        tmp_path: pathlib.Path) -> None:
    plan = _plan()
    assert plan.loops == ()
    assert set(plan.benchmark_loops().values()) == {0}   # pyperf calibrates
    timed = plan.with_loops([10 ** 9, 1000, 5], [2_000_000, 10 ** 8])
    min_ns = timed.profile.min_time * 1e9
    loops = timed.benchmark_loops()
    assert list(loops) == plan.benchmark_names()
    assert loops["floor/null-syscall"] == 16        # 2 ms: 16 lasts 25 ms
    assert loops["floor/mprotect"] == 1
    assert loops[plan.cases[0].name] == 1
    assert loops[plan.cases[1].name] * 1000 >= min_ns
    assert loops[plan.cases[2].name] * 5 >= min_ns
    timed.save(tmp_path / "plan.json")
    stored = json.loads((tmp_path / "plan.json").read_text())
    assert stored["loops"] == loops                 # by benchmark name
    assert suite.Plan.load(tmp_path / "plan.json") == timed
    plan.save(tmp_path / "untimed.json")
    assert suite.Plan.load(tmp_path / "untimed.json").loops == ()


def test_floors_may_keep_pyperfs_calibration() -> None:
    loops = _plan().with_loops([1, 1, 1]).benchmark_loops()
    assert loops["floor/null-syscall"] == loops["floor/mprotect"] == 0


def test_loop_times_must_match_the_plan() -> None:
    with pytest.raises(ValueError, match="2 loop times for 3 cases"):
        _plan().with_loops([1, 2])
    with pytest.raises(ValueError, match="1 loop times for 2 floors"):
        _plan().with_loops([1, 2, 3], [4])


class _FakeSubject:
    """A subject whose timed loops take `ns` each."""

    def __init__(self, ns: int) -> None:
        self.ns = ns
        self.timed: list[int] = []

    def time(self, loops: int) -> int:
        self.timed.append(loops)
        return loops * self.ns


def _case(warm: bool = False) -> Case:
    return Case("sigsegv-mprotect", "hash", "seq", 1.0, 4096, warm=warm)


def test_long_pass_is_the_loop_time_without_timing_more() -> None:
    """A pass of a second gets one loop whatever else is timed."""
    subject = _FakeSubject(1)
    passes = {"first": 10 ** 9, "second": 10}
    assert verify.loop_ns(_case(), subject, passes, MIN_TIME) == 10 ** 9
    assert subject.timed == []


def test_warm_case_takes_the_second_pass() -> None:
    subject = _FakeSubject(1)
    passes = {"first": 10, "second": 10 ** 9}
    assert verify.loop_ns(_case(warm=True), subject, passes,
                          MIN_TIME) == 10 ** 9
    assert subject.timed == []


def test_slow_pass_is_timed_again_and_the_faster_kept() -> None:
    """A pass of 30 ms (one loop) that was an outlier: one more loop
    takes 2 ms, so the loops are chosen from 2 ms."""
    subject = _FakeSubject(2 * 10 ** 6)
    passes = {"first": 30 * 10 ** 6, "second": 100}
    assert verify.loop_ns(_case(), subject, passes, MIN_TIME) == 2 * 10 ** 6
    assert subject.timed == [1]
    # an outlier in the second timing does not count
    subject = _FakeSubject(90 * 10 ** 6)
    assert verify.loop_ns(_case(), subject, passes, MIN_TIME) == 30 * 10 ** 6


def test_short_pass_is_timed_again_over_more_loops() -> None:
    """A cold first pass of 4 us whose later loops take 1 us: the loops
    are chosen from the later ones, timed over an eighth of what the
    first pass gives."""
    subject = _FakeSubject(1000)
    passes = {"first": 4000, "second": 100}
    ns = verify.loop_ns(_case(), subject, passes, MIN_TIME)
    assert ns == 1000
    assert subject.timed == [suite.choose_loops(4000, MIN_TIME)
                             // verify.SAMPLE_DIVISOR]
    loops = suite.choose_loops(ns, MIN_TIME)
    assert loops * 1000 >= MIN_TIME * 1e9


# A run in a fresh interpreter that records every worker pyperf starts.
COUNT_WORKERS = """
import json, pathlib, sys
from pyperf import _manager

started = []
worker_cmd = _manager.Manager.worker_cmd

def counted(self, *args):
    cmd = worker_cmd(self, *args)
    started.append(cmd)
    return cmd

_manager.Manager.worker_cmd = counted

from lazybench import _pipeline as pipeline, _suite as suite

plan = suite.plan("default", suite.Selection(
    variants=("eager", "sigsegv-mprotect", "py-closure"),
    generators=("hash",), workloads=("seq",), fractions=(0.01, 1.0),
    n=8192))
done = pipeline.run(plan, pathlib.Path(sys.argv[1]))
print(json.dumps({"run": str(done.path), "started": started}))
"""


def _option(cmd: list[str], name: str) -> str | None:
    for k, arg in enumerate(cmd):
        if arg == name:
            return cmd[k + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def test_one_worker_per_benchmark_with_the_plans_loops(
        tmp_path: pathlib.Path) -> None:
    proc = run_python(COUNT_WORKERS, argv=[str(tmp_path)], timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    plan = suite.Plan.load(pathlib.Path(out["run"]) / "plan.json")
    loops = plan.benchmark_loops()
    assert all(n >= 1 for n in loops.values())
    # C cases, their warm and fault-around twins, Python-level cases
    assert {(c.level, c.warm, c.fault_around != 1) for c in plan.cases} == \
        {("c", False, False), ("c", True, False), ("c", False, True),
         ("python", False, False)}
    started = out["started"]
    # every benchmark once, in order, and no calibration worker
    assert len(started) == len(plan.benchmark_names())
    assert [_option(cmd, "--worker-task") for cmd in started] == \
        [str(k) for k in range(len(started))]
    assert not any("--calibrate-loops" in cmd for cmd in started)
    assert [int(_option(cmd, "--loops") or 0) for cmd in started] == \
        list(loops.values())
    # pyperf.json says the same: one run per benchmark, with those loops
    import pyperf
    bench = pyperf.BenchmarkSuite.load(str(pathlib.Path(out["run"]) /
                                           "pyperf.json"))
    for name, n in loops.items():
        runs = bench.get_benchmark(name).get_runs()
        assert [r.get_loops() for r in runs] == [n], name
    # the verification pass's time of one loop is in run.json
    meta = json.loads((pathlib.Path(out["run"]) / "run.json").read_text())
    for rec, case in zip(meta["cases"], plan.cases):
        assert rec["loop_ns"] > 0 and rec["pass_ns"]["first"] > 0
        assert loops[case.name] == suite.choose_loops(
            rec["loop_ns"], plan.profile.min_time)

