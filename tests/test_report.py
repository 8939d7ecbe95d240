"""The report's per-variant tables: one results.csv row per cell."""
from __future__ import annotations

import pathlib

import pandas as pd
import pytest

from lazybench import _frames as frames, _report as report, _results as results

BASELINE = pathlib.Path(__file__).resolve().parent.parent / "results" / \
    "baseline"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return frames.Frames.of(results.load_run(BASELINE)).cases


def test_summary_cells_are_rows_of_one_level(frame: pd.DataFrame) -> None:
    for level in ("c", "python"):
        part = frame[frame.level == level]
        table = report.summary_table(part)
        first = part[~part.warm & (part.fault_around == 1)]
        assert table.notna().sum().sum() == len(first)
        for row in first.itertuples():
            cell = table.loc[(row.generator, row.workload,
                              report.format_fraction(row.fraction)),
                             row.variant]
            assert cell == row.ns_per_touched_element


def test_a_duplicate_case_raises_instead_of_averaging(
        frame: pd.DataFrame) -> None:
    both = frame[~frame.warm & (frame.fault_around == 1)]
    both = both.assign(level="c")          # C and Python rows share keys
    with pytest.raises(ValueError):
        report.summary_table(both)
