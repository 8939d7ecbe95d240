"""Mechanism families: which kind of lazy evaluation a variant is (eager,
software check, mprotect, redirect, userfaultfd, Python thunks).  The plots
colour by family; the report's headline speaks of one family at a time."""
from __future__ import annotations

import dataclasses

from lazybench import _array as core
from lazybench import _pythunks as pythunks


@dataclasses.dataclass(frozen=True)
class Family:
    key: str
    title: str
    colour: str
    prefixes: tuple[str, ...]


# Matched by variant name prefix, first match wins.
FAMILIES: tuple[Family, ...] = (
    Family("eager", "eager", "#222222", ("eager",)),
    Family("swcheck", "software check", "#2ca02c", ("swcheck",)),
    Family("mprotect", "mprotect", "#1f77b4", ("sigsegv-mprotect",)),
    Family("redirect", "redirect", "#d62728", ("sigsegv-redirect",)),
    Family("uffd", "userfaultfd", "#9467bd", ("uffd-",)),
    Family("python", "Python thunks", "#ff7f0e", ("py-",)),
)
# A variant no prefix (nor its declared facts) places.
FALLBACK = Family("other", "other", "#8c564b", ())


def known_variants() -> tuple[str, ...]:
    """C variants, then Python thunk kinds, in the order they are listed."""
    return tuple(core.VARIANTS) + tuple(pythunks.KINDS)


def family_of(variant: str) -> Family:
    for fam in FAMILIES:
        if variant.startswith(fam.prefixes):
            return fam
    if variant in core.VARIANTS:        # a new C variant: its declared facts
        info = core.variant_info(variant)
        by_key = {f.key: f for f in FAMILIES}
        if info.base:
            return by_key["eager"]
        if "mprotect" in info.parts:
            return by_key["mprotect"]
        if any("uffd" in p for p in info.parts):
            return by_key["uffd"]
    return FALLBACK
