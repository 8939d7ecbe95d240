"""Progress of a run (one updating line on a terminal, plain lines
elsewhere), and the one-line error when a source folder without a built
core hides an installed lazybench."""
from __future__ import annotations

import io
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from lazybench._progress import Reporter, duration

ROOT = pathlib.Path(__file__).resolve().parent.parent


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _steps(tty: bool) -> str:
    stream, clock = _Stream(tty), _Clock()
    p = Reporter(stream, clock)
    p.start("timing", 4)
    for name in ("a/long/name", "b", "c", "d"):
        p.step(name)
        clock.now += 30          # every step takes 30 s
    p.finish()
    return stream.getvalue()


def test_plain_lines_count_and_estimate_time_left() -> None:
    lines = _steps(tty=False).splitlines()
    assert lines == ["timing 1/4 a/long/name",
                     "timing 2/4 b, about 1 min 30 s left",
                     "timing 3/4 c, about 1 min 00 s left",
                     "timing 4/4 d, about 30 s left"]


def test_terminal_line_is_rewritten_in_place_and_cleared() -> None:
    out = _steps(tty=True)
    assert "\n" not in out
    parts = out.split("\r")
    assert parts[1].startswith("timing 1/4 a/long/name")
    # a shorter line covers what the longer one left on the terminal
    assert len(parts[2]) >= len(parts[1].rstrip())
    assert parts[-1] == "" and parts[-2].strip() == ""


def test_terminal_line_never_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.get_terminal_size",
                        lambda *a: os.terminal_size((20, 5)))
    stream = _Stream(tty=True)
    p = Reporter(stream, _Clock())
    p.start("timing", 3)
    p.step("a-very-long-case-name/hash/strided/100%")
    line = stream.getvalue().split("\r")[1]
    assert len(line) == 19 and line.endswith("...")


def test_duration() -> None:
    assert duration(0.4) == "0 s"
    assert duration(59) == "59 s"
    assert duration(125) == "2 min 05 s"


def test_a_source_folder_without_the_core_gets_one_line(
        tmp_path: pathlib.Path) -> None:
    """As after 'pip install .' and a run from the checkout: the package
    found first has no core built in it.  (The editable install's finder
    is taken out, so the folder's package is the one imported.)"""
    shutil.copytree(ROOT / "lazybench", tmp_path / "lazybench",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__",
                                                  "_core.c"))
    code = ("import sys, runpy\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' "
            "not in str(getattr(f, '__module__', ''))]\n"
            "sys.argv = ['lazybench', 'list']\n"
            "runpy.run_module('lazybench', run_name='__main__', "
            "alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lazybench: error: the C core is not built")
    assert "pip install -e ." in lines[0]
