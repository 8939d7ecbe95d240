from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

import pytest

from lazybench import core

# Small arrays: every test stays fast, while still spanning many pages.
SMALL_PAGES = 48
SMALL_N = SMALL_PAGES * core.PAGE_ELEMENTS - 7   # last page partly used


def run_python(code: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args, "-c", code],
                          capture_output=True, text=True, timeout=timeout,
                          env=env)


def run_cli(argv: Sequence[str], cwd: str | os.PathLike[str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lazybench", *argv],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


@pytest.fixture
def lazy_variants() -> list[str]:
    return [v for v in core.VARIANTS if v != "eager"
            and core.availability(v).available]
