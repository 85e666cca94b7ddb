"""E1, the exponential integral E1(x) = ∫_x^∞ e^(-t)/t dt, for the closed-form kinetic integral of a ramp.

Written here instead of taken from `scipy.special.exp1`: importing scipy.special costs about 0.3 s, paid by
every `twin` command and by every start of a study's process pool, while a run calls E1 a few times (once per
recipe segment; the doses are cached). Same algorithm as scipy's, and within one unit in the last place of it
(tests/test_expint.py).

    >>> round(exp1(1.0), 12)
    0.219383934396
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

EULER_GAMMA = 0.57721566490153286061


def exp1_scalar(x: float) -> float:
    """E1(x) for a float: inf at 0, nan below 0 or at nan (as scipy.special.exp1).

    The algorithm of scipy's own E1 (Zhang & Jin, Computation of Special Functions, 1996, routine E1XB):
    x <= 1, the power series -γ - ln x + x Σ r_k with r_k = -r_(k-1) k x / (k+1)^2;
    x > 1, the continued fraction e^-x / (x + t), t = 1/(1 + 1/(x + 2/(1 + 2/(x + ...)))), summed backwards
    from 20 + 80/x terms."""
    if not x > 0.0:  # also nan
        return math.inf if x == 0.0 else math.nan
    if x == math.inf:
        return 0.0
    if x <= 1.0:
        total = 1.0
        term = 1.0
        for k in range(1, 26):
            term = -term * k * x / ((k + 1) * (k + 1))
            total += term
            if abs(term) <= abs(total) * 1e-15:
                break
        return -EULER_GAMMA - math.log(x) + x * total
    t0 = 0.0
    for k in range(20 + int(80.0 / x), 0, -1):
        t0 = k / (1.0 + k / (x + t0))
    return math.exp(-x) / (x + t0)


def exp1(x: ArrayLike) -> np.ndarray:
    """E1 elementwise over an array (or a scalar, returned as a 0-d array), as a float array of x's shape; equal
    bit for bit to `exp1_scalar` of each element. A long array (a measured furnace profile) runs the same
    recurrences over all its elements at once."""
    a = np.asarray(x, dtype=float)
    flat = a.ravel()
    if flat.size <= _SHORT:
        out = np.array([exp1_scalar(float(v)) for v in flat], dtype=float)
    else:
        out = _exp1_many(flat)
    return out.reshape(a.shape)


_SHORT = 16  # up to this many elements, the scalar loop is faster than the array recurrences


def _exp1_many(a: np.ndarray) -> np.ndarray:
    """`exp1_scalar` over a 1-D array: the same operations in the same order, element by element, so the same
    bits (exp and log are taken with `math`, as there: numpy's may differ in the last place)."""
    out = np.where(a == 0.0, math.inf, math.nan)
    out[a == math.inf] = 0.0
    small = (a > 0.0) & (a <= 1.0)
    if small.any():
        x = a[small]
        total = np.ones_like(x)
        term = np.ones_like(x)
        active = np.ones(x.shape, dtype=bool)
        for k in range(1, 26):
            new = -term * k * x / ((k + 1) * (k + 1))
            term = np.where(active, new, term)
            total = np.where(active, total + new, total)
            active &= ~(np.abs(new) <= np.abs(total) * 1e-15)
            if not active.any():
                break
        log_x = np.array([math.log(v) for v in x.tolist()])
        out[small] = -EULER_GAMMA - log_x + x * total
    big = (a > 1.0) & (a < math.inf)
    if big.any():
        x = a[big]
        terms = 20 + (80.0 / x).astype(np.int64)
        t0 = np.zeros_like(x)
        for k in range(int(terms.max()), 0, -1):
            t0 = np.where(k <= terms, k / (1.0 + k / (x + t0)), t0)
        exp_x = np.array([math.exp(-v) for v in x.tolist()])
        out[big] = exp_x / (x + t0)
    return out
