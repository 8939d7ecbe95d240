"""cffi (API mode) builder for lazybench._core, run by setuptools at install.

The C sources live in ``csrc/``.  Capstone comes from the pinned ``capstone``
wheel: its static library is linked into the extension, because the wheel's
shared library names itself ``libcapstone.so.5``, a file the wheel lacks.
"""
from __future__ import annotations

import pathlib

import cffi

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"


def _capstone_paths() -> tuple[pathlib.Path, pathlib.Path]:
    """Return (include dir, static library) of the installed capstone wheel."""
    import importlib.util

    spec = importlib.util.find_spec("capstone")
    if spec is None or spec.origin is None:
        raise RuntimeError("building lazybench needs the capstone wheel "
                           "(a build requirement in pyproject.toml)")
    pkg = pathlib.Path(spec.origin).parent
    include = pkg / "include"
    static = pkg / "lib" / "libcapstone.a"
    if not (include / "capstone" / "capstone.h").exists() or not static.exists():
        raise RuntimeError(f"the capstone wheel at {pkg} ships no headers or "
                           "libcapstone.a; lazybench pins a version that does")
    return include, static


def _cdef() -> str:
    text = (CSRC / "lb_api.h").read_text()
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith("#"))


def make_builder() -> cffi.FFI:
    include, static = _capstone_paths()
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(_cdef())
    sources = sorted(str(p.relative_to(ROOT)) for p in CSRC.glob("*.c"))
    ffibuilder.set_source(
        "lazybench._core",
        '#include "lb_core.h"\n',
        sources=sources,
        depends=[str(p.relative_to(ROOT)) for p in CSRC.glob("*.h")],
        include_dirs=[str(CSRC), str(include)],
        extra_objects=[str(static)],
        extra_compile_args=["-O2", "-std=gnu11", "-fno-strict-aliasing",
                            # Only PyInit__core is exported, so calls inside
                            # the core can be inlined (no interposition).
                            "-fvisibility=hidden",
                            # Timed loops start on a 64-byte boundary: a
                            # loop that happened to straddle one ran its
                            # warm pass at half speed (swcheck seq, 0.48
                            # against 0.24 ns per element), an artefact of
                            # code layout, not of the variant.
                            "-falign-loops=64",
                            "-Wall", "-Wextra", "-Wno-unused-parameter"],
        libraries=["pthread"],
    )
    return ffibuilder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
