"""The machine facts a run records in run.json, and the report header."""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from typing import Any

import pytest

from lazybench import _frames as frames, _machine as machine
from lazybench import _report as report, _results as results
from lazybench import _runformat as runformat

BASELINE = pathlib.Path(__file__).resolve().parent.parent / "results" / \
    "baseline"
OLD_KEYS = ("kernel", "machine", "cpu_count", "python", "capstone",
            "capstone_wheel", "pyperf", "page_elements", "max_nesting")


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    return machine.facts()


def test_facts_have_every_documented_key_with_its_type(
        facts: dict[str, Any]) -> None:
    assert set(facts) == set(machine.KEYS)
    assert set(OLD_KEYS) <= set(facts)
    for key, kind in machine.KEYS.items():
        value = facts[key]
        if key in machine.ALWAYS:
            assert value is not None, key
        if value is not None:
            assert isinstance(value, kind), (key, value)
            if kind is int or kind is float:
                assert not isinstance(value, bool), key
    for name, text in (facts["mitigations"] or {}).items():
        assert isinstance(name, str) and isinstance(text, str)
    assert all(isinstance(f, str) for f in facts["tsc_flags"] or [])


def test_git_revision_is_hex_or_none(facts: dict[str, Any]) -> None:
    rev = facts["git_revision"]
    assert rev is None or re.fullmatch(r"[0-9a-f]{40}", rev)
    assert (facts["git_dirty"] is None) if rev is None else \
        isinstance(facts["git_dirty"], bool)


def test_userfaultfd_says_how_when_usable(facts: dict[str, Any]) -> None:
    if facts["uffd_usable"]:
        assert facts["uffd_how"] in ("userfaultfd(UFFD_USER_MODE_ONLY)",
                                     "/dev/userfaultfd")
        assert facts["uffd_refused"] is None
    else:
        assert facts["uffd_how"] is None
        assert facts["uffd_refused"]


def test_compiler_is_a_version_string(facts: dict[str, Any]) -> None:
    assert re.search(r"\d+\.\d+", facts["compiler"])


def test_missing_proc_and_sys_files_give_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(path: str) -> str:
        raise FileNotFoundError(path)

    monkeypatch.setattr(machine, "_read_text", missing)
    monkeypatch.setattr(machine, "VULNERABILITIES", "/nonexistent/vulns")
    got = machine.facts()
    for key in ("cpu_vendor", "cpu_model", "cpu_family", "cpu_model_number",
                "cpu_stepping", "microcode", "hypervisor", "cpu_mhz",
                "bogomips", "tsc_flags", "cpufreq_max_khz", "mitigations",
                "thp", "max_map_count", "unprivileged_userfaultfd",
                "perf_event_paranoid"):
        assert got[key] is None, key
    for key in OLD_KEYS:
        assert got[key] is not None
    assert "TSC (measured)" in "\n".join(report.machine_block(got))


def test_git_absent_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert machine.git_state() == (None, None)


# What run.json's "machine" held before it recorded the CPU, the kernel's
# settings and the build.
OLDER_MACHINE_KEYS = ("kernel", "cpu_count", "python", "pyperf", "capstone",
                      "capstone_wheel")


def test_an_older_run_still_loads_and_says_not_recorded() -> None:
    run = results.load_run(BASELINE)
    assert "cpu_model" in run.meta["machine"]      # the baseline is newer
    older = {k: v for k, v in run.meta["machine"].items()
             if k in OLDER_MACHINE_KEYS}
    meta = json.loads(json.dumps({**run.meta, "machine": older}))
    runformat.check_run(meta)
    run = dataclasses.replace(run, meta=meta)
    text = report.markdown(frames.Frames.of(run), [])
    header = text.split("\n## ")[0]
    assert "not recorded" in header
    assert f"kernel {run.meta['machine']['kernel']}" in header


def test_header_of_a_new_run_shows_the_new_values(
        facts: dict[str, Any]) -> None:
    run = results.load_run(BASELINE)
    # as a fresh run stores it: through JSON, past the format check
    meta = json.loads(json.dumps({**run.meta, "machine": facts}))
    runformat.check_run(meta)
    run = dataclasses.replace(run, meta=meta)
    header = report.markdown(frames.Frames.of(run), []).split("\n## ")[0]
    assert "Machine:" in header
    assert f"lazybench {facts['lazybench']}" in header
    assert facts["compiler"] in header
    assert "userfaultfd: " + ("usable" if facts["uffd_usable"]
                              else "not usable") in header
    for key in ("cpu_model", "microcode", "thp"):
        if facts[key] is not None:
            assert str(facts[key]) in header, key
    if facts["max_map_count"] is not None:
        assert f"vm.max_map_count {facts['max_map_count']}" in header
    if facts["tsc_hz"] is not None:
        assert f"{facts['tsc_hz'] / 1e6:.2f} MHz" in header
    if facts["git_revision"] is not None:
        assert facts["git_revision"][:12] in header
    assert "Machine: CPU model, microcode" not in header
