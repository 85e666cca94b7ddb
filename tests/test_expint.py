"""plant.expint.exp1 against scipy.special.exp1 (the function it replaces) and against known values."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import exp1 as scipy_exp1

from plant.expint import exp1


def test_within_one_ulp_of_scipy_from_1e_minus_12_to_700():
    xs = np.concatenate([np.logspace(-12, math.log10(700.0), 20_000), np.linspace(0.5, 2.0, 3001)])
    ours, ref = exp1(xs), scipy_exp1(xs)
    assert ref.min() > 0.0
    ulps = np.abs(ours - ref) / np.spacing(ref)
    assert ulps.max() <= 1.0
    assert np.mean(ulps == 0.0) > 0.9  # the same algorithm: mostly bit for bit


@pytest.mark.parametrize(
    ("x", "value"),
    [  # Abramowitz & Stegun, table 5.1 (x E1(x) e^x for x >= 1)
        (0.5, 0.5597735947761608),
        (1.0, 0.21938393439552026),
        (2.0, 0.04890051070806112),
        (10.0, 4.156968929685324e-06),
    ],
)
def test_known_values(x, value):
    assert float(exp1(x)) == pytest.approx(value, rel=1e-14)


def test_edges_as_scipy():
    assert float(exp1(0.0)) == math.inf
    assert math.isnan(exp1(-1.0)) and math.isnan(exp1(math.nan))
    assert float(exp1(math.inf)) == 0.0
    assert float(exp1(800.0)) == 0.0 == scipy_exp1(800.0)
    assert float(exp1(1e-300)) == pytest.approx(scipy_exp1(1e-300), rel=1e-15)


def test_an_element_gets_the_same_bits_whatever_array_it_is_in():
    """Each element stops its own recurrence: its neighbours (small, large, inf, nan) change nothing."""
    xs = np.concatenate([np.logspace(-12, 3, 5000), [0.0, -1.0, math.nan, math.inf, 1.0, 1e-300, 800.0]])
    whole = exp1(xs)
    alone = np.array([float(exp1(v)) for v in xs.tolist()])
    assert np.array_equal(whole, alone, equal_nan=True)
    assert np.array_equal(exp1(xs[::-1]), whole[::-1], equal_nan=True)


def test_keeps_the_shape():
    assert exp1(2.0).shape == ()
    assert exp1([[1.0, 2.0, 3.0]]).shape == (1, 3)
    assert exp1(np.full((4, 10), 2.0)).shape == (4, 10)
    assert exp1(np.array([1.0, 2.0]))[1] == exp1(2.0)


def test_the_line_and_the_scenario_do_not_import_scipy():
    """The point of the module: a worker process or a `twin` command imports no scipy to simulate."""
    code = "import sys, plant.line, twin.scenario, twin.runner; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
