"""The report's per-variant tables: one results.csv row per cell."""
from __future__ import annotations

import dataclasses
import pathlib
import random

import pandas as pd
import pytest

from lazybench import _format as fmt, _frames as frames, _headline as headline
from lazybench import _report as report, _results as results

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


# -- the report's shape and its headline ----------------------------------

@pytest.fixture(scope="module")
def run_frames() -> frames.Frames:
    return frames.Frames.of(results.load_run(BASELINE))


def _md_tables(text: str) -> list[list[str]]:
    """Header rows of the markdown tables in `text`."""
    heads, previous = [], ""
    for line in text.splitlines():
        if line.startswith("|") and not previous.startswith("|"):
            heads.append([c.strip() for c in line.strip("|").split("|")])
        previous = line
    return heads


def test_no_report_table_is_wider_than_ten_columns(
        run_frames: frames.Frames) -> None:
    text = report.markdown(run_frames, [])
    heads = _md_tables(text)
    assert len(heads) > 10
    assert max(len(h) for h in heads) <= report.MAX_COLUMNS
    # the long tables are CSV files now: the report is a few screens (with
    # the profile's sections, a row per profiled variant in each table)
    assert len(text.splitlines()) < 480
    assert "per_page.csv" in text and "counters.csv" in text


def test_the_report_opens_with_a_headline_of_one_screen(
        run_frames: frames.Frames) -> None:
    text = report.markdown(run_frames, [])
    sections = text.split("\n## ")
    assert sections[1].startswith("Headline\n")
    head = sections[1]
    # one screen: its table and sentences, at most 40 lines as printed
    assert len(head.splitlines()) <= 40
    printed = report.terminal(run_frames).split("\nHeadline:\n")[1]
    assert len(printed.splitlines()) <= 60
    assert max(len(line) for line in printed.splitlines()) <= 100


def test_every_headline_figure_is_one_results_row(
        run_frames: frames.Frames) -> None:
    df = run_frames.cases
    head = headline.build(df, run_frames.floors)
    assert head is not None and head.c_ref is not None
    assert (head.c_ref.generator, head.c_ref.workload,
            head.c_ref.fraction) == ("hash", "seq", 1.0)
    refs = {"c": (head.c_ref, False), "warm": (head.c_ref, True),
            "python": (head.python_ref, False)}
    cells = 0
    for row in head.table.itertuples(index=False):
        rec = row._asdict()
        for col, (which, source) in headline.SOURCES.items():
            ref, warm = refs[which]
            assert ref is not None
            m = df[(df.variant == rec["variant"]) & (df.level == ref.level) &
                   (df.generator == ref.generator) &
                   (df.workload == ref.workload) &
                   (df.fraction == ref.fraction) & (df.warm == warm) &
                   (df.fault_around == 1)]
            if m.empty:
                assert rec[col] != rec[col], (rec["variant"], col)  # NaN
                continue
            assert len(m) == 1
            assert rec[col] == m[source].iloc[0], (rec["variant"], col)
            cells += 1
    assert cells > 60
    # one row per mechanism's variant, the comparison-only ones left out
    assert "sigsegv-redirect-essay" not in set(head.table.variant)
    assert {"eager", "swcheck", "mprotect", "redirect", "uffd",
            "python"} <= set(head.table.mechanism)
    assert len(head.sentences) == 7    # the fastest page, then one each


def _scaled(df: pd.DataFrame, variant: str, factor: float) -> pd.DataFrame:
    df = df.copy()
    rows = (df.variant == variant) & (df.level == "c")
    for col in ("ns_per_touched_page", "ns_per_touched_element",
                "page_over_sigsegv_floor", "x_eager"):
        df.loc[rows, col] = df.loc[rows, col] * factor
    return df


def test_the_sentences_follow_the_figures(run_frames: frames.Frames) -> None:
    """Generated, not written: change the figures and the finding
    changes with them."""
    df = run_frames.cases
    uffd = df[(df.level == "c") & df.variant.str.startswith("uffd-") &
              ~df.warm & (df.fault_around == 1) &
              (df.generator == "hash") & (df.workload == "seq") &
              (df.fraction == 1.0)].sort_values("ns_per_touched_page")
    cheapest, dearest = uffd.variant.iloc[0], uffd.variant.iloc[-1]
    before = headline.build(df, run_frames.floors)
    assert before is not None
    said = next(s for s in before.sentences if "userfaultfd" in s)
    assert said.startswith(f"{cheapest} costs least")
    # make the dearest the cheapest
    factor = (uffd.ns_per_touched_page.iloc[0] /
              uffd.ns_per_touched_page.iloc[-1]) / 2
    after = headline.build(_scaled(df, dearest, factor), run_frames.floors)
    assert after is not None
    said = next(s for s in after.sentences if "userfaultfd" in s)
    assert said.startswith(f"{dearest} costs least")
    page = float(uffd.ns_per_touched_page.iloc[-1]) * factor
    assert f"{fmt.sig(page)} ns per page" in said


def test_a_duplicate_headline_case_raises(run_frames: frames.Frames) -> None:
    df = run_frames.cases
    twice = pd.concat([df, df[df.variant == "swcheck"]])
    with pytest.raises(ValueError, match="2 results rows for swcheck"):
        headline.build(twice, run_frames.floors)


def test_a_run_without_the_preferred_case_still_gets_a_headline(
        run_frames: frames.Frames) -> None:
    df = run_frames.cases
    df = df[(df.workload == "random") & (df.generator == "hash")]
    head = headline.build(df, run_frames.floors)
    assert head is not None and head.c_ref is not None
    assert head.c_ref.workload == "random" and head.c_ref.fraction == 1.0
    assert "random workload" in report.markdown(
        dataclasses.replace(run_frames, cases=df), [])


@pytest.mark.parametrize("keys,groups", [
    (["a"], None), (["a", "b"], [["c", "d"], ["e"]]),
    (["a", "b", "c"], [["d", "e", "f", "g", "h", "i", "j", "k", "l"]])])
def test_split_columns_keeps_every_column_once(
        keys: list[str], groups: list[list[str]] | None) -> None:
    cols = list("abcdefghijklmnopq")
    table = pd.DataFrame([range(len(cols))], columns=cols)
    parts = report.split_columns(table, keys, groups)
    assert all(list(p.columns[:len(keys)]) == keys for p in parts)
    assert all(len(p.columns) <= report.MAX_COLUMNS for p in parts)
    rest = [c for p in parts for c in p.columns[len(keys):]]
    assert sorted(rest) == sorted(c for c in cols if c not in keys)


def test_split_by_variant_keeps_eager_in_every_part() -> None:
    from lazybench import _families as families
    variants = list(families.known_variants())
    table = pd.DataFrame([range(3 + len(variants))],
                         columns=["g", "w", "t", *variants])
    parts = report.split_by_variant(table, ["g", "w", "t"])
    assert all(p.columns[3] == "eager" for p in parts)
    assert all(len(p.columns) <= report.MAX_COLUMNS for p in parts)
    shown = [c for p in parts for c in p.columns[3:] if c != "eager"]
    assert sorted(shown) == sorted(v for v in variants if v != "eager")
    for p in parts:           # a family is never cut in two when it fits
        fams = [families.family_of(v).key for v in p.columns[4:]]
        assert fams == sorted(fams, key=fams.index)


def test_sig_has_three_significant_digits_and_no_exponent() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        v = 10 ** rng.uniform(-6, 10) * rng.choice((1, -1))
        text = fmt.sig(v)
        assert "e" not in text
        back = float(text.replace(",", ""))
        assert abs(back - v) <= abs(v) * 5e-3, (v, text)
        digits = text.replace(",", "").replace("-", "").replace(".", "")
        assert len(digits.strip("0")) <= 3, (v, text)
    assert fmt.sig(float("nan")) == fmt.MISSING


def test_headline_leaves_out_columns_the_run_has_no_rows_for(
        run_frames: frames.Frames) -> None:
    df = run_frames.cases
    c_only = df[(df.level == "c") & ~df.warm]
    head = headline.build(c_only, run_frames.floors)
    assert head is not None
    assert list(head.table.columns) == ["mechanism", "variant", "page_ns",
                                        "page_x_sig", "elem_ns", "x_eager"]
    printed = report.terminal(dataclasses.replace(run_frames, cases=c_only))
    assert "warm_x" not in printed and "py_ns" not in printed


def _page_rows(df: pd.DataFrame) -> pd.DataFrame:
    pages = [v for v in set(df.variant) if v in report.core.VARIANTS
             and report.core.variant_info(v).page_mechanism]
    return df[(df.level == "c") & df.variant.isin(pages) & ~df.warm &
              (df.fault_around == 1) & (df.generator == "hash") &
              (df.workload == "seq") & (df.fraction == 1.0)
              ].sort_values("ns_per_touched_page")


def test_the_headline_names_the_fastest_lazy_page(
        run_frames: frames.Frames) -> None:
    df = run_frames.cases
    pages = _page_rows(df)
    assert len(pages) >= 2
    first = headline.build(df, run_frames.floors)
    assert first is not None
    said = first.sentences[0]
    fastest, slowest = pages.variant.iloc[0], pages.variant.iloc[-1]
    assert said.startswith(f"The fastest lazy page here is {fastest}'s: "
                           f"{fmt.sig(pages.ns_per_touched_page.iloc[0])} "
                           "ns per page")
    # make the slowest the fastest: the sentence follows
    factor = (pages.ns_per_touched_page.iloc[0] /
              pages.ns_per_touched_page.iloc[-1]) / 2
    after = headline.build(_scaled(df, slowest, factor), run_frames.floors)
    assert after is not None
    assert after.sentences[0].startswith(
        f"The fastest lazy page here is {slowest}'s")


def test_the_page_table_has_one_row_per_page_mechanism(
        run_frames: frames.Frames) -> None:
    df = run_frames.cases
    table = report.page_budget_table(df[df.level == "c"], run_frames.floors)
    pages = _page_rows(df)
    assert table.variant.tolist() == pages.variant.tolist()
    assert table.ns_per_touched_page.tolist() == \
        pages.ns_per_touched_page.tolist()
    floor = frames.floor_lookup(run_frames.floors)
    for row in table.itertuples():
        info = report.core.variant_info(row.variant)
        if info.joint_floor:
            # NaN where the run predates the joint floor (not measured)
            least = floor(info.joint_floor) + floor("page-compute")
            assert row.least_ns == pytest.approx(least, nan_ok=True)
            assert row.over_least == pytest.approx(
                row.ns_per_touched_page / least, nan_ok=True)
        else:
            assert row.least == "" and row.over_least != row.over_least
