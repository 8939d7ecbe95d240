"""The command line: bad input gets one line and exit 2; a small run writes
a complete run folder; report rebuilds it; nothing touches the baseline."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import pandas as pd
import psutil
import pyperf
import pytest

from lazybench import _array as core, _format as fmt
from lazybench import _headline as headline, _suite as suite

from conftest import assert_one_line_error, run_cli

SMALL_RUN = ["run", "--suite", "default", "--variants",
             "eager,sigsegv-mprotect,py-closure",
             "--generators", "hash,recurrence",
             "--workloads", "seq,strided", "--touched", "10,100",
             "--elements", "65536"]

# one C case and the floors: the smallest run that reaches pyperf
TINY_RUN = ["run", "--quick", "--variants", "eager", "--workloads", "seq",
            "--touched", "100", "--elements", "4096", "--no-python",
            "--processes", "1"]


@pytest.mark.parametrize("argv,needle", [
    (["run", "--variants", "nope"], "unknown variant 'nope'"),
    (["--generators", "nope"], "unknown generator 'nope'"),
    (["run", "--workloads", "nope"], "unknown workload 'nope'"),
    (["run", "--touched", "0"], "not in (0, 100]"),
    (["run", "--touched", "abc"], "not a percentage"),
    (["run", "--elements", "-5"], "must be at least 1"),
    (["run", "--spin", str(core.MAX_SPIN + 1)],
     f"must be at most {core.MAX_SPIN}"),
    (["run", "--spin", "10000000"], f"must be at most {core.MAX_SPIN}"),
    (["run", "--elements", str(1 << 40)], "above the core's limit"),
    (["run", "--elements", str(1 << 36)], "does not fit"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "unrecognized arguments"),
    (["report", "no/such/folder"], "no such run folder"),
    (["run", "--plan", "plan.json"], "only for pyperf's workers"),
    # the quick suite has no Python-level case
    (["run", "--quick", "--variants", "py-closure"], "nothing to run"),
    (["run", "--variants", "py-closure", "--no-python"], "nothing to run"),
])
def test_bad_input_one_line_exit_2(argv: list[str], needle: str,
                                   tmp_path: pathlib.Path) -> None:
    proc = run_cli([*argv, *(["--results-dir", str(tmp_path)]
                             if argv[0] in ("run", "--generators") else [])],
                   cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lazybench: error:")
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())     # no run folder left behind


def test_spin_limit_is_the_cores() -> None:
    core.LazyArray("eager", 1, "hash", spin=core.MAX_SPIN).release()
    with pytest.raises(ValueError, match="spin"):
        core.LazyArray("eager", 1, "hash", spin=core.MAX_SPIN + 1)


def _tree(root: pathlib.Path) -> list[str]:
    return sorted(os.path.join(d, n) for d, dirs, files in os.walk(root)
                  for n in dirs + files)


@pytest.mark.parametrize("where,needle", [
    ("file.txt", "file.txt: not a folder"),
    ("file.txt/sub", "file.txt is not a folder"),
    ("missing/sub", "parent folder does not exist"),
    ("results/baseline", "is a baseline folder"),
    ("results/plots/../baseline", "is a baseline folder"),
    ("results/baseline/plots", "is a baseline folder"),
    ("link", "is a baseline folder"),          # a symlink to it
    ("fresh/baseline", "is a baseline folder"),  # none stored yet
    ("fresh/baseline-quick", "is a baseline folder"),
])
def test_bad_results_dir_refused_before_any_work(
        where: str, needle: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / "file.txt").write_text("a file\n")
    baseline = tmp_path / "results" / "baseline"
    (baseline / "plots").mkdir(parents=True)
    (baseline / "run.json").write_text("{}")
    (tmp_path / "link").symlink_to(baseline)
    (tmp_path / "fresh").mkdir()
    before = _tree(tmp_path)
    proc = run_cli([*TINY_RUN, "--results-dir", where], cwd=tmp_path)
    assert_one_line_error(proc, f"--results-dir {where}: ")
    assert needle in proc.stderr
    assert _tree(tmp_path) == before


# Places no process can create a folder in, root included: permission
# bits would not stop root.
@pytest.mark.skipif(not pathlib.Path("/proc/self").is_dir(),
                    reason="needs /proc")
@pytest.mark.parametrize("where", ["/proc/self", "/proc/lazybench-results"])
def test_unwritable_results_dir_refused(where: str,
                                        tmp_path: pathlib.Path) -> None:
    proc = run_cli([*TINY_RUN, "--results-dir", where], cwd=tmp_path)
    assert_one_line_error(proc, "cannot create folders in /proc")
    assert not any(tmp_path.iterdir())


def test_ctrl_c_exits_130_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, while a
    pyperf worker is starting."""
    results = tmp_path / "results"
    results.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lazybench", *TINY_RUN,
         "--results-dir", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        assert proc.stderr is not None
        seen = ""
        while "timing" not in seen:            # the pyperf phase began
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        parent = psutil.Process(proc.pid)
        while not parent.children():           # a worker is starting
            assert proc.poll() is None, seen
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    progress = re.compile(r"^(verifying|timing) \d+/\d+ ")
    assert [ln for ln in err.strip().splitlines()
            if not progress.match(ln)] == ["lazybench: interrupted"]
    assert list(results.iterdir()) == []       # no run, no temporary folder
    left = [p for p in psutil.process_iter(["cmdline"])
            if str(results) in " ".join(p.info["cmdline"] or ())]
    assert left == []


def test_list_shows_availability() -> None:
    proc = run_cli(["list"])
    assert proc.returncode == 0
    assert "sigsegv-mprotect" in proc.stdout
    assert "available" in proc.stdout


def test_help_documents_commands() -> None:
    proc = run_cli(["run", "--help"])
    assert proc.returncode == 0
    for word in ("--quick", "--variants", "--touched", "--save-baseline",
                 "report.md"):
        assert word in proc.stdout


def test_run_help_states_each_suites_size() -> None:
    proc = run_cli(["run", "--help"])
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for profile in suite.PROFILES.values():
        assert f"on {profile.n} elements " \
               f"({profile.n // core.PAGE_ELEMENTS} pages)" in text
        assert f"{profile.n} for {profile.name}" in text   # --elements
    assert f"at least {suite.PROFILES['default'].min_time * 1000:g} ms" \
        in text


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    results = tmp_path_factory.mktemp("results")
    proc = run_cli([*SMALL_RUN, "--results-dir", str(results),
                    "--run-name", "small"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Headline:" in proc.stdout
    (results / "stderr.txt").write_text(proc.stderr)
    (results / "stdout.txt").write_text(proc.stdout)
    return results


def test_progress_counts_every_case_and_benchmark(
        small_run: pathlib.Path) -> None:
    """Not a terminal: one plain line per step, numbered k/N, and no
    pyperf line per benchmark."""
    names = suite.Plan.load(small_run / "small" / "plan.json")
    lines = (small_run / "stderr.txt").read_text().splitlines()
    for phase, expected in (("verifying", [c.name for c in names.cases]),
                            ("timing", names.benchmark_names())):
        steps = [ln for ln in lines if ln.startswith(phase + " ")
                 and "/" in ln.split()[1]]
        total = len(expected)
        assert [ln.split()[1] for ln in steps] == \
            [f"{k}/{total}" for k in range(1, total + 1)]
        assert [ln.split()[2].rstrip(",") for ln in steps] == expected
    assert "Mean +- std dev" not in (small_run / "stdout.txt").read_text()


def test_run_writes_complete_folder(small_run: pathlib.Path) -> None:
    assert sorted(p.name for p in small_run.iterdir()
                  if p.is_dir()) == ["small"]
    folder = small_run / "small"
    for name in ("pyperf.json", "run.json", "results.csv", "floors.csv",
                 "per_page.csv", "counters.csv",
                 "report.md", "plots/time_per_element_hash.png",
                 "plots/time_per_element_recurrence.png"):
        assert (folder / name).exists(), name
    df = pd.read_csv(folder / "results.csv")
    py = df[df.level == "python"]
    df = df[df.level == "c"]
    assert "py-closure" not in set(df.variant)   # a Python-level kind only
    # the default Python plan cut to the selection: hash seq 10 % and
    # 100 %, hash strided 100 %, recurrence seq 100 %; three variants
    assert len(py) == 4 * 3
    assert set(py.variant) == {"eager", "sigsegv-mprotect", "py-closure"}
    assert (py.n == 32768).all()
    assert (py.ns_per_touched_element > 0).all()
    pmp = py[py.variant == "sigsegv-mprotect"]
    assert (pmp.faults_per_touched_page == 1).all()
    assert (folder / "plots/python_time_per_element_hash.png").exists()
    assert (~df.warm & (df.fault_around == 1)).sum() == 2 * 2 * 2 * 2
    assert df.warm.sum() == 2 * 2             # 100 % touched, hash only
    assert (df.fault_around != 1).sum() == 3   # mprotect seq: 4, 16, auto
    assert (df.fault_around == -1).sum() == 1
    assert df["values"].min() >= 1
    mp = df[(df.variant == "sigsegv-mprotect") & ~df.warm
            & (df.fault_around == 1)]
    assert (mp.faults_per_touched_page == 1).all()
    assert (mp.second_pass_faults == 0).all()
    assert (df[df.variant == "eager"].faults == 0).all()
    assert (df.ns_per_touched_element > 0).all()
    floors = pd.read_csv(folder / "floors.csv")
    # the common floors and sigsegv-mprotect's own, not the others'
    assert set(floors.floor) == set(suite.run_floors(
        ["eager", "sigsegv-mprotect"]))
    assert {"null-syscall", "mprotect", "sigsegv-roundtrip", "first-touch",
            "page-compute", "sigsegv-open"} <= set(floors.floor)
    assert not {"decode", "sigbus-copy", "uffdio-continue"} & \
        set(floors.floor)
    assert (floors.ns_per_op > 0).all()
    report = (folder / "report.md").read_text()
    assert "![time_per_element_hash](plots/time_per_element_hash.png)" in report
    assert "## ns per touched element, read from Python, first pass" in report
    # the workers timed the plan the parent stored, case for case
    plan = suite.Plan.load(folder / "plan.json")
    meta = json.loads((folder / "run.json").read_text())
    assert [c.name for c in plan.cases] == [r["name"] for r in meta["cases"]]
    assert plan.benchmark_names() == [
        b.get_name() for b in pyperf.BenchmarkSuite.load(
            str(folder / "pyperf.json")).get_benchmarks()]
    assert "## Best lazy C variant against the best Python thunk" in report
    # the long tables are CSVs: results.csv's rows, fewer columns
    c_rows = pd.read_csv(folder / "results.csv")
    c_rows = c_rows[c_rows.level == "c"]
    per_page = pd.read_csv(folder / "per_page.csv")
    lazy = c_rows[c_rows.variant != "eager"]
    assert len(per_page) == len(lazy)
    assert per_page.ns_per_touched_page.tolist() == \
        lazy.ns_per_touched_page.tolist()
    counters = pd.read_csv(folder / "counters.csv")
    assert counters.faults.tolist() == c_rows.faults.tolist()
    assert not (small_run / "baseline").exists()
    raw = (folder / "pyperf.json").read_text()
    assert "python_executable" not in raw and sys.executable not in raw


def test_report_rebuilds(small_run: pathlib.Path) -> None:
    folder = small_run / "small"
    (folder / "report.md").unlink()
    (folder / "results.csv").unlink()
    proc = run_cli(["report", str(folder)])
    assert proc.returncode == 0, proc.stderr
    assert (folder / "report.md").exists()
    assert len(pd.read_csv(folder / "results.csv")) == 23 + 12


def test_corrupt_run_file_is_one_line(small_run: pathlib.Path,
                                      tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    proc = run_cli(["report", str(bad)])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "run.json: not valid JSON" in proc.stderr
    shutil.copy(small_run / "small" / "run.json", bad / "run.json")
    (bad / "pyperf.json").write_text("[]")
    proc = run_cli(["report", str(bad)])
    assert proc.returncode == 2
    assert "pyperf.json: not a pyperf result" in proc.stderr


def test_existing_run_name_is_refused(small_run: pathlib.Path) -> None:
    proc = run_cli([*SMALL_RUN, "--results-dir", str(small_run),
                    "--run-name", "small"])
    assert proc.returncode == 2
    assert "already exists" in proc.stderr


def _tree_bytes(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_save_baseline_only_when_asked_and_per_suite(
        tmp_path: pathlib.Path) -> None:
    small = ["--variants", "eager", "--workloads", "seq", "--touched", "100",
             "--elements", "4096", "--processes", "1",
             "--results-dir", str(tmp_path)]
    quick = ["run", "--quick", *small]
    default = ["run", "--suite", "default", "--generators", "hash",
               "--no-python", *small]
    assert run_cli([*quick, "--run-name", "a"]).returncode == 0
    assert not (tmp_path / "baseline").exists()
    assert not (tmp_path / "baseline-quick").exists()
    # the quick suite's baseline is its own folder
    proc = run_cli([*quick, "--run-name", "b", "--save-baseline"])
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "baseline-quick" / "run.json").read_text())
    assert meta["name"] == "b" and meta["profile"] == "quick"
    assert not (tmp_path / "baseline").exists()
    proc = run_cli([*default, "--run-name", "c", "--save-baseline"])
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "baseline" / "run.json").read_text())
    assert meta["name"] == "c" and meta["profile"] == "default"
    stored = {b: _tree_bytes(tmp_path / b)
              for b in ("baseline", "baseline-quick")}
    # runs without the flag, of either suite, leave both byte for byte
    assert run_cli([*quick, "--run-name", "d"]).returncode == 0
    assert run_cli([*default, "--run-name", "e"]).returncode == 0
    # and saving one suite's baseline leaves the other's
    proc = run_cli([*quick, "--run-name", "f", "--save-baseline"])
    assert proc.returncode == 0, proc.stderr
    assert _tree_bytes(tmp_path / "baseline") == stored["baseline"]
    assert _tree_bytes(tmp_path / "baseline-quick") != \
        stored["baseline-quick"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "b", "baseline", "baseline-quick", "c", "d", "e", "f"]
    # neither can be a run's folder or its results folder
    for name in ("baseline", "baseline-quick"):
        proc = run_cli([*quick, "--run-name", name])
        assert proc.returncode == 2 and "invalid run name" in proc.stderr
        proc = run_cli(["run", "--quick", "--variants", "eager",
                        "--results-dir", str(tmp_path / name)])
        assert proc.returncode == 2 and "baseline folder" in proc.stderr


def test_bench_script_runs_under_pyperf(tmp_path: pathlib.Path) -> None:
    import subprocess
    import sys

    import pyperf

    script = pathlib.Path(__file__).parent.parent / "bench" / "bench_lazy.py"
    out = tmp_path / "lazy.json"
    proc = subprocess.run(
        [sys.executable, str(script), "-p", "1", "-n", "1", "-w", "0",
         "--min-time", "0.001", "--variants",
         "eager,sigsegv-mprotect,py-closure", "--python-level",
         "--generators", "hash", "--workloads", "seq", "--touched", "100",
         "--elements", "4096", "-o", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    names = pyperf.BenchmarkSuite.load(str(out)).get_benchmark_names()
    assert "sigsegv-mprotect/hash/seq/100%" in names
    assert "floor/sigsegv-roundtrip" in names
    assert {"py/py-closure/hash/seq/100%",
            "py/sigsegv-mprotect/hash/seq/100%"} <= set(names)


def _copy_run(small_run: pathlib.Path, to: pathlib.Path) -> pathlib.Path:
    folder = shutil.copytree(small_run / "small", to / "copy")
    (folder / "report.md").unlink()
    return folder


def _edit_json(path: pathlib.Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(*path: Any, to: Any = None) -> Callable[[Any], None]:
    """An edit that sets (or, without `to`, deletes) the item at `path`."""
    def change(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        if to is None:
            del data[path[-1]]
        else:
            data[path[-1]] = to
    return change


@pytest.mark.parametrize("change,needle", [
    (_set("cases", 0, "case"), "run.json: cases[0]: no 'case'"),
    (_set("cases", 3, "case", "fraction", to="all"),
     "cases[3].case.fraction: a number expected, got str"),
    (_set("cases", 1, to=5), "cases[1]: an object expected, got int"),
    (_set("cases", 2, "counters", "faults"), "cases[2].counters: no 'faults'"),
    (_set("cases", 0, "case", "n", to=True),
     "cases[0].case.n: an integer expected, got bool"),
    (_set("cases", 4, "rusage", to=[]), "cases[4].rusage: an object expected"),
    (_set("cases", to={}), "cases: a list expected"),
    (_set("machine", to="x86_64"), "machine: an object expected"),
    (_set("format", to=2), "not a lazybench run file"),
    (lambda m: m["cases"].append(m["cases"][0]), "listed twice"),
    (_set("format"), "not a lazybench run file"),
])
def test_malformed_run_file_is_one_line(
        change: Callable[[Any], None], needle: str,
        small_run: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = _copy_run(small_run, tmp_path)
    _edit_json(folder / "run.json", change)
    proc = run_cli(["report", str(folder)])
    assert_one_line_error(proc, needle)
    assert not (folder / "report.md").exists()


@pytest.mark.parametrize("text", ["[1, 2]", '"a run"', "", "\x00\xff"])
def test_run_file_not_a_json_object_is_one_line(
        text: str, small_run: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = _copy_run(small_run, tmp_path)
    (folder / "run.json").write_text(text, encoding="latin-1")
    proc = run_cli(["report", str(folder)])
    assert_one_line_error(proc, "run.json: not ")


def _rename_cases(data: Any) -> None:          # as another run's would be
    for bench in data["benchmarks"]:
        name = bench["metadata"]["name"]
        if not name.startswith("floor/"):
            bench["metadata"]["name"] = name.replace("/", "/other-", 1)


def _add_benchmark(data: Any) -> None:
    extra = json.loads(json.dumps(data["benchmarks"][-1]))
    extra["metadata"]["name"] = "eager/spin/seq/100%"
    data["benchmarks"].append(extra)


def _no_values(data: Any) -> None:
    for run in data["benchmarks"][-1]["runs"]:
        run.pop("values", None)


@pytest.mark.parametrize("change,needle", [
    (_rename_cases, "not this run's benchmarks: 35 of "),   # 35 cases
    (lambda d: d["benchmarks"].pop(), "not this run's benchmarks: 1 of "),
    (_add_benchmark, "1 not in the run (first 'eager/spin/seq/100%')"),
    (_no_values, "has no values"),
])
def test_pyperf_file_of_another_run_is_one_line(
        change: Callable[[Any], None], needle: str,
        small_run: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = _copy_run(small_run, tmp_path)
    _edit_json(folder / "pyperf.json", change)
    proc = run_cli(["report", str(folder)])
    assert_one_line_error(proc, "pyperf.json: ")
    assert needle in proc.stderr
    assert not (folder / "report.md").exists()


def _terminal_tables(stdout: str) -> dict[str, list[list[str]]]:
    """The tables the run printed, by section title: rows of
    whitespace-split cells, the header first.  A section's table starts at
    its header line (first cell 'floor' or 'variant') and ends at a blank
    line."""
    tables: dict[str, list[list[str]]] = {}
    title: str | None = None
    rows: list[list[str]] | None = None
    for line in stdout.splitlines():
        if not line.strip():
            rows = None
        elif rows is not None:
            rows.append(line.split())
        elif line.endswith(":") and line[:1].isupper():
            title = line[:-1]
        elif title is not None and title not in tables and \
                line.split()[0] in ("floor", "variant"):
            rows = tables[title] = [line.split()]
    return tables


def test_every_figure_printed_is_its_results_csv_row(
        small_run: pathlib.Path) -> None:
    folder = small_run / "small"
    df = pd.read_csv(folder / "results.csv")
    floors = pd.read_csv(folder / "floors.csv").set_index("floor")
    stdout = (small_run / "stdout.txt").read_text()
    tables = _terminal_tables(stdout)
    assert sorted(tables) == ["Floors (ns per operation)", "Headline"]
    rows = tables["Floors (ns per operation)"]
    assert rows[0] == ["floor", "ns_per_op"]
    assert [r[0] for r in rows[1:]] == list(floors.index)
    for r in rows[1:]:
        assert r[1] == format(floors.loc[r[0], "ns_per_op"], ".1f"), r
    # the headline: each cell is one row's column, on the reference cases
    rows = tables["Headline"]
    assert rows[0] == ["variant", *headline.SOURCES]
    assert [r[0] for r in rows[1:]] == ["eager", "sigsegv-mprotect",
                                        "py-closure"]
    level = {"c": ("c", False), "warm": ("c", True),
             "python": ("python", False)}
    checked = 0
    for r in rows[1:]:
        for cell, (which, column) in zip(r[1:], headline.SOURCES.values()):
            lv, warm = level[which]
            # SMALL_RUN has hash; seq at 100 % is the reference case
            match = df[(df.level == lv) & (df.variant == r[0]) &
                       (df.generator == "hash") & (df.workload == "seq") &
                       (df.fraction == 1.0) & (df.warm == warm) &
                       (df.fault_around == 1)]
            if cell == "-":
                assert match.empty, (r, which)
                continue
            assert len(match) == 1, (r, which)
            assert cell == fmt.sig(float(match[column].iloc[0])), (r, which)
            checked += 1
    # eager and sigsegv-mprotect: 4 first-pass, 2 warm and 2 Python
    # columns; py-closure: the 2 Python ones
    assert checked == 8 + 8 + 2
    # the figures in the sentences are cells too
    mp = df[(df.level == "c") & (df.variant == "sigsegv-mprotect") &
            (df.generator == "hash") & (df.workload == "seq") &
            (df.fraction == 1.0) & ~df.warm & (df.fault_around == 1)]
    page = fmt.sig(float(mp.ns_per_touched_page.iloc[0]))
    assert "sigsegv-mprotect takes one fault per page" in stdout
    assert f"{page} ns per page" in " ".join(stdout.split())
