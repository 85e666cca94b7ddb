"""E1, the exponential integral E1(x) = ∫_x^∞ e^(-t)/t dt, for the closed-form kinetic integral of a ramp.

Written here instead of taken from `scipy.special.exp1`: importing scipy.special costs about 0.3 s, paid by
every `twin` command and by every start of a study's process pool, while a run calls E1 a few times (once per
recipe segment; the doses are cached). Same algorithm as scipy's, and within one unit in the last place of it
(tests/test_expint.py).

    >>> round(float(exp1(1.0)), 12)
    0.219383934396
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

EULER_GAMMA = 0.57721566490153286061


def exp1(x: ArrayLike) -> np.ndarray:
    """E1 elementwise, as a float array of x's shape (a scalar gives a 0-d array): inf at 0, nan below 0 or at
    nan, 0 at inf (as scipy.special.exp1).

    The algorithm of scipy's own E1 (Zhang & Jin, Computation of Special Functions, 1996, routine E1XB), run over
    the whole array at once (a measured furnace profile has tens of thousands of points), each element stopping
    where the routine stops it:
    x <= 1, the power series -γ - ln x + x Σ r_k with r_k = -r_(k-1) k x / (k+1)^2, until a term falls below
    1e-15 of the sum;
    x > 1, the continued fraction e^-x / (x + t), t = 1/(1 + 1/(x + 2/(1 + 2/(x + ...)))), summed backwards
    from 20 + 80/x terms.
    exp and log are taken with `math`, element by element: numpy's may differ from the C library's in the last
    place."""
    a = np.asarray(x, dtype=float)
    flat = a.ravel()
    out = np.where(flat == 0.0, math.inf, math.nan)
    out[flat == math.inf] = 0.0
    small = (flat > 0.0) & (flat <= 1.0)
    if small.any():
        v = flat[small]
        total = np.ones_like(v)
        term = np.ones_like(v)
        active = np.ones(v.shape, dtype=bool)
        for k in range(1, 26):
            new = -term * k * v / ((k + 1) * (k + 1))
            term = np.where(active, new, term)
            total = np.where(active, total + new, total)
            active &= ~(np.abs(new) <= np.abs(total) * 1e-15)
            if not active.any():
                break
        log_v = np.array([math.log(e) for e in v.tolist()])
        out[small] = -EULER_GAMMA - log_v + v * total
    big = (flat > 1.0) & (flat < math.inf)
    if big.any():
        v = flat[big]
        terms = 20 + (80.0 / v).astype(np.int64)
        t0 = np.zeros_like(v)
        for k in range(int(terms.max()), 0, -1):
            t0 = np.where(k <= terms, k / (1.0 + k / (v + t0)), t0)
        exp_v = np.array([math.exp(-e) for e in v.tolist()])
        out[big] = exp_v / (v + t0)
    return out.reshape(a.shape)
