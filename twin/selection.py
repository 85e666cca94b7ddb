"""Ranking and selection of the best of k systems with an indifference zone delta: KN (Kim & Nelson 2001), fully
sequential with common random numbers, and Rinott's (1978) two-stage procedure.

Both guarantee P(select the best) >= 1 - alpha when the best mean exceeds every other by at least delta (normal
outputs). The sampler `sample(i, r)` returns replication r of system i; calling it with the same r for different
systems must use the same random numbers (CRN) for KN to profit from them. Pure numerics: no simulation here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from twin.errors import TwinError

Sampler = Callable[[int, int], float]


@dataclass(frozen=True)
class SelectionResult:
    best: int
    """Index of the selected system."""
    n_per_system: list[int]
    """Replications taken of each system (r = 0 .. n-1)."""
    eliminated_at: list[int | None]
    """Stage r (number of replications per surviving system) at which each system was eliminated; None if not."""
    means: list[float]
    """Sample mean of each system over its own n replications (in the caller's sense: not negated)."""
    procedure: str = "KN"
    stopped_at_max: bool = False
    """True when max_reps ended the procedure with several survivors (the largest mean among them is returned,
    without the probability guarantee)."""
    h: float = float("nan")
    """The procedure's constant: h^2 = 2 eta (n0 - 1) for KN, Rinott's h for Rinott."""


def _check(k: int, delta: float, alpha: float, n0: int) -> None:
    if k < 2:
        raise TwinError(f"ranking and selection needs at least 2 systems, got {k}")
    if not delta > 0:
        raise TwinError(f"--delta (indifference zone) must be positive, got {delta}")
    if not 0 < alpha < 1 - 1.0 / k:
        raise TwinError(f"alpha must be in (0, {1 - 1.0 / k:g}) for {k} systems, got {alpha}")
    if n0 < 2:
        raise TwinError(f"the first stage needs n0 >= 2 replications, got {n0}")


def _value(sample: Sampler, i: int, r: int) -> float:
    v = float(sample(i, r))
    if not math.isfinite(v):
        raise TwinError(f"system {i} replication {r} gave a non-finite value ({v}); cannot rank it")
    return v


def kn_eta(k: int, alpha: float, n0: int) -> float:
    """KN's eta = ((2 alpha / (k - 1))^(-2 / (n0 - 1)) - 1) / 2."""
    return 0.5 * ((2.0 * alpha / (k - 1)) ** (-2.0 / (n0 - 1)) - 1.0)


def kn_select(
    sample: Sampler,
    k: int,
    delta: float,
    alpha: float = 0.05,
    n0: int = 10,
    maximize: bool = True,
    max_reps: int = 10_000,
) -> SelectionResult:
    """Kim & Nelson (2001) procedure KN: select the system with the largest (or smallest) mean.

    1. Take n0 replications of every system; S_il^2 = sample variance of the differences X_i - X_l (pairs by r).
    2. At stage r >= n0 eliminate i if  Xbar_i(r) < Xbar_l(r) - W_il(r)  for some surviving l, with
       W_il(r) = max(0, delta / (2 r) * (h^2 S_il^2 / delta^2 - r)) and h^2 = 2 eta (n0 - 1).
    3. Stop when one system survives; otherwise take replication r of every survivor and repeat.
    """
    _check(k, delta, alpha, n0)
    if max_reps < n0:
        raise TwinError(f"max_reps {max_reps} is below the first stage n0 = {n0}")
    sign = 1.0 if maximize else -1.0
    h2 = 2.0 * kn_eta(k, alpha, n0) * (n0 - 1)

    x = np.full((k, max(n0, 64)), np.nan)
    for r in range(n0):
        for i in range(k):
            x[i, r] = sign * _value(sample, i, r)
    first = x[:, :n0]
    diff = first[:, None, :] - first[None, :, :]
    s2 = diff.var(axis=2, ddof=1)  # s2[i, l] = S_il^2

    n = np.full(k, n0)
    alive = np.ones(k, dtype=bool)
    eliminated_at: list[int | None] = [None] * k
    sums = first.sum(axis=1)
    r = n0
    stopped_at_max = False
    while True:
        idx = np.nonzero(alive)[0]
        mean = sums[idx] / r
        w = np.maximum(0.0, delta / (2.0 * r) * (h2 * s2[np.ix_(idx, idx)] / delta**2 - r))
        # i survives if mean_i >= mean_l - W_il for every other survivor l
        gap = mean[:, None] - (mean[None, :] - w)
        np.fill_diagonal(gap, 0.0)
        out = idx[(gap < 0).any(axis=1)]
        for i in out:
            alive[i] = False
            eliminated_at[int(i)] = r
        if alive.sum() == 1:
            break
        idx = np.nonzero(alive)[0]
        if r > np.floor(h2 * s2[np.ix_(idx, idx)] / delta**2).max():
            break  # r = N + 1 (KN step 3): every W is 0, the largest mean is selected (ties: lowest index)
        if not alive.any():  # cannot happen with W >= 0 (the max mean always survives); guard anyway
            raise RuntimeError("KN eliminated every system")
        if r >= max_reps:
            stopped_at_max = True
            break
        if r >= x.shape[1]:
            x = np.concatenate([x, np.full_like(x, np.nan)], axis=1)
        for i in np.nonzero(alive)[0]:
            v = sign * _value(sample, int(i), r)
            x[i, r] = v
            sums[i] += v
            n[i] += 1
        r += 1

    idx = np.nonzero(alive)[0]
    best = int(idx[np.argmax(sums[idx] / r)])
    means = [float(np.mean(x[i, : n[i]]) * sign) for i in range(k)]
    return SelectionResult(
        best=best,
        n_per_system=[int(v) for v in n],
        eliminated_at=eliminated_at,
        means=means,
        procedure="KN",
        stopped_at_max=stopped_at_max,
        h=math.sqrt(h2),
    )


@lru_cache(maxsize=256)
def rinott_h(k: int, n0: int, alpha: float = 0.05, nodes: int = 400) -> float:
    """Rinott's constant h: the root of  E_Y[ E_X[ Phi(h / sqrt((n0-1)(1/X + 1/Y))) ]^(k-1) ] = 1 - alpha,
    X, Y independent chi-square(n0 - 1).

    Both expectations are Gauss-Legendre sums over the chi-square quantile u in (0, 1) (`nodes` points; 400 gives
    about 1e-5), then brentq on h. E.g. k=2, n0=20, alpha=0.05 -> 2.4525 (scipy quad agrees to 1e-5).
    """
    from scipy import optimize, special
    from scipy import stats as sps

    if k < 2 or n0 < 2 or not 0 < alpha < 1 - 1.0 / k:
        raise TwinError(
            f"Rinott's h needs k >= 2, n0 >= 2, 0 < alpha < 1 - 1/k (got k={k}, n0={n0}, alpha={alpha})"
        )
    nu = n0 - 1
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = (u + 1.0) / 2.0, w / 2.0
    inv = 1.0 / sps.chi2.ppf(u, nu)
    scale = np.sqrt(nu * (inv[:, None] + inv[None, :]))  # [x node, y node]

    def pcs(h: float) -> float:
        inner = (special.ndtr(h / scale) * w[:, None]).sum(axis=0)  # E_X[...] for each y node
        return float((inner ** (k - 1) * w).sum())

    return float(optimize.brentq(lambda h: pcs(h) - (1.0 - alpha), 1e-3, 100.0, xtol=1e-9))


def rinott_select(
    sample: Sampler,
    k: int,
    delta: float,
    alpha: float = 0.05,
    n0: int = 20,
    maximize: bool = True,
    max_reps: int = 10_000,
) -> SelectionResult:
    """Rinott (1978) two-stage procedure: n0 replications each, then N_i = max(n0, ceil((h S_i / delta)^2)) in
    total for system i; select the largest overall mean. Valid with or without CRN (CRN does not reduce N_i).

    If some N_i exceeds `max_reps` it is capped there and `stopped_at_max` is set (no guarantee then).
    """
    _check(k, delta, alpha, n0)
    sign = 1.0 if maximize else -1.0
    h = rinott_h(k, n0, alpha)
    first = np.array([[sign * _value(sample, i, r) for r in range(n0)] for i in range(k)])
    s = first.std(axis=1, ddof=1)
    n_total = np.maximum(n0, np.ceil((h * s / delta) ** 2)).astype(int)
    capped = bool((n_total > max_reps).any())
    n_total = np.minimum(n_total, max(max_reps, n0))
    means = []
    for i in range(k):
        extra = [sign * _value(sample, i, r) for r in range(n0, int(n_total[i]))]
        means.append((first[i].sum() + sum(extra)) / n_total[i])
    best = int(np.argmax(means))
    return SelectionResult(
        best=best,
        n_per_system=[int(v) for v in n_total],
        eliminated_at=[None] * k,
        means=[float(m * sign) for m in means],
        procedure="Rinott",
        stopped_at_max=capped,
        h=h,
    )
