"""The figures as objects, from the baseline run: every series has its own
(colour, marker, line style) within a figure, every variant keeps its style
in every figure, no axes is empty, the legend is outside the axes, and the
floors are drawn where the unit is per touched page."""
from __future__ import annotations

import dataclasses
import pathlib

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest

from lazybench import _array as core, _frames as frames, _plots as plots
from lazybench import _pythunks as pythunks, _results as results

BASELINE = pathlib.Path(__file__).resolve().parent.parent / "results" / \
    "baseline"


@pytest.fixture(scope="module")
def fr() -> frames.Frames:
    return frames.Frames.of(results.load_run(BASELINE))


@pytest.fixture(scope="module")
def figs(fr: frames.Frames):
    out = list(plots.figures(fr.cases, fr.floors))
    yield out
    for _, fig in out:
        plt.close(fig)


def _key(line) -> tuple:
    return (mcolors.to_rgba(line.get_color()), line.get_marker(),
            line.get_linestyle())


def _series(ax) -> list:
    """Lines of variants (floors have no marker)."""
    return [ln for ln in ax.get_lines() if ln.get_marker() not in
            ("None", None, "", " ")]


def test_figure_names(figs) -> None:
    names = [n for n, _ in figs]
    assert len(names) == len(set(names))
    for name in ("time_per_element_hash.png", "time_per_element_spin.png",
                 "time_per_element_recurrence.png",
                 "python_time_per_element_hash.png",
                 "python_time_per_element_recurrence.png"):
        assert name in names
    for v in (*core.VARIANTS, *pythunks.KINDS):
        assert f"variant_{v}.png" in names


def test_lines_are_distinct_within_a_figure(figs) -> None:
    for name, fig in figs:
        styles: dict[tuple, str] = {}
        for ax in fig.axes:
            for line in ax.get_lines():
                label = line.get_label()
                key = _key(line)
                assert styles.setdefault(key, label) == label, \
                    (name, label, styles[key])


def test_no_axes_is_empty(figs) -> None:
    for name, fig in figs:
        assert fig.axes, name
        for ax in fig.axes:
            assert ax.has_data() and _series(ax), (name, ax.get_title())
            lo, hi = ax.get_xlim()
            xs = [x for ln in _series(ax) for x in ln.get_xdata()]
            assert 0 < lo < min(xs) <= max(xs) < hi, (name, ax.get_title())
            assert hi / lo < 1000, (name, ax.get_title())


def test_every_variant_keeps_its_style(figs) -> None:
    seen: dict[str, tuple] = {}
    for name, fig in figs:
        for ax in fig.axes:
            for line in _series(ax):
                key = _key(line)
                assert seen.setdefault(line.get_label(), key) == key, \
                    (name, line.get_label())
    assert set(seen) == set(core.VARIANTS) | set(pythunks.KINDS)
    assert len(set(seen.values())) == len(seen)


def test_single_fraction_panel_shows_every_variant(figs, fr) -> None:
    fig = dict(figs)["python_time_per_element_hash.png"]
    strided = [ax for ax in fig.axes if ax.get_title().startswith("strided")]
    assert len(strided) == 1
    labels = {ln.get_label() for ln in _series(strided[0])}
    py = fr.level("python")
    assert labels == set(py[py.workload == "strided"].variant)
    lo, hi = strided[0].get_xlim()
    assert lo < 100 < hi


def test_legend_outside_the_axes(figs) -> None:
    for name, fig in figs:
        fig.canvas.draw()
        assert len(fig.legends) == 1, name
        box = fig.legends[0].get_window_extent()
        for ax in fig.axes:
            assert ax.get_legend() is None
            assert not box.overlaps(ax.get_window_extent()), name


def test_family_colours() -> None:
    st = plots.styles()
    hue = {v: mcolors.rgb_to_hsv(mcolors.to_rgb(s.color))[0]
           for v, s in st.items()}
    fam = {v: s.family for v, s in st.items()}
    assert fam["eager"] == fam["eager-handles"] == "eager"
    assert fam["sigsegv-mprotect"] == "mprotect"
    assert {fam[v] for v in core.VARIANTS if v.startswith("uffd-")} == \
        {"uffd"}
    assert {fam[v] for v in pythunks.KINDS} == {"python"}
    for a in st:
        for b in st:
            if fam[a] == fam[b] and fam[a] != "eager":
                d = abs(hue[a] - hue[b])
                assert min(d, 1 - d) < 0.02, (a, b)
            elif fam[a] != fam[b]:
                assert st[a].color != st[b].color


def test_unknown_variants_get_distinct_styles() -> None:
    st = plots.styles(["brand-new", "another-one", "uffd-new"])
    assert st["brand-new"].family == "other"
    assert st["uffd-new"].family == "uffd"
    assert len({s.key() for s in st.values()}) == len(st)
    # the known variants' styles do not move
    assert {v: s for v, s in st.items() if v in plots.styles()} == \
        plots.styles()


def test_floors_on_per_page_panels(figs, fr) -> None:
    fig = dict(figs)["variant_sigsegv-mprotect.png"]
    parts = core.variant_info("sigsegv-mprotect").parts
    want = sorted([fr.floor("sigsegv-roundtrip"),
                   sum(fr.floor(p) for p in parts)])
    per_page = [ax for ax in fig.axes
                if ax.get_subplotspec().rowspan.start == 1]
    assert per_page
    for ax in per_page:
        floors = sorted(ln.get_ydata()[0] for ln in ax.get_lines()
                        if ln not in _series(ax))
        assert floors == pytest.approx(want)
    for ax in fig.axes:                  # none on per-element panels
        if ax.get_subplotspec().rowspan.start == 0:
            assert len(ax.get_lines()) == len(_series(ax))


def test_write_plots(fr, tmp_path) -> None:
    # one variant of each kind of plot (the PNGs take a second each; the
    # figures of every variant are checked above without writing them)
    keep = ["eager", "sigsegv-mprotect", "uffd-sigbus", "py-closure"]
    few = dataclasses.replace(fr, cases=fr.cases[fr.cases.variant.isin(keep)])
    before = len(plt.get_fignums())
    with plt.rc_context({"figure.max_open_warning": 0}):
        written = plots.write_plots(few, tmp_path)
    assert all(p.exists() and p.parent == tmp_path / "plots"
               for p in written)
    expected = []
    for name, fig in plots.figures(few.cases, few.floors):
        expected.append(name)
        plt.close(fig)
    assert sorted(p.name for p in written) == sorted(expected)
    assert len(written) == 5 + len(keep)
    assert len(plt.get_fignums()) == before       # every figure closed


def test_an_unknown_variant_is_plotted_in_its_own_style(fr) -> None:
    cases = fr.cases.replace({"variant": {"swcheck": "mystery"}})
    with plt.rc_context({"figure.max_open_warning": 0}):
        figs = list(plots.figures(cases[cases.level == "c"], fr.floors))
    try:
        names = [n for n, _ in figs]
        assert "variant_mystery.png" in names
        for name, fig in figs:
            keys = {}
            for ax in fig.axes:
                assert ax.has_data()
                for line in ax.get_lines():
                    assert keys.setdefault(_key(line), line.get_label()) \
                        == line.get_label(), name
        assert plots.styles(["mystery"])["mystery"].family == "other"
    finally:
        for _, fig in figs:
            plt.close(fig)
