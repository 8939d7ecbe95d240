"""The sweep suites: named suites of one dimension each (issue: when does
laziness pay).  The touched-fraction sweep so far."""
from __future__ import annotations

import math
import pathlib

import pandas as pd

from lazybench import _array as core
from lazybench import _suite as suite

from conftest import run_cli


def test_fraction_sweep_plan() -> None:
    plan = suite.plan("fraction")
    prof = plan.profile
    fr = prof.fractions
    assert fr[0] == 0.001 and fr[-1] == 1.0 and len(fr) == 10
    # log steps: 1-2-5 per decade, every ratio between 2 and 2.5
    assert all(2 <= b / a <= 2.5 for a, b in zip(fr, fr[1:]))
    available = [v for v in core.VARIANTS if core.availability(v).available]
    assert sorted({c.variant for c in plan.cases}) == sorted(available)
    assert {c.generator for c in plan.cases} == {"hash"}
    assert {c.workload for c in plan.cases} == {"seq", "random"}
    assert {c.fraction for c in plan.cases} == set(fr)
    assert {c.level for c in plan.cases} == {"c"}          # no Python level
    assert all(c.n == suite.DEFAULT_N for c in plan.cases)
    assert len(plan.cases) == len(available) * 2 * len(fr)
    # even the least fraction reads at least one element
    assert math.ceil(fr[0] * suite.DEFAULT_N) >= 1


def test_fraction_sweep_runs(tmp_path: pathlib.Path) -> None:
    proc = run_cli(["run", "--suite", "fraction", "--variants",
                    "eager,sigsegv-mprotect", "--workloads", "seq",
                    "--elements", "4096", "--processes", "1",
                    "--results-dir", str(tmp_path), "--run-name", "f"])
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "f" / "results.csv")
    for v in ("eager", "sigsegv-mprotect"):
        got = sorted(df[df.variant == v].fraction)
        assert got == list(suite.PROFILES["fraction"].fractions), v
    assert (tmp_path / "f" / "plots" / "time_per_element_hash.png").exists()
