"""Log-bucket histograms kept by the C core (``lb_hist``, csrc/profile.c):
exact below 64, then 32 buckets per power of two.  Here they are read out
into plain Python values: counts, percentiles and the non-empty buckets."""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from lazybench._core import ffi, lib

# The percentiles the profile reports, as fractions.
PERCENTILES: tuple[float, ...] = (0.50, 0.90, 0.99)


@dataclasses.dataclass(frozen=True)
class Bucket:
    lo: int             # smallest value it holds
    hi: int             # largest value it holds
    count: int


@dataclasses.dataclass(frozen=True)
class Histogram:
    """A histogram read from C.  Values are in the unit they were added
    in (TSC ticks for the profile's phases)."""
    count: int
    total: float
    min: int
    max: int
    quantiles: dict[float, int]          # q -> value, for PERCENTILES
    buckets: tuple[Bucket, ...]          # the non-empty ones, ascending

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> int | None:
        """The q-quantile by nearest rank (the upper edge of its bucket,
        clipped to [min, max]); None when empty."""
        return self.quantiles.get(q) if self.count else None


def read(h: Any) -> Histogram:
    """Read a C ``lb_hist *``."""
    lo = ffi.new("uint64_t *")
    hi = ffi.new("uint64_t *")
    buckets = []
    count = int(lib.lb_hist_count(h))
    if count:
        for k in range(lib.lb_hist_bucket_count()):
            c = int(lib.lb_hist_bucket(h, k, lo, hi))
            if c:
                buckets.append(Bucket(int(lo[0]), int(hi[0]), c))
    return Histogram(
        count=count, total=float(lib.lb_hist_sum(h)),
        min=int(lib.lb_hist_min(h)), max=int(lib.lb_hist_max(h)),
        quantiles={q: int(lib.lb_hist_quantile(h, q)) for q in PERCENTILES},
        buckets=tuple(buckets))


def of_values(values: Iterable[int],
              extra: tuple[float, ...] = ()) -> tuple[Histogram, dict]:
    """A histogram of `values` built by the C code (for tests and for
    checking the C code against known inputs), and its quantiles at
    `extra` fractions."""
    h = ffi.gc(lib.lb_hist_new(), lib.lb_hist_free)
    if h == ffi.NULL:
        raise MemoryError("no memory for a histogram")
    for v in values:
        lib.lb_hist_add(h, int(v))
    return read(h), {q: int(lib.lb_hist_quantile(h, q)) for q in extra}
