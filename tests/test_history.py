"""history: the stored runs of a results folder, their environment, and a
metric per variant, each value one results.csv cell of its run."""
from __future__ import annotations

import json
import pathlib
import shutil

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lazybench import _format as fmt, _history as history

from conftest import assert_one_line_error, run_cli

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "results"


@pytest.fixture()
def results_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "results"
    for name in ("baseline", "baseline-quick"):
        shutil.copytree(RESULTS / name, folder / name)
    bad = folder / "broken"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    (folder / "not-a-run").mkdir()
    return folder


def _reference_cells(folder: pathlib.Path, metric: str) -> dict[str, float]:
    df = pd.read_csv(folder / "results.csv")
    ref = df[(df.level == "c") & (df.generator == "hash") &
             (df.workload == "seq") & (df.fraction == 1.0) & ~df.warm &
             (df.fault_around == 1)]
    return {str(r.variant): float(getattr(r, metric))
            for r in ref.itertuples() if getattr(r, metric) ==
            getattr(r, metric)}


def test_every_value_is_its_runs_results_cell(
        results_dir: pathlib.Path) -> None:
    h = history.collect(results_dir)
    # oldest first, by when each stored run was made
    made = {name: json.loads((results_dir / name / "run.json").read_text())
            ["created"] for name in ("baseline", "baseline-quick")}
    assert [e.name for e in h.entries] == sorted(made, key=made.get)
    assert len(h.skipped) == 1 and h.skipped[0].startswith("broken: ")
    for e in h.entries:
        cells = _reference_cells(results_dir / e.name, history.DEFAULT_METRIC)
        assert e.values == pytest.approx(cells, rel=1e-12)
        assert "sigsegv-mprotect" in e.values and "eager" not in e.values
        assert e.environment["kernel"] != "-"
    # another metric: eager has it
    h = history.collect(results_dir, "ns_per_touched_element")
    for e in h.entries:
        assert e.values == pytest.approx(_reference_cells(
            results_dir / e.name, "ns_per_touched_element"), rel=1e-12)


def test_cli_prints_runs_and_trend(results_dir: pathlib.Path) -> None:
    proc = run_cli(["history", "--results-dir", str(results_dir),
                    "--plot", str(results_dir / "trend.png")])
    assert proc.returncode == 0, proc.stderr
    assert "2 runs, oldest first." in proc.stdout
    assert "skipped broken: " in proc.stdout
    cells = _reference_cells(results_dir / "baseline",
                             history.DEFAULT_METRIC)
    assert fmt.sig(cells["sigsegv-mprotect"]) in proc.stdout
    assert (results_dir / "trend.png").stat().st_size > 1000


def test_figure_has_one_line_per_variant(results_dir: pathlib.Path) -> None:
    h = history.collect(results_dir)
    fig = history.figure(h)
    try:
        lines = fig.axes[0].get_lines()
        variants = {v for e in h.entries for v in e.values}
        assert sorted(ln.get_label() for ln in lines) == sorted(variants)
        keys = {(ln.get_color(), ln.get_marker(), ln.get_linestyle())
                for ln in lines}
        assert len(keys) == len(lines)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("argv,needle", [
    (["--metric", "no_such_column"], "unknown metric 'no_such_column'"),
    (["--metric", "variant"], "unknown metric 'variant'"),
])
def test_bad_metric_is_one_line(argv: list[str], needle: str,
                                results_dir: pathlib.Path) -> None:
    proc = run_cli(["history", "--results-dir", str(results_dir), *argv])
    assert_one_line_error(proc, needle)


def test_no_runs_is_one_line(tmp_path: pathlib.Path) -> None:
    for where, needle in ((tmp_path / "missing", "no such results folder"),
                          (tmp_path, "no readable run folder")):
        proc = run_cli(["history", "--results-dir", str(where)])
        assert_one_line_error(proc, needle)
