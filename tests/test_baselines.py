"""The stored baselines are runs of the suites as they are now.

A change to a suite's cases, or to how pyperf times them (workers, values,
minimum time), re-saves that suite's baseline in the same commit
(``python -m lazybench run [--quick] --save-baseline``), with the reason in
the commit message: otherwise the CI gate compares different things.
"""
from __future__ import annotations

import pathlib

import pytest

from lazybench._suite import Plan, plan

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"


@pytest.mark.parametrize("profile,folder", [("quick", "baseline-quick"),
                                            ("default", "baseline")])
def test_stored_baseline_is_the_suite(profile: str, folder: str) -> None:
    stored = Plan.load(RESULTS / folder / "plan.json")
    now = plan(profile)
    resave = (f"results/{folder} is not a run of the {profile} suite as it "
              f"is now: re-save it with `python -m lazybench run "
              f"--suite {profile} --save-baseline`")
    assert stored.profile == now.profile, resave
    # variants this machine cannot run are missing from `now` only
    missing = {u.variant for u in now.unavailable}
    assert [c for c in stored.cases if c.variant not in missing] == \
        list(now.cases), resave
    assert set(now.floors) <= set(stored.floors), resave
