"""The machine a run ran on, as recorded in run.json under "machine".

Every read of /proc and /sys is tolerant: a file that is missing or
unreadable gives None, never an exception.  In a VM the CPU model and
microcode can be generic while the host underneath changes the figures,
so host-sensitive values are kept too: the TSC rate measured by the core,
CPUID family/model/stepping, and (elsewhere in run.json) the run's floors.
"""
from __future__ import annotations

import os
import pathlib
import platform
import re
import subprocess
from typing import Any

from lazybench import _array as core

# Keys of facts() and their types (None is allowed for every key but the
# first group, which run.json has always had).
KEYS: dict[str, type | tuple[type, ...]] = {
    "kernel": str, "machine": str, "cpu_count": int, "python": str,
    "capstone": str, "capstone_wheel": str, "pyperf": str,
    "page_elements": int, "max_nesting": int,
    # CPU, from the first processor of /proc/cpuinfo
    "cpu_vendor": str, "cpu_model": str, "cpu_family": int,
    "cpu_model_number": int, "cpu_stepping": int, "microcode": str,
    "hypervisor": bool, "cpu_mhz": float, "bogomips": float,
    "tsc_flags": list, "cpufreq_max_khz": int,
    # measured by the core
    "tsc_hz": float,
    # /sys/devices/system/cpu/vulnerabilities/*: file name -> its line
    "mitigations": dict,
    # kernel settings
    "thp": str, "max_map_count": int, "unprivileged_userfaultfd": int,
    "perf_event_paranoid": int,
    # userfaultfd as the core found it
    "uffd_usable": bool, "uffd_how": str, "uffd_refused": str,
    # where sigsegv-mprotect writes its pages at fault-around 1
    # ('/proc/self/mem', 'memfd')
    "mprotect_source": str,
    # the build
    "compiler": str, "lazybench": str, "git_revision": str, "git_dirty": bool,
}
ALWAYS = ("kernel", "machine", "cpu_count", "python", "capstone",
          "capstone_wheel", "pyperf", "page_elements", "max_nesting",
          "uffd_usable", "compiler", "lazybench")

CPUINFO = "/proc/cpuinfo"
VULNERABILITIES = "/sys/devices/system/cpu/vulnerabilities"
CPUFREQ_MAX = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
SYSCTLS = {"max_map_count": "/proc/sys/vm/max_map_count",
           "unprivileged_userfaultfd": "/proc/sys/vm/unprivileged_userfaultfd",
           "perf_event_paranoid": "/proc/sys/kernel/perf_event_paranoid"}
TSC_FLAGS = ("tsc", "constant_tsc", "nonstop_tsc", "tsc_known_freq",
             "tsc_reliable", "rdtscp")


def _read_text(path: str) -> str:
    return pathlib.Path(path).read_text()


def _read(path: str) -> str | None:
    """The stripped text of `path`, or None if it cannot be read."""
    try:
        return _read_text(path).strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(text: str | None, base: int = 10) -> int | None:
    try:
        return int(text, base) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def cpuinfo() -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo ({} if none)."""
    text = _read(CPUINFO) or ""
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _cpu() -> dict[str, Any]:
    info = cpuinfo()
    flags = info["flags"].split() if "flags" in info else None
    return {
        "cpu_vendor": info.get("vendor_id"),
        "cpu_model": info.get("model name"),
        "cpu_family": _int(info.get("cpu family")),
        "cpu_model_number": _int(info.get("model")),
        "cpu_stepping": _int(info.get("stepping")),
        "microcode": info.get("microcode"),
        "hypervisor": None if flags is None else "hypervisor" in flags,
        "cpu_mhz": _float(info.get("cpu MHz")),
        "bogomips": _float(info.get("bogomips")),
        "tsc_flags": (None if flags is None
                      else [f for f in TSC_FLAGS if f in flags]),
        "cpufreq_max_khz": _int(_read(CPUFREQ_MAX)),
        "tsc_hz": core.tsc_hz(),
    }


def mitigations() -> dict[str, str] | None:
    try:
        names = sorted(os.listdir(VULNERABILITIES))
    except OSError:
        return None
    out = {}
    for name in names:
        text = _read(os.path.join(VULNERABILITIES, name))
        if text is not None:
            out[name] = text
    return out


def thp_mode() -> str | None:
    """The bracketed choice of transparent_hugepage/enabled."""
    m = re.search(r"\[(\w+)\]", _read(THP) or "")
    return m.group(1) if m else None


def _uffd() -> dict[str, Any]:
    usable = core.availability("uffd-sigbus")
    return {"uffd_usable": usable.available,
            "uffd_how": core.uffd_how() if usable.available else None,
            "uffd_refused": None if usable.available else usable.reason}


def _git(root: pathlib.Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True,
            timeout=5, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(revision, dirty) of the checkout holding this package; (None, None)
    without git or outside a checkout of lazybench."""
    root = pathlib.Path(__file__).resolve().parent.parent
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or pathlib.Path(top.strip()).resolve() != root:
        return None, None
    rev = (_git(root, "rev-parse", "HEAD") or "").strip()
    if not re.fullmatch(r"[0-9a-f]{40}", rev):
        return None, None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return rev, None if status is None else bool(status.strip())


def facts() -> dict[str, Any]:
    """The machine, kernel settings and build of this run (keys: KEYS)."""
    from importlib import metadata

    import lazybench

    rev, dirty = git_state()
    return {"kernel": platform.release(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "capstone": core.CAPSTONE_VERSION,
            "capstone_wheel": metadata.version("capstone"),
            "pyperf": metadata.version("pyperf"),
            "page_elements": core.PAGE_ELEMENTS,
            "max_nesting": core.MAX_NESTING,
            **_cpu(),
            "mitigations": mitigations(),
            "thp": thp_mode(),
            **{k: _int(_read(p)) for k, p in SYSCTLS.items()},
            **_uffd(),
            "mprotect_source": core.mprotect_source(),
            "compiler": core.COMPILER,
            "lazybench": lazybench.__version__,
            "git_revision": rev, "git_dirty": dirty}
