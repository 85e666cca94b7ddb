"""Random streams: one numpy SeedSequence per run, one independent generator per source of randomness.

Stream k of replication r of seed s is `SeedSequence(s, spawn_key=(r, k, *sub))`: it depends only on
(seed, replication, source), so scenarios that differ downstream share arrivals, ALD times and quality noise
(common random numbers). Draws are made in blocks and handed out as Python floats (the hot path).
"""

from __future__ import annotations

import numpy as np

SOURCES = {
    "arrivals": 0,
    "ald_time": 1,
    "furnace_time": 2,
    "qc_time": 3,
    "failures": 4,
    "quality": 5,
    "mix": 6,
}
_BLOCK = 4096


class Draws:
    """A block-buffered stream of variates of one distribution from one generator.

    `kind` is "exponential" (mean 1), "normal" (standard), "uniform" [0, 1), "gamma" (mean 1, given cv) or
    "one" (always 1.0, no draws).
    """

    __slots__ = ("_gen", "_kind", "_cv", "_buf", "_i")

    def __init__(self, gen: np.random.Generator, kind: str, cv: float = 0.0) -> None:
        if kind not in ("exponential", "normal", "uniform", "gamma", "one"):
            raise ValueError(f"unknown distribution {kind!r}")
        self._gen, self._kind, self._cv = gen, kind, cv
        self._buf: list[float] = []
        self._i = 0

    def _refill(self) -> None:
        g, kind = self._gen, self._kind
        if kind == "exponential":
            arr = g.standard_exponential(_BLOCK)
        elif kind == "normal":
            arr = g.standard_normal(_BLOCK)
        elif kind == "gamma" and self._cv > 0:
            shape = 1.0 / (self._cv * self._cv)
            arr = g.gamma(shape, 1.0 / shape, _BLOCK)
        elif kind in ("gamma", "one"):
            arr = np.ones(_BLOCK)
        else:
            arr = g.random(_BLOCK)
        self._buf = arr.tolist()
        self._i = 0

    def next(self) -> float:
        if self._i >= len(self._buf):
            self._refill()
        x = self._buf[self._i]
        self._i += 1
        return x


class Streams:
    """Generators of one run (seed, replication), one per source and optional sub-key (e.g. a unit index)."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed, self.replication = int(seed), int(replication)

    def generator(self, source: str, *sub: int) -> np.random.Generator:
        ss = np.random.SeedSequence(self.seed, spawn_key=(self.replication, SOURCES[source], *sub))
        return np.random.Generator(np.random.PCG64(ss))

    def draws(self, source: str, kind: str, *sub: int, cv: float = 0.0) -> Draws:
        return Draws(self.generator(source, *sub), kind, cv)
