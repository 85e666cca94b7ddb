"""Model-parameter uncertainty of a study: a seeded Latin hypercube over `plant.physics.PARAM_RANGES` and the
names of the runs it adds (`<strategy>@u07` is strategy x sample 7; `@u00` is the nominal model)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_RATIO = 10.0
"""A range with low > 0 and high / low >= LOG_RATIO is sampled uniformly in log space, any other linearly."""

MAX_SAMPLES = 200
"""Most samples a study may ask for: each sample runs every strategy again (200 samples x 9 strategies x 5
replications = 9,045 replications), and 200 samples already give a probability of best to within +-0.07."""

NOMINAL = 0
"""Sample 0: the quality model with no sampled override."""


def param_ranges() -> dict[str, tuple[float, float]]:
    """`plant.physics.PARAM_RANGES` as it is now: uncertain QualityParams field -> (low, high)."""
    from plant import physics

    return {str(k): (float(v[0]), float(v[1])) for k, v in physics.PARAM_RANGES.items()}


def log_scaled(low: float, high: float) -> bool:
    """Whether the range (low, high) is sampled in log space: positive and spanning a decade or more."""
    return low > 0 and high / low >= LOG_RATIO


def unit_hypercube(n: int, names: Sequence[str], seed: int) -> np.ndarray:
    """An n x len(names) Latin hypercube in [0, 1): column j has one point in each of the n strata
    [i/n, (i+1)/n), in random order, placed uniformly within it. Column j depends only on (seed, names[j], n),
    so adding or removing another parameter leaves it as it was."""
    out = np.empty((n, len(names)))
    for j, name in enumerate(names):
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        out[:, j] = (rng.permutation(n) + rng.random(n)) / n
    return out


def scale(u: np.ndarray, low: float, high: float) -> np.ndarray:
    """Unit values u in [0, 1) mapped onto (low, high), in log space when `log_scaled(low, high)`."""
    if log_scaled(low, high):
        return np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


@dataclass(frozen=True, eq=False)
class ParameterSamples:
    """N samples of the uncertain parameters: `values[k - 1, j]` is `names[j]` in sample k (1..N)."""

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    values: np.ndarray
    seed: int

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def log(self) -> tuple[bool, ...]:
        return tuple(log_scaled(lo, hi) for lo, hi in zip(self.low, self.high))

    def overrides(self, k: int) -> dict[str, float]:
        """The quality overrides of sample k: none for the nominal sample 0, every sampled one otherwise."""
        if k == NOMINAL:
            return {}
        if not 1 <= k <= self.n:
            raise IndexError(f"sample {k} is not in 0..{self.n}")
        return {name: float(v) for name, v in zip(self.names, self.values[k - 1])}

    def run_name(self, strategy: str, k: int) -> str:
        return run_name(strategy, k, self.n)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the study's stored JSON (the ranges as they were when it ran)."""
        return {
            "samples": self.n,
            "seed": self.seed,
            "params": [
                {"name": n, "low": lo, "high": hi, "scale": "log" if lg else "linear"}
                for n, lo, hi, lg in zip(self.names, self.low, self.high, self.log)
            ],
            "values": [[float(v) for v in row] for row in self.values],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterSamples:
        params = data["params"]
        values = np.array(data["values"], dtype=float).reshape(len(data["values"]), len(params))
        return cls(
            names=tuple(str(p["name"]) for p in params),
            low=tuple(float(p["low"]) for p in params),
            high=tuple(float(p["high"]) for p in params),
            values=values,
            seed=int(data["seed"]),
        )


def sample_parameters(
    n: int,
    seed: int,
    names: Sequence[str] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> ParameterSamples:
    """A Latin hypercube of n samples over `ranges` (default: PARAM_RANGES) of `names` (default: all of
    them, sorted). The same (n, seed, names, ranges) give the same samples. ValueError names an unknown
    parameter or a bad range."""
    ranges = param_ranges() if ranges is None else dict(ranges)
    chosen = sorted(ranges) if names is None else list(names)
    unknown = [p for p in chosen if p not in ranges]
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; valid: {', '.join(sorted(ranges))}")
    if n < 2:
        raise ValueError(f"a Latin hypercube needs at least 2 samples, got {n}")
    lows, highs = [], []
    for p in chosen:
        lo, hi = (float(x) for x in ranges[p])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"parameter {p!r}: range ({lo:g}, {hi:g}) is not a finite (low, high)")
        lows.append(lo)
        highs.append(hi)
    u = unit_hypercube(n, chosen, seed)
    values = np.column_stack([scale(u[:, j], lows[j], highs[j]) for j in range(len(chosen))])
    return ParameterSamples(
        tuple(chosen), tuple(lows), tuple(highs), values.reshape(n, len(chosen)), int(seed)
    )


def run_name(strategy: str, k: int, n: int) -> str:
    """The scenario name of strategy x sample k of n: `O2-400C-3h@u07` (two digits, more if n needs them)."""
    return f"{strategy}@u{k:0{max(2, len(str(n)))}d}"
