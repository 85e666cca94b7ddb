"""Small builders of scenarios for the line tests (dict overrides on a fast default line)."""

from __future__ import annotations

import copy
from typing import Any

from twin.scenario import Scenario, scenario_from_dict

FAST_LINE: dict[str, Any] = {
    "name": "fast",
    "horizon_h": 500.0,
    "seed": 7,
    "arrivals": {"kind": "poisson", "rate_per_h": 0.5, "mass_kg": 120.0, "recipe": "r400"},
    "ald": {"reactors": 3, "mtbf_h": 300.0, "pm_every_batches": 40},
    "buffer": {"capacity_lots": 12, "environment": "ambient", "rh_pct": 50.0},
    "furnaces": {"count": 2, "capacity_lots": 4, "policy": {"name": "timeout", "max_wait_h": 6.0}},
    "recipes": {"r400": {"setpoint_c": 400.0, "soak_h": 3.0, "atmosphere": "O2"}},
    "qc": {"test_h": 8.0, "stations": 6},
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("recipes", "policy"):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario(**over: Any) -> Scenario:
    return scenario_from_dict(merge(FAST_LINE, over))
