"""Replications by precision: add replications until the Student-t interval's relative half-width meets a target.

The sequential procedure of Law (Simulation Modeling and Analysis, sec. 9.4.1) with the plain relative half-width
(not Law's adjusted gamma/(1+gamma)). `PrecisionRule` holds the state, so a runner can feed it values from any
executor, one replication or a batch at a time; `replications_for_precision` drives it with a callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from twin.errors import TwinError
from twin.stats import t_ppf


@dataclass(frozen=True)
class PrecisionResult:
    n: int
    mean: float
    half_width: float
    rel_half_width: float
    reached: bool
    values: list[float] = field(repr=False)


@lru_cache(maxsize=4096)
def t_quantile(df: int, confidence: float) -> float:
    """Two-sided Student-t quantile t_{df, (1 + confidence) / 2} (cached: the rule asks for it every replication)."""
    return float(t_ppf(0.5 + confidence / 2.0, df))


def half_width(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """(mean, Student-t half-width) of a sample; half-width is inf for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return float("nan"), float("inf")
    mean = float(x.mean())
    if n < 2:
        return mean, float("inf")
    s = float(x.std(ddof=1))
    return mean, t_quantile(n - 1, confidence) * s / math.sqrt(n)


def relative_half_width(mean: float, hw: float) -> float:
    if hw == 0.0:
        return 0.0
    return hw / abs(mean) if mean != 0.0 else float("inf")


@dataclass
class PrecisionRule:
    """State of the sequential rule. `add()` values in replication order; `done` says whether to stop."""

    target_rel_half_width: float
    min_reps: int = 5
    max_reps: int = 200
    confidence: float = 0.95
    values: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.target_rel_half_width > 0:
            raise TwinError(f"--precision must be positive, got {self.target_rel_half_width}")
        if self.min_reps < 2:
            raise TwinError(
                f"at least 2 replications are needed for an interval, got min_reps={self.min_reps}"
            )
        if self.max_reps < self.min_reps:
            raise TwinError(f"max replications {self.max_reps} is below the minimum {self.min_reps}")
        if not 0 < self.confidence < 1:
            raise TwinError(f"confidence must be in (0, 1), got {self.confidence}")

    def add(self, value: float) -> None:
        v = float(value)
        if not math.isfinite(v):
            raise TwinError(
                f"replication {len(self.values)} gave a non-finite KPI value ({v}); cannot use it"
            )
        self.values.append(v)

    @property
    def n(self) -> int:
        return len(self.values)

    def current(self) -> tuple[float, float, float]:
        """(mean, half-width, relative half-width) of the values so far."""
        mean, hw = half_width(self.values, self.confidence)
        return mean, hw, relative_half_width(mean, hw)

    @property
    def reached(self) -> bool:
        return self.n >= self.min_reps and self.current()[2] <= self.target_rel_half_width

    @property
    def done(self) -> bool:
        return self.reached or self.n >= self.max_reps

    def next_batch(self, max_batch: int = 1) -> int:
        """How many replications to run next (0 when done): the minimum first, then up to `max_batch` at a time,
        never more than the estimate n* = (t s / (target |mean|))^2 still missing nor beyond `max_reps`."""
        if self.done:
            return 0
        if self.n < self.min_reps:
            return self.min_reps - self.n
        mean, hw, _ = self.current()
        need = self.n + 1
        if mean != 0.0 and math.isfinite(hw):
            need = math.ceil(self.n * (hw / (self.target_rel_half_width * abs(mean))) ** 2)
        return int(max(1, min(max_batch, need - self.n, self.max_reps - self.n)))

    def result(self) -> PrecisionResult:
        mean, hw, rel = self.current()
        return PrecisionResult(
            n=self.n,
            mean=mean,
            half_width=hw,
            rel_half_width=rel,
            reached=self.reached,
            values=list(self.values),
        )


def replications_for_precision(
    sample: Callable[[int], float] | None,
    target_rel_half_width: float,
    min_reps: int = 5,
    max_reps: int = 200,
    confidence: float = 0.95,
    *,
    sample_many: Callable[[list[int]], Sequence[float]] | None = None,
    max_batch: int = 1,
) -> PrecisionResult:
    """Run replications 0, 1, 2, ... until the `confidence` interval's half-width / |mean| <= target, or `max_reps`.

    `sample(r)` returns the KPI of replication r. With `sample_many(rs)` (e.g. a process pool running a list of
    replications) and `max_batch > 1`, replications are requested in batches no larger than the estimated number
    still needed; with max_batch=1 the rule is checked after every replication (no overshoot).
    """
    if sample is None and sample_many is None:
        raise ValueError("give sample or sample_many")
    rule = PrecisionRule(target_rel_half_width, min_reps, max_reps, confidence)
    while (k := rule.next_batch(max_batch if sample_many is not None else 1)) > 0:
        rs = list(range(rule.n, rule.n + k))
        vals = sample_many(rs) if sample_many is not None else [sample(r) for r in rs]  # type: ignore[misc]
        if len(vals) != len(rs):
            raise ValueError(f"sample_many returned {len(vals)} values for {len(rs)} replications")
        for v in vals:
            rule.add(v)
    return rule.result()
