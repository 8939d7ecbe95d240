"""Run folders under results/: written atomically, read back with checks.

A run is built in a hidden temporary folder and renamed into place only
when complete; single files are replaced with write-to-temp + rename.  The
stored baselines (``results/baseline`` for the default suite,
``results/baseline-<suite>`` for another, e.g. ``baseline-quick``) are only
written when asked for explicitly.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
import time
from typing import Any

import pyperf

from lazybench import _runformat as runformat
from lazybench._array import LazyBenchError

# pyperf metadata that names paths of the machine a run was made on.
PRIVATE_METADATA = ("python_executable", "python_config_args")

RUN_FILE = "run.json"
PYPERF_FILE = "pyperf.json"
BASELINE = "baseline"
DEFAULT_PROFILE = "default"
FORMAT = runformat.FORMAT


class ResultsError(LazyBenchError):
    """A results folder or file is missing, corrupt or would be clobbered."""


def atomic_write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def baseline_name(profile: str) -> str:
    """The folder of a suite's stored baseline: ``baseline`` for the
    default suite, ``baseline-<suite>`` for another."""
    return BASELINE if profile == DEFAULT_PROFILE else f"{BASELINE}-{profile}"


def is_baseline_name(name: str) -> bool:
    return name == BASELINE or name.startswith(BASELINE + "-")


def new_run_name(profile: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{profile}"


def check_results_dir(results_dir: pathlib.Path) -> None:
    """Refuse, before any work, a folder that cannot take run folders: a
    file, a path under a file or a missing folder, one this process cannot
    create a folder in, and a stored baseline or anything inside it."""
    resolved = results_dir.resolve()
    for folder in (resolved, *resolved.parents):
        if is_baseline_name(folder.name) and \
                (folder == resolved or (folder / RUN_FILE).is_file()):
            raise ResultsError(f"{folder} is a baseline folder, which "
                               "only --save-baseline writes")
    if results_dir.exists():
        if not results_dir.is_dir():
            raise ResultsError("not a folder")
        where = results_dir
    else:
        where = results_dir.parent
        if where.exists() and not where.is_dir():
            raise ResultsError(f"{where} is not a folder")
        if not where.exists():
            raise ResultsError("parent folder does not exist")
    # permission bits do not tell (root ignores them; read-only mounts):
    # try what RunFolder will do
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lazybench-probe.", dir=where))
    except OSError as exc:
        raise ResultsError(f"cannot create folders in {where} "
                           f"({exc.strerror})") from None


class RunFolder:
    """A run being written: files go to a temporary sibling folder that is
    renamed to its final name by :meth:`commit`."""

    def __init__(self, results_dir: pathlib.Path, name: str) -> None:
        if is_baseline_name(name) or not name or "/" in name or \
                name.startswith("."):
            raise ResultsError(f"invalid run name {name!r}")
        self.final = results_dir / name
        if self.final.exists():
            raise ResultsError(f"{self.final} already exists")
        results_dir.mkdir(parents=True, exist_ok=True)
        self.path = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.",
                                                  dir=results_dir))

    def commit(self) -> pathlib.Path:
        os.rename(self.path, self.final)
        self.path = self.final
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclasses.dataclass
class RunData:
    folder: pathlib.Path
    meta: dict[str, Any]
    suite: pyperf.BenchmarkSuite

    def benchmark(self, name: str) -> pyperf.Benchmark | None:
        try:
            return self.suite.get_benchmark(name)
        except KeyError:
            return None


def scrub(data: Any) -> Any:
    """`data` without PRIVATE_METADATA keys, at any depth."""
    if isinstance(data, dict):
        return {k: scrub(v) for k, v in data.items()
                if k not in PRIVATE_METADATA}
    if isinstance(data, list):
        return [scrub(v) for v in data]
    return data


def write_run(folder: pathlib.Path, meta: dict[str, Any],
              suite: pyperf.BenchmarkSuite) -> None:
    """run.json and pyperf.json, each replaced atomically; pyperf's metadata
    loses the paths of this machine (interpreter and build prefix), so a
    stored run can be shared."""
    atomic_write(folder / RUN_FILE,
                 json.dumps(meta, indent=2, sort_keys=True).encode())
    fd, tmp = tempfile.mkstemp(prefix=f".{PYPERF_FILE}.", dir=folder)
    os.close(fd)
    try:
        suite.dump(tmp, replace=True)
        data = scrub(json.loads(pathlib.Path(tmp).read_text()))
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)
    atomic_write(folder / PYPERF_FILE, json.dumps(data).encode())


def load_run(folder: pathlib.Path) -> RunData:
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such run folder")
    run_file = folder / RUN_FILE
    try:
        meta = json.loads(run_file.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{run_file}: missing") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{run_file}: not valid JSON ({exc})") from None
    try:
        runformat.check_run(meta)
    except runformat.FormatError as exc:
        raise ResultsError(f"{run_file}: {exc}") from None
    if "profiles" in meta:
        from lazybench import _profframes as profframes
        try:
            profframes.check_records(meta["profiles"])
        except profframes.RecordError as exc:
            raise ResultsError(f"{run_file}: {exc}") from None
    bench_file = folder / PYPERF_FILE
    if not bench_file.exists():
        raise ResultsError(f"{bench_file}: missing")
    try:
        suite = pyperf.BenchmarkSuite.load(str(bench_file))
    except Exception as exc:  # pyperf raises many types on bad input
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResultsError(f"{bench_file}: not a pyperf result ({msg})") \
            from None
    try:
        runformat.check_benchmarks(meta, suite)
    except runformat.FormatError as exc:
        raise ResultsError(f"{bench_file}: {exc}") from None
    return RunData(folder, meta, suite)
