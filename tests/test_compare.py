"""compare BASE NEW: synthetic runs made from one small real run by editing
its pyperf.json and run.json."""
from __future__ import annotations

import json
import pathlib
import shutil
import statistics
import subprocess
from typing import Any, Callable

import pytest

from lazybench import _compare as compare, _results as results
from lazybench._suite import PROFILES

from conftest import assert_one_line_error, run_cli

WORKERS = 2
BASE_RUN = ["run", "--quick", "--variants", "eager,sigsegv-mprotect,swcheck",
            "--workloads", "seq", "--elements", "4096", "--no-python",
            "--processes", str(WORKERS)]
SLOWED = "sigsegv-mprotect"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("results")
    proc = run_cli([*BASE_RUN, "--results-dir", str(folder),
                    "--run-name", "base"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return folder / "base"


def _copy(base: pathlib.Path, tmp_path: pathlib.Path,
          name: str = "new") -> pathlib.Path:
    return pathlib.Path(shutil.copytree(base, tmp_path / name))


def _edit(path: pathlib.Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _scale_variant(data: dict[str, Any], variant: str,
                   factor: float) -> None:
    for bench in data["benchmarks"]:
        if bench["metadata"]["name"].split("/")[0] == variant:
            for run in bench["runs"]:
                if "values" in run:
                    run["values"] = [v * factor for v in run["values"]]


def _compare(base: pathlib.Path, new: pathlib.Path,
             *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["compare", str(base), str(new), *extra])


def _case_names(folder: pathlib.Path, variant: str) -> list[str]:
    meta = json.loads((folder / "run.json").read_text())
    return [rec["name"] for rec in meta["cases"]
            if rec["case"]["variant"] == variant]


def test_identical_runs_pass(base: pathlib.Path,
                             tmp_path: pathlib.Path) -> None:
    proc = _compare(base, _copy(base, tmp_path))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "no regression" in proc.stdout
    assert "warning" not in proc.stdout
    assert proc.stderr == ""


def test_slower_variant_regresses(base: pathlib.Path,
                                  tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    _edit(new / "pyperf.json", lambda d: _scale_variant(d, SLOWED, 3))
    proc = _compare(base, new)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    variants = _section(proc.stdout, "Variants")
    assert _row(variants, SLOWED).endswith("REGRESSED")
    assert "+200.0 %" in _row(variants, SLOWED)
    assert not _row(variants, "swcheck").endswith("REGRESSED")
    named = _section(proc.stdout, "Cases of the regressed variants")
    slowed = _case_names(base, SLOWED)
    assert slowed
    for name in slowed:
        assert "+200.0 %" in _row(named, name)
        assert _row(named, name).endswith("variant REGRESSED")
    for name in _case_names(base, "swcheck"):
        assert name not in named
    # 3 x is within one case's threshold (4 x): no case regressed by itself
    assert _section(proc.stdout, "Case regressions").endswith(": none")


def test_one_case_beyond_case_threshold(base: pathlib.Path,
                                        tmp_path: pathlib.Path) -> None:
    """One case 5 x slower, the variant's other cases unchanged: the case
    regressed by itself."""
    new = _copy(base, tmp_path)
    name = _case_names(base, "swcheck")[0]

    def slow_one(data: dict[str, Any]) -> None:
        for bench in data["benchmarks"]:
            if bench["metadata"]["name"] == name:
                for run in bench["runs"]:
                    if "values" in run:
                        run["values"] = [v * 5 for v in run["values"]]

    _edit(new / "pyperf.json", slow_one)
    proc = _compare(base, new)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    row = _row(_section(proc.stdout, "Case regressions"), name)
    assert "+400.0 %" in row and row.endswith("REGRESSED")


def _section(out: str, title: str) -> str:
    """The lines of one section of compare's text output."""
    return out.split(f"\n{title}")[1].split("\n\n")[0]


def _row(section: str, first: str) -> str:
    rows = [ln for ln in section.splitlines()
            if ln.split() and ln.split()[0] == first]
    assert len(rows) == 1, section
    return rows[0].rstrip()


@pytest.mark.parametrize("factor,fails", [(1.5, True), (1.2, False)])
def test_variant_slowdown_below_case_threshold(
        base: pathlib.Path, tmp_path: pathlib.Path, factor: float,
        fails: bool) -> None:
    """A slowdown of every case of a variant by less than the case
    threshold fails through the variant's geometric mean, beyond +35 %
    only, and the failure names the variant's cases."""
    new = _copy(base, tmp_path)
    _edit(new / "pyperf.json", lambda d: _scale_variant(d, SLOWED, factor))
    proc = _compare(base, new)
    assert proc.returncode == (1 if fails else 0), proc.stderr + proc.stdout
    assert _section(proc.stdout, "Case regressions").endswith(": none")
    row = _row(_section(proc.stdout, "Variants"), SLOWED)
    assert f"+{(factor - 1) * 100:.1f} %" in row
    assert row.endswith("REGRESSED") == fails
    named = _section(proc.stdout, "Cases of the regressed variants")
    for name in _case_names(base, SLOWED):
        assert (name in named) == fails


def test_variant_ratio_is_the_geometric_mean() -> None:
    M = compare.Metric

    def case(ratio: float) -> compare.Verdict:
        return compare.Verdict("c", "m", M("k", 1.0, (1.0,)),
                               M("k", ratio, (ratio,)), 1.0, None)

    even = compare.VariantVerdict("v", (case(2.0), case(0.5)), 0.35)
    up = compare.VariantVerdict("v", (case(1.5), case(1.4), case(1.3)),
                                0.35)
    down = compare.VariantVerdict("v", (case(0.5), case(0.8)), 0.35)
    assert even.ratio == pytest.approx(1.0) and not even.regressed
    assert up.ratio == pytest.approx((1.5 * 1.4 * 1.3) ** (1 / 3))
    assert up.regressed and not up.improved
    assert down.improved and not down.regressed


def test_comparison_object(base: pathlib.Path,
                           tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    _edit(new / "pyperf.json", lambda d: _scale_variant(d, SLOWED, 3))
    c = compare.compare(results.load_run(base), results.load_run(new))
    by_name = {v.name: v for v in c.metrics}
    # every lazy case has one normalised metric; eager's are absolute
    assert set(by_name) == set(_case_names(base, SLOWED) +
                               _case_names(base, "swcheck"))
    assert {v.name for v in c.absolute} >= set(_case_names(base, "eager"))
    for name in _case_names(base, SLOWED):
        v = by_name[name]
        assert not v.regressed      # 3 x: within one case's threshold
        assert v.base.kind == compare.PER_FAULT
        assert v.ratio == pytest.approx(3)
        # one figure per pyperf worker, the best of them the frame's
        assert len(v.base.samples) == len(v.new.samples) == WORKERS
        assert min(v.base.samples) == pytest.approx(v.base.median)
    for name in _case_names(base, "swcheck"):
        v = by_name[name]
        assert v.base.kind == compare.PER_ELEMENT
        assert v.ratio == pytest.approx(1)
        assert not v.regressed
        # one figure per pyperf value, their median the frame's
        assert len(v.new.samples) == WORKERS * PROFILES["quick"].values
        assert statistics.median(v.new.samples) == \
            pytest.approx(v.new.median)
    assert c.failed and not c.counters
    assert [v.variant for v in c.regressed_variants] == [SLOWED]


def test_changed_counter_listed_first(base: pathlib.Path,
                                      tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    name = _case_names(base, SLOWED)[0]

    def more_faults(meta: dict[str, Any]) -> None:
        rec = next(r for r in meta["cases"] if r["name"] == name)
        rec["counters"]["faults"] += 1

    _edit(new / "run.json", more_faults)
    proc = _compare(base, new)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    first = proc.stdout.split("Variants")[0]
    assert "Changed counters (each a regression): 1" in first
    assert name in first and "faults per touched page" in first


def test_changed_kernel_warns(base: pathlib.Path,
                              tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    old = json.loads((base / "run.json").read_text())["machine"]["kernel"]
    _edit(new / "run.json",
          lambda m: m["machine"].update(kernel="9.9.9-test"))
    proc = _compare(base, new)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    warnings = [ln for ln in proc.stdout.splitlines()
                if ln.startswith("warning:")]
    assert warnings == [f"warning: environment differs: kernel: {old} -> "
                        "9.9.9-test"]


def test_tsc_within_one_percent_is_no_change() -> None:
    assert compare.environment({"tsc_hz": 1e9}, {"tsc_hz": 1.005e9}) == []
    assert [c.what for c in compare.environment(
        {"tsc_hz": 1e9}, {"tsc_hz": 1.02e9})] == ["tsc_hz"]
    assert [c.what for c in compare.environment(
        {"mitigations": {"mds": "a", "l1tf": "x"}},
        {"mitigations": {"mds": "b", "l1tf": "x"}})] == ["mitigations.mds"]


def _drop_case(folder: pathlib.Path, name: str) -> None:
    _edit(folder / "run.json", lambda m: m.update(
        cases=[r for r in m["cases"] if r["name"] != name]))
    _edit(folder / "pyperf.json", lambda d: d.update(
        benchmarks=[b for b in d["benchmarks"]
                    if b["metadata"].get("name") != name]))


def test_cases_on_one_side_listed(base: pathlib.Path,
                                  tmp_path: pathlib.Path) -> None:
    gone, added = _case_names(base, "swcheck")[:2]
    old, new = _copy(base, tmp_path, "old"), _copy(base, tmp_path, "new")
    _drop_case(new, gone)
    _drop_case(old, added)
    assert results.load_run(new) and results.load_run(old)
    proc = _compare(old, new)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    one_side = proc.stdout.split("Cases on one side only")[1]
    assert f"{gone} (n=4096)" in one_side and "base only" in one_side
    assert f"{added} (n=4096)" in one_side and "new only" in one_side


def test_no_case_in_common(base: pathlib.Path,
                           tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    _edit(new / "run.json", lambda m: [r["case"].update(n=1)
                                       for r in m["cases"]])
    assert_one_line_error(_compare(base, new), "no case in common")


@pytest.mark.parametrize("damage,needle", [
    ("missing", "no such run folder"),
    ("corrupt", "run.json: not valid JSON"),
    ("foreign", "not this run's benchmarks"),
])
def test_bad_input_one_line_exit_2(base: pathlib.Path, tmp_path: pathlib.Path,
                                   damage: str, needle: str) -> None:
    new = _copy(base, tmp_path)
    if damage == "missing":
        shutil.rmtree(new)
    elif damage == "corrupt":
        (new / "run.json").write_text('{"format": 1, "cases": [')
    else:       # the pyperf.json of another run: one case renamed
        _edit(new / "pyperf.json", lambda d: d["benchmarks"][-1]
              ["metadata"].update(name="other/hash/seq/1%"))
    assert_one_line_error(_compare(base, new), needle)
    assert_one_line_error(_compare(new, base), needle)


@pytest.mark.parametrize("argv,needle", [
    (["--threshold", "-1"], "at least 0"),
    (["--floor-threshold", "x"], "not a number"),
    (["--case-threshold", "-0.5"], "at least 0"),
    (["--format", "html"], "invalid choice"),
])
def test_bad_options(base: pathlib.Path, argv: list[str],
                     needle: str) -> None:
    assert_one_line_error(_compare(base, base, *argv), needle)


def test_markdown_table(base: pathlib.Path, tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    _edit(new / "pyperf.json", lambda d: _scale_variant(d, SLOWED, 3))
    proc = _compare(base, new, "--format", "markdown")
    assert proc.returncode == 1, proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    header = "| case | metric | base | new | change | t-test | verdict |"
    assert header in lines
    assert lines[lines.index(header) + 1] == "|---|---|---|---|---|---|---|"
    assert any(ln.startswith(f"| {_case_names(base, SLOWED)[0]} |")
               and ln.endswith("| variant REGRESSED |") for ln in lines)
    assert any(ln.startswith(f"| {SLOWED} |") and
               ln.endswith("| REGRESSED |") for ln in lines)


def test_plot(base: pathlib.Path, tmp_path: pathlib.Path) -> None:
    new = _copy(base, tmp_path)
    _edit(new / "pyperf.json", lambda d: _scale_variant(d, SLOWED, 3))
    png = tmp_path / "change.png"
    proc = _compare(base, new, "--plot", str(png))
    assert proc.returncode == 1, proc.stderr + proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()
            if p.name.startswith(".")] == []     # no temporary file left
    import matplotlib.pyplot as plt

    c = compare.compare(results.load_run(base), results.load_run(new))
    fig = compare.figure(c)
    try:
        bars = fig.axes[0].patches
        assert len(bars) == len(c.metrics) == 4
        red = compare.flagged(c)
        assert red == set(_case_names(base, SLOWED))
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert set(labels) == {v.name for v in c.metrics}
        for bar, label in zip(bars, labels):
            is_red = bar.get_facecolor()[:3] == pytest.approx(
                (0.839, 0.153, 0.157), abs=1e-2)
            assert is_red == (label in red)
        assert fig.axes[0].get_xscale() == "log"
    finally:
        plt.close(fig)


def test_decision_rule_needs_ranges_apart() -> None:
    M = compare.Metric
    far = compare.Verdict("c", "m", M("k", 1.0, (0.9, 1.1)),
                          M("k", 2.0, (1.9, 2.1)), 0.5, None)
    overlap = compare.Verdict("c", "m", M("k", 1.0, (0.9, 1.1, 1.0)),
                              M("k", 2.0, (1.0, 2.0, 3.0)), 0.5, None)
    small = compare.Verdict("c", "m", M("k", 1.0, (0.9, 1.1)),
                            M("k", 1.4, (1.3, 1.5)), 0.5, None)
    faster = compare.Verdict("c", "m", M("k", 2.0, (1.9, 2.1)),
                             M("k", 1.0, (0.9, 1.1)), 0.5, None)
    assert far.regressed and not far.improved
    assert not overlap.regressed
    assert not small.regressed
    assert faster.improved and not faster.regressed


def test_significance_needs_two_samples_each() -> None:
    assert compare.significance([1.0], [2.0, 3.0]) is None
    assert compare.significance([1.0, 1.1], [5.0, 5.1]) is True
    assert compare.significance([1.0, 2.0], [1.0, 2.0]) is False
