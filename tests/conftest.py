from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Sequence

import pytest

from lazybench import _array as core

# Small arrays: every test stays fast, while still spanning many pages.
SMALL_PAGES = 48
SMALL_N = SMALL_PAGES * core.PAGE_ELEMENTS - 7   # last page partly used


def run_python(code: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120,
               argv: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter; `args` are interpreter options,
    `argv` the program's sys.argv[1:]."""
    return subprocess.run([sys.executable, *args, "-c", code, *argv],
                          capture_output=True, text=True, timeout=timeout,
                          env=env)


def run_cli(argv: Sequence[str], cwd: str | os.PathLike[str] | None = None,
            timeout: float = 600, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lazybench", *argv],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess[str],
                          needle: str) -> None:
    """Exit status 2 and one line on stderr, lazybench's error prefix,
    `needle` in it, no traceback."""
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lazybench: error:")
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.fixture
def lazy_variants() -> list[str]:
    return [v for v in core.VARIANTS if v != "eager"
            and core.availability(v).available]


def race(arr: core.LazyArray, workload: str, fraction: float = 1.0,
         seed: int = 1, threads: int = 2) -> list[int]:
    """Run one workload from several threads at once (cffi drops the GIL
    around C calls, so they fault on the same elements together); return
    each thread's checksum."""
    got: list[int] = []
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait()
        got.append(arr.run(workload, fraction, seed).checksum)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return got
