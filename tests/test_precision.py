"""The sequential precision rule stops where the variance says it should, and at the maximum when it cannot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from twin.errors import TwinError
from twin.precision import PrecisionRule, half_width, replications_for_precision


def n_needed(sigma: float, mu: float, target: float, confidence: float = 0.95) -> float:
    """Fixed point of n = (t_{n-1} sigma / (target mu))^2 (known sigma)."""
    n = (sps.norm.ppf(0.5 + confidence / 2) * sigma / (target * mu)) ** 2
    for _ in range(20):
        n = (sps.t.ppf(0.5 + confidence / 2, n - 1) * sigma / (target * mu)) ** 2
    return n


@pytest.mark.parametrize(("mu", "sigma", "target"), [(10.0, 1.0, 0.02), (50.0, 12.0, 0.05)])
def test_stops_near_the_replications_the_variance_needs(mu, sigma, target):
    expected = n_needed(sigma, mu, target)  # 98.0 and 90.2
    ns = []
    for seed in range(30):
        x = np.random.default_rng(seed).normal(mu, sigma, 1000)
        res = replications_for_precision(lambda r, x=x: x[r], target, min_reps=10, max_reps=500)
        assert res.reached and res.rel_half_width <= target
        assert res.n == len(res.values) and res.values == pytest.approx(x[: res.n].tolist())
        assert res.mean == pytest.approx(x[: res.n].mean())
        # one replication fewer would not have been enough (the rule stops at the first n that meets the target)
        m, hw = half_width(x[: res.n - 1])
        assert hw / abs(m) > target
        ns.append(res.n)
    ns = np.array(ns)
    assert abs(ns.mean() - expected) <= 0.08 * expected, (ns.mean(), expected)
    assert np.all((ns >= 0.6 * expected) & (ns <= 1.5 * expected)), ns


def test_stops_at_the_maximum_when_the_target_is_unreachable():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 1.0, 100)
    res = replications_for_precision(lambda r: x[r], 0.01, min_reps=5, max_reps=40)
    assert res.n == 40 and not res.reached and res.rel_half_width > 0.01
    # a KPI whose mean is exactly zero has an infinite relative half-width: runs to the maximum
    z = np.array([1.0, -1.0] * 20)
    res0 = replications_for_precision(lambda r: z[r], 0.5, min_reps=4, max_reps=30)
    assert res0.n == 30 and not res0.reached and math.isinf(res0.rel_half_width)


def test_deterministic_kpi_stops_at_the_minimum():
    res = replications_for_precision(lambda r: 7.5, 0.02, min_reps=5)
    assert (res.n, res.mean, res.half_width, res.reached) == (5, 7.5, 0.0, True)


def test_batched_sampler_matches_the_estimate_and_never_exceeds_the_maximum():
    x = np.random.default_rng(4).normal(10.0, 1.0, 1000)
    calls: list[list[int]] = []

    def many(rs: list[int]) -> list[float]:
        calls.append(rs)
        return [float(x[r]) for r in rs]

    res = replications_for_precision(None, 0.02, min_reps=10, max_reps=500, sample_many=many, max_batch=16)
    flat = [r for c in calls for r in c]
    assert flat == list(range(res.n))  # every replication once, in order
    assert calls[0] == list(range(10)) and max(len(c) for c in calls) <= 16
    assert res.reached and 0.6 * 98 <= res.n <= 1.5 * 98
    capped = replications_for_precision(None, 1e-4, min_reps=10, max_reps=37, sample_many=many, max_batch=16)
    assert capped.n == 37 and not capped.reached


def test_rule_state_and_errors():
    rule = PrecisionRule(0.05, min_reps=3, max_reps=10)
    assert rule.next_batch() == 3
    for v in (10.0, 11.0, 9.0):
        rule.add(v)
    mean, hw, rel = rule.current()
    assert mean == 10.0 and hw == pytest.approx(sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert rel == pytest.approx(hw / 10.0) and not rule.done
    # estimate: n (hw / (target mean))^2 = 3 * (2.484 / 0.5)^2 = 74 -> capped by max_reps - n and max_batch
    assert rule.next_batch(max_batch=100) == 7
    with pytest.raises(TwinError, match="replication 3 gave a non-finite"):
        rule.add(float("nan"))
    with pytest.raises(TwinError, match="--precision must be positive"):
        PrecisionRule(0.0)
    with pytest.raises(TwinError, match="below the minimum"):
        PrecisionRule(0.1, min_reps=10, max_reps=5)
