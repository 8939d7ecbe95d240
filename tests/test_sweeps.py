"""The sweep suites: named suites of one dimension each (issue: when does
laziness pay): their plans, and small runs of them."""
from __future__ import annotations

import math
import os
import pathlib

import pandas as pd
import pytest

from lazybench import _array as core
from lazybench import _suite as suite
from lazybench import _sweeps as sweeps

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


def available() -> list[str]:
    return [v for v in core.VARIANTS if core.availability(v).available]


def test_cost_sweep_plan() -> None:
    plan = suite.plan("cost")
    levels = sorted({(c.generator, c.spin) for c in plan.cases},
                    key=lambda gs: (gs[0] != "hash", gs[1]))
    assert levels[0][0] == "hash" and len(levels) == len(sweeps.COST_LEVELS)
    spins = [s for g, s in levels if g == "spin"]
    # decades of spin rounds, up to about 100 us (about 4.5 ns a round)
    assert all(b == 10 * a for a, b in zip(spins, spins[1:]))
    assert spins[-1] * 4.5 >= 50_000
    fr = sorted({c.fraction for c in plan.cases})
    assert fr[0] == 0.001 and fr[-1] == 1.0 and len(fr) >= 6
    assert all(2.5 <= b / a <= 3.5 for a, b in zip(fr, fr[1:]))
    # the array shrinks as the generator's cost grows, never below 8 pages
    by_spin = {c.spin: c.n for c in plan.cases if c.generator == "spin"}
    ns = [by_spin[s] for s in spins]
    assert ns == sorted(ns, reverse=True) and ns[0] > ns[-1]
    assert min(ns) >= 8 * core.PAGE_ELEMENTS
    assert all(c.n % core.PAGE_ELEMENTS == 0 for c in plan.cases)
    # eager in every cell, as the break-even's reference
    cells = {(c.spin, c.generator, c.fraction) for c in plan.cases}
    assert cells == {(c.spin, c.generator, c.fraction) for c in plan.cases
                     if c.variant == "eager"}
    assert {c.sweep for c in plan.cases} == {"cost"}


def test_size_sweep_plan_reports_what_does_not_fit() -> None:
    plan = suite.plan("size")
    sizes = sorted({c.n * 8 for c in plan.cases})
    assert sizes[0] == 1 << 20 and sizes[-1] == 1 << 36
    assert 1 << 36 > sweeps.memory_bytes()          # beyond this machine
    assert {c.workload for c in plan.cases} == {"random-pages"}
    for c in plan.cases:
        info = core.variant_info(c.variant)
        assert c.variant == "eager" or (info.granule > 1 and
                                        info.fault_driven), c.name
    eager = [k for k in plan.skipped if k.variant == "eager"]
    assert [k.name for k in eager] == [
        "size/eager/hash/random-pages/0.1%/64GiB"]
    assert eager[0].reason.startswith("does not fit")


def test_threads_sweep_plan() -> None:
    plan = suite.plan("threads")
    counts = sweeps.thread_counts()
    assert counts[0] == 1 and counts[-1] >= 1
    assert not {"uffd-thread-same", "uffd-thread-other"} & {c.variant for c in plan.cases}
    for v in set(available()) - sweeps.THREADS_EXCLUDED:
        mine = [c for c in plan.cases if c.variant == v]
        assert {c.threads for c in mine} == set(counts), v
        if len(counts) > 1:
            assert {c.disjoint for c in mine if c.threads > 1} == \
                {False, True}


def test_sweep_suites_refuse_grid_options() -> None:
    for name in ("size", "threads"):
        with pytest.raises(ValueError, match="does not apply"):
            suite.plan(name, suite.Selection(fractions=(0.5,)))
    with pytest.raises(ValueError, match="does not apply"):
        suite.plan("cost", suite.Selection(n=4096))
    # the cost sweep narrows to patterns and fractions
    narrow = suite.plan("cost", suite.Selection(workloads=("seq",),
                                                fractions=(0.01, 1.0)))
    assert {c.workload for c in narrow.cases} == {"seq"}
    assert {c.fraction for c in narrow.cases} == {0.01, 1.0}
    full = suite.plan("full")
    assert {c.sweep for c in full.cases} == {"", "cost", "size", "threads"}


def test_case_names_of_sweeps() -> None:
    names = [c.name for c in suite.plan("full").cases]
    assert len(names) == len(set(names))
    assert "cost/eager/spin20000/random/0.1%" in names
    assert "size/sigsegv-mprotect/hash/random-pages/0.1%/64GiB" in names


def _page_variant() -> str:
    return "uffd-sigbus" if core.availability("uffd-sigbus").available \
        else "sigsegv-mprotect"


def test_size_sweep_runs_beyond_memory(tmp_path: pathlib.Path) -> None:
    """The size sweep up to 64 GiB on one page-based variant, and eager,
    which does not fit there: the run says so and goes on."""
    variant = _page_variant()
    # as on a machine of 512 MiB: eager holds 256 MiB at most
    proc = run_cli(["run", "--suite", "size", "--variants",
                    f"eager,{variant}", "--processes", "1",
                    "--results-dir", str(tmp_path), "--run-name", "s"],
                   env={**os.environ, sweeps.MEMORY_ENV: "512M"})
    assert proc.returncode == 0, proc.stderr
    for size in ("4GiB", "64GiB"):
        assert f"size/eager/hash/random-pages/0.1%/{size} skipped: does " \
            "not fit" in proc.stderr
    df = pd.read_csv(tmp_path / "s" / "results.csv")
    big = df[(df.variant == variant) & (df.n == 1 << 33)]
    assert list(big.fraction) == [sweeps.SIZE_FRACTION]
    row = big.iloc[0]
    # 0.1 % of 16.8 million pages, each faulted once, checked against the
    # generator's values; far less resident than the array
    assert row.faults == row.touched_pages > 16_000
    assert 0 < row.peak_rss_bytes < 2 << 30
    assert sorted(df[df.variant == "eager"].n * 8) == \
        [s for s in sweeps.SIZES if s <= 256 << 20]
    report = (tmp_path / "s" / "report.md").read_text()
    assert "64GiB: does not fit" in report
    assert (tmp_path / "s" / "plots" / "size.png").exists()


def test_threads_sweep_runs(tmp_path: pathlib.Path) -> None:
    proc = run_cli(["run", "--suite", "threads", "--variants",
                    "eager,sigsegv-mprotect", "--processes", "1",
                    "--results-dir", str(tmp_path), "--run-name", "t"])
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "t" / "results.csv")
    counts = sweeps.thread_counts()
    mp = df[df.variant == "sigsegv-mprotect"]
    assert sorted(set(mp.threads)) == list(counts)
    # every page faults once however many threads read it
    pages = sweeps.THREADS_N_PAGES // core.PAGE_ELEMENTS
    assert (mp.pages_materialised == pages).all()
    assert "## Thread scaling" in (tmp_path / "t" / "report.md").read_text()
    assert (tmp_path / "t" / "plots" / "threads.png").exists()


def test_cost_sweep_gives_the_break_even(tmp_path: pathlib.Path) -> None:
    proc = run_cli(["run", "--suite", "cost", "--variants", "eager,swcheck",
                    "--workloads", "seq", "--touched", "3,100",
                    "--processes", "1", "--results-dir", str(tmp_path),
                    "--run-name", "c"])
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "c"
    be = pd.read_csv(folder / "breakeven.csv")
    assert set(be.variant) == {"swcheck"}
    assert len(be) == len(sweeps.COST_LEVELS)
    assert set(be.verdict) <= {"below", "above", "always", "never"}
    # every total is build plus the pass, from one row of results.csv
    df = pd.read_csv(folder / "results.csv")
    assert (abs(df.total_ns - df.build_ns - df.time_s * 1e9)
            <= 1e-6 * df.total_ns).all()
    eager = df[df.variant == "eager"]
    assert (eager.build_ns > 0).all()
    for name in ("breakeven_seq.png", "cheapest_seq.png"):
        assert (folder / "plots" / name).exists()
    # advise reads this run for a point of its grid
    adv = run_cli(["advise", "--touched", "10%", "--cost", "1us",
                   "--pattern", "seq", "--results-dir", str(tmp_path)])
    assert adv.returncode == 0, adv.stderr
    assert "cheapest here:" in adv.stdout
    assert f"stored run {folder}" in adv.stdout
