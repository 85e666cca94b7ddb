"""Random streams: one numpy SeedSequence per run, one independent generator per source of randomness.

Stream k of replication r of seed s is `SeedSequence(s, spawn_key=(r, k, *sub))`: it depends only on
(seed, replication, source), so scenarios that differ downstream share arrivals, ALD times and quality noise
(common random numbers). Draws are made in blocks and handed out as Python floats (the hot path).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

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
_BLOCK = 64
"""Variates per numpy call (for rows of `width` variates, _BLOCK // width rows). Big enough that the call is
amortised (~0.03 us a draw), small enough that a run's streams hold little memory (about 2 KB each, a fixed cost
that shows in the memory per lot of short runs: 256 gave a one-month run 2.86 KB per lot, 64 gives 2.73, against
2.30 for four years). The values do not depend on the block size: numpy draws the same sequence in blocks of any
length."""


class Draws:
    """A block-buffered stream of variates of one distribution from one generator.

    `kind` is "exponential" (mean 1), "normal" (standard), "uniform" [0, 1), "gamma" (mean 1, given cv) or
    "one" (always 1.0, no draws). `next()` returns the next variate as a Python float; it is the C-level
    `__next__` of a chain over blocks, so a draw costs no Python frame. With `width` > 1, `next()` returns the
    next `width` variates at once as a list (the same sequence: numpy fills a block row by row).
    """

    __slots__ = ("_gen", "_kind", "_cv", "_width", "next")

    def __init__(self, gen: np.random.Generator, kind: str, cv: float = 0.0, width: int = 1) -> None:
        if kind not in ("exponential", "normal", "uniform", "gamma", "one"):
            raise ValueError(f"unknown distribution {kind!r}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width!r}")
        self._gen, self._kind, self._cv, self._width = gen, kind, cv, width
        if kind == "one" and width > 1:
            self.next = itertools.repeat([1.0] * width).__next__
        elif kind == "one" or (
            kind == "gamma" and not cv * cv > 1e-300
        ):  # cv 0, or so small the shape overflows
            self.next: Callable[[], float] = itertools.repeat(1.0).__next__
        else:
            self.next = itertools.chain.from_iterable(self._blocks()).__next__

    def _blocks(self) -> Iterator[list[float]]:
        g, kind = self._gen, self._kind
        if kind == "exponential":
            draw = g.standard_exponential
        elif kind == "normal":
            draw = g.standard_normal
        elif kind == "gamma":
            shape = 1.0 / (self._cv * self._cv)
            scale = 1.0 / shape

            def draw(n: int | tuple[int, int]) -> np.ndarray:
                return g.gamma(shape, scale, n)
        else:
            draw = g.random
        # about _BLOCK variates a call: rows of `width` are kept by the lots, so a block of rows is not prefetched
        size = _BLOCK if self._width == 1 else (max(1, _BLOCK // self._width), self._width)
        while True:
            yield draw(size).tolist()


class Streams:
    """Generators of one run (seed, replication), one per source and optional sub-key (e.g. a unit index)."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed, self.replication = int(seed), int(replication)

    def generator(self, source: str, *sub: int) -> np.random.Generator:
        ss = np.random.SeedSequence(self.seed, spawn_key=(self.replication, SOURCES[source], *sub))
        return np.random.Generator(np.random.PCG64(ss))

    def draws(self, source: str, kind: str, *sub: int, cv: float = 0.0, width: int = 1) -> Draws:
        return Draws(self.generator(source, *sub), kind, cv, width)
