"""Ranking and selection: KN and Rinott pick the true best in at least 1 - alpha of macro-replications."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import TwinError
from twin.selection import kn_eta, kn_select, rinott_h, rinott_select


class CorrelatedSystems:
    """Normal systems with correlation `rho` between systems at the same replication r (a model of CRN)."""

    def __init__(self, means, rho: float, seed, sd=1.0):
        self.means = np.asarray(means, dtype=float)
        self.sd = np.broadcast_to(np.asarray(sd, dtype=float), self.means.shape)
        self.rho = rho
        self.rng = np.random.default_rng(seed)
        self.buf = np.empty((self.means.size, 0))
        self.calls = 0

    def __call__(self, i: int, r: int) -> float:
        self.calls += 1
        while r >= self.buf.shape[1]:
            common = self.rng.normal(size=256)
            own = self.rng.normal(size=(self.means.size, 256))
            z = np.sqrt(self.rho) * common + np.sqrt(1 - self.rho) * own
            self.buf = np.concatenate([self.buf, self.means[:, None] + self.sd[:, None] * z], axis=1)
        return float(self.buf[i, r])


DELTA = 0.5


def macro(procedure, means, rho, n_macro, seed, **kw):
    """(correct selections, mean total replications); the best is moved to a different index each time."""
    k = len(means)
    ok, total = 0, []
    for m, ss in enumerate(np.random.SeedSequence(seed).spawn(n_macro)):
        shift = m % k
        sys_ = CorrelatedSystems(np.roll(means, shift), rho, ss)
        res = procedure(sys_, k, DELTA, **kw)
        ok += res.best == shift
        total.append(sum(res.n_per_system))
        assert sys_.calls == sum(res.n_per_system)  # each (system, replication) sampled once
    return ok, float(np.mean(total))


def test_kn_with_crn_selects_the_best_with_the_guaranteed_probability():
    # slippage configuration: best = delta, the other four at 0 (the hardest case); rho = 0.5 from CRN
    ok, total = macro(kn_select, [DELTA, 0, 0, 0, 0], rho=0.5, n_macro=500, seed=2024)
    assert ok >= 0.95 * 500, ok  # measured 486 / 500
    # increasing-means configuration: others at delta, 2 delta, ... below
    ok2, total2 = macro(kn_select, [DELTA, 0, -0.5, -1.0, -1.5], rho=0.5, n_macro=200, seed=7)
    assert ok2 >= 0.95 * 200
    assert total2 < total  # easier configuration, fewer replications


def test_crn_saves_replications_in_kn():
    ok_ind, n_ind = macro(kn_select, [DELTA, 0, 0, 0, 0], rho=0.0, n_macro=100, seed=11)
    ok_crn, n_crn = macro(kn_select, [DELTA, 0, 0, 0, 0], rho=0.5, n_macro=100, seed=11)
    # Var(X_i - X_l) halves with rho = 0.5, so KN needs about half the replications
    assert n_crn < 0.7 * n_ind, (n_crn, n_ind)
    assert ok_ind >= 92 and ok_crn >= 92


def test_kn_minimize_and_result_fields():
    # smallest mean is best: system 2
    sys_ = CorrelatedSystems([3.0, 2.6, 2.0, 3.5], rho=0.3, seed=5, sd=[1.0, 0.5, 1.0, 2.0])
    res = kn_select(sys_, 4, DELTA, maximize=False)
    assert res.best == 2 and res.procedure == "KN" and not res.stopped_at_max
    assert res.eliminated_at[2] is None and all(
        e is not None for i, e in enumerate(res.eliminated_at) if i != 2
    )
    assert all(res.n_per_system[i] == res.eliminated_at[i] for i in range(4) if i != 2)
    assert res.n_per_system[2] == max(res.n_per_system) >= 10
    assert res.means[2] == pytest.approx(np.mean(sys_.buf[2, : res.n_per_system[2]]))
    assert res.h**2 == pytest.approx(2 * kn_eta(4, 0.05, 10) * 9)
    # eta for k = 5, alpha = 0.05, n0 = 10 by hand: ((0.1 / 4) ** (-2 / 9) - 1) / 2
    assert kn_eta(5, 0.05, 10) == pytest.approx(0.5 * (0.025 ** (-2 / 9) - 1))


def test_kn_ties_and_the_replication_cap():
    # identical deterministic systems: every S^2 is 0, so KN stops after n0 and takes the first of the tie
    res = kn_select(lambda i, r: 1.0, 3, DELTA)
    assert res.best == 0 and res.n_per_system == [10, 10, 10]
    # two equal noisy systems with a tiny cap: several survivors, flagged
    sys_ = CorrelatedSystems([0.0, 0.0], rho=0.0, seed=1, sd=5.0)
    capped = kn_select(sys_, 2, 0.01, max_reps=30)
    assert capped.stopped_at_max and max(capped.n_per_system) == 30
    with pytest.raises(TwinError, match="at least 2 systems"):
        kn_select(lambda i, r: 0.0, 1, DELTA)
    with pytest.raises(TwinError, match="--delta"):
        kn_select(lambda i, r: 0.0, 3, 0.0)
    with pytest.raises(TwinError, match="system 1 replication 0 gave a non-finite"):
        kn_select(lambda i, r: float("nan") if i == 1 else 0.0, 3, DELTA)


def test_rinott_h_solves_its_defining_equation():
    h = rinott_h(2, 20, 0.05)
    assert h == pytest.approx(2.4525, abs=2e-4)  # scipy quad on the double integral gives 2.45247
    assert rinott_h(5, 20, 0.05) == pytest.approx(3.3854, abs=2e-4)
    # Monte Carlo of the definition: P(Z_j <= h / sqrt(nu (1/X_j + 1/Y)) for j = 1..k-1) = 1 - alpha
    k, n0 = 5, 10
    h = rinott_h(k, n0, 0.05)
    rng = np.random.default_rng(3)
    m, nu = 100_000, n0 - 1
    y = rng.chisquare(nu, m)
    x = rng.chisquare(nu, (m, k - 1))
    z = rng.normal(size=(m, k - 1))
    p = np.all(z <= h / np.sqrt(nu * (1 / x + 1 / y[:, None])), axis=1).mean()
    assert p == pytest.approx(0.95, abs=0.0025)  # MC s.e. 0.0007


def test_rinott_selects_the_best_with_the_guaranteed_probability():
    ok, _ = macro(rinott_select, [DELTA, 0, 0, 0, 0], rho=0.5, n_macro=200, seed=99)
    assert ok >= 0.95 * 200, ok
    # the second-stage sizes follow N_i = max(n0, ceil((h S_i / delta)^2))
    sys_ = CorrelatedSystems([1.0, 0.0, 0.0], rho=0.0, seed=3, sd=[1.0, 2.0, 0.1])
    res = rinott_select(sys_, 3, DELTA, n0=20)
    h = rinott_h(3, 20, 0.05)
    s = sys_.buf[:, :20].std(axis=1, ddof=1)
    assert res.n_per_system == [max(20, int(np.ceil((h * si / DELTA) ** 2))) for si in s]
    assert res.n_per_system[2] == 20 and res.best == 0 and res.h == h
