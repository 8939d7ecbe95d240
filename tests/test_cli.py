"""The command line: bad input gets one line and exit 2; a small run writes
a complete run folder; report rebuilds it; nothing touches the baseline."""
from __future__ import annotations

import json
import pathlib
import sys

import pandas as pd
import pytest

from lazybench import core

from conftest import run_cli

SMALL_RUN = ["run", "--suite", "default", "--variants",
             "eager,sigsegv-mprotect,py-closure",
             "--generators", "hash,recurrence",
             "--workloads", "seq,strided", "--touched", "10,100",
             "--elements", "65536"]


@pytest.mark.parametrize("argv,needle", [
    (["run", "--variants", "nope"], "unknown variant 'nope'"),
    (["--generators", "nope"], "unknown generator 'nope'"),
    (["run", "--workloads", "nope"], "unknown workload 'nope'"),
    (["run", "--touched", "0"], "not in (0, 100]"),
    (["run", "--touched", "abc"], "not a percentage"),
    (["run", "--elements", "-5"], "must be at least 1"),
    (["run", "--elements", str(1 << 40)], "above the core's limit"),
    (["run", "--elements", str(1 << 36)], "GiB at once"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "unrecognized arguments"),
    (["report", "no/such/folder"], "no such run folder"),
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


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    results = tmp_path_factory.mktemp("results")
    proc = run_cli([*SMALL_RUN, "--results-dir", str(results),
                    "--run-name", "small"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "ns per touched element" in proc.stdout
    return results


def test_run_writes_complete_folder(small_run: pathlib.Path) -> None:
    assert sorted(p.name for p in small_run.iterdir()) == ["small"]
    folder = small_run / "small"
    for name in ("pyperf.json", "run.json", "results.csv", "floors.csv",
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
    assert (df.fault_around > 1).sum() == 2   # mprotect seq: 4 and 16
    assert df["values"].min() >= 1
    mp = df[(df.variant == "sigsegv-mprotect") & ~df.warm
            & (df.fault_around == 1)]
    assert (mp.faults_per_touched_page == 1).all()
    assert (mp.second_pass_faults == 0).all()
    assert (df[df.variant == "eager"].faults == 0).all()
    assert (df.ns_per_touched_element > 0).all()
    floors = pd.read_csv(folder / "floors.csv")
    assert set(floors.floor) == {f for f in core.FLOORS
                                 if core.floor_available(f)}
    assert {"null-syscall", "mprotect", "sigsegv-roundtrip", "first-touch",
            "decode", "page-compute"} <= set(floors.floor)
    assert (floors.ns_per_op > 0).all()
    report = (folder / "report.md").read_text()
    assert "![time_per_element_hash](plots/time_per_element_hash.png)" in report
    assert "## Time per touched element from Python" in report
    assert "## Best lazy C variant against the best Python thunk" in report
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
    assert len(pd.read_csv(folder / "results.csv")) == 22 + 12


def test_corrupt_run_file_is_one_line(small_run: pathlib.Path,
                                      tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    proc = run_cli(["report", str(bad)])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "run.json: not valid JSON" in proc.stderr
    (bad / "run.json").write_text(json.dumps({"format": 1, "cases": []}))
    (bad / "pyperf.json").write_text("[]")
    proc = run_cli(["report", str(bad)])
    assert proc.returncode == 2
    assert "pyperf.json: not a pyperf result" in proc.stderr


def test_existing_run_name_is_refused(small_run: pathlib.Path) -> None:
    proc = run_cli([*SMALL_RUN, "--results-dir", str(small_run),
                    "--run-name", "small"])
    assert proc.returncode == 2
    assert "already exists" in proc.stderr


def test_save_baseline_only_when_asked(tmp_path: pathlib.Path) -> None:
    argv = ["run", "--quick", "--variants", "eager", "--workloads", "seq",
            "--touched", "100", "--elements", "4096",
            "--results-dir", str(tmp_path)]
    assert run_cli([*argv, "--run-name", "a"]).returncode == 0
    assert not (tmp_path / "baseline").exists()
    proc = run_cli([*argv, "--run-name", "b", "--save-baseline"])
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "baseline" / "run.json").read_text())
    assert meta["name"] == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b",
                                                          "baseline"]


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
