"""OEE per unit (availability x performance x quality) and the shifting-bottleneck indicator, from the trace.

Definitions (window = [warmup_h, horizon_h], states clipped to it; see docs/equipment-states.md):
  planned      = window - scheduled_down                      (PM and planned shutdowns are not losses)
  run          = planned - unscheduled_down - setup - unstaffed
  availability = run / planned
  performance  = ideal hours of the work done / run           (starving, blocking, partial batches are losses)
  quality      = good lots / lots the unit processed          (final disposition of those lots)
Bottleneck: the active-period method (Roser, Nakano & Tanaka 2002): at every instant the momentary bottleneck is
the unit whose current active period (productive, setup, down) is the longest; a unit's bottleneck share is the
fraction of the window during which it is the momentary bottleneck.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

ACTIVE = ("productive", "setup", "scheduled_down", "unscheduled_down")


def _clip(states, t0: float, t1: float):
    s = np.clip(states["start_h"].to_numpy(), t0, t1)
    e = np.clip(states["end_h"].to_numpy(), t0, t1)
    return s, e


def _hours(units: np.ndarray, kinds: np.ndarray, dur: np.ndarray) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for u, k, d in zip(units.tolist(), kinds.tolist(), dur.tolist()):
        out[(u, k)] = out.get((u, k), 0.0) + d
    return out


def active_periods(states: pa.Table, t0: float, t1: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per unit: merged intervals during which it is active (not standby, blocked or unstaffed)."""
    s, e = _clip(states, t0, t1)
    units = np.asarray(states["unit"].to_pylist(), dtype=object)
    active = np.isin(np.asarray(states["state"].to_pylist(), dtype=object), ACTIVE)
    out = {}
    for u in sorted(set(units.tolist())):
        m = (units == u) & active & (e > s)
        starts, ends = s[m], e[m]
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        merged_s, merged_e = [], []
        for a, b in zip(starts.tolist(), ends.tolist()):
            if merged_e and a <= merged_e[-1] + 1e-12:
                merged_e[-1] = max(merged_e[-1], b)
            else:
                merged_s.append(a)
                merged_e.append(b)
        out[u] = (np.array(merged_s), np.array(merged_e))
    return out


def bottleneck_shares(states: pa.Table, t0: float, t1: float) -> dict[str, float]:
    """Fraction of [t0, t1] during which each unit is the momentary bottleneck (longest active period)."""
    periods = active_periods(states, t0, t1)
    units = list(periods)
    if not units or t1 <= t0:
        return {}
    cuts = np.unique(np.concatenate([np.array([t0, t1])] + [np.concatenate(p) for p in periods.values()]))
    cuts = cuts[(cuts >= t0) & (cuts <= t1)]
    mids, widths = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)
    lengths = np.zeros((len(units), len(mids)))
    for i, u in enumerate(units):
        starts, ends = periods[u]
        if len(starts) == 0:
            continue
        j = np.searchsorted(starts, mids, side="right") - 1
        ok = j >= 0
        jj = np.where(ok, j, 0)
        cover = ok & (ends[jj] > mids)
        lengths[i] = np.where(cover, ends[jj] - starts[jj], 0.0)
    best = lengths.argmax(axis=0)
    any_active = lengths.max(axis=0) > 0
    total = t1 - t0
    return {u: float(widths[(best == i) & any_active].sum() / total) for i, u in enumerate(units)}


def unit_oee(tables: dict[str, pa.Table], scenario: Any, warmup_h: float | None = None) -> pa.Table:
    """OEE and its factors per unit, with the bottleneck share. One row per unit of the `units` table."""
    t0 = float(scenario.warmup_h if warmup_h is None else warmup_h)
    t1 = float(scenario.horizon_h)
    states, lots, batches, units = tables["states"], tables["lots"], tables["batches"], tables["units"]
    s, e = _clip(states, t0, t1)
    hours = _hours(np.asarray(states["unit"].to_pylist()), np.asarray(states["state"].to_pylist()), e - s)
    shares = bottleneck_shares(states, t0, t1)
    window = t1 - t0

    ald_ideal_h = scenario.ald.nominal_batch_h(scenario.coating.cycles)
    lot_status = dict(zip(lots["lot_id"].to_pylist(), lots["status"].to_pylist()))
    ald_unit = np.asarray(lots["ald_unit"].to_pylist(), dtype=object)
    ald_end = lots["ald_end_h"].to_numpy()
    status = np.asarray(lots["status"].to_pylist(), dtype=object)
    qc_end = lots["qc_end_h"].to_numpy()
    in_qc = (qc_end >= t0) & (qc_end <= t1)
    qc_quality = float((status[in_qc] == "good").mean()) if in_qc.any() else float("nan")

    b_end = batches["end_h"].to_numpy()
    b_in = (b_end >= t0) & (b_end <= t1)
    b_furnace = np.asarray(batches["furnace"].to_pylist(), dtype=object)
    b_ideal = (b_end - batches["start_h"].to_numpy() + scenario.furnaces.load_h) * (
        batches["n_lots"].to_numpy() / batches["capacity_lots"].to_numpy()
    )
    b_ids = batches["batch_id"].to_pylist()
    lots_of_batch: dict[int, list[str]] = {}
    for lid, bid, rbid in zip(
        lots["lot_id"].to_pylist(), lots["batch_id"].to_pylist(), lots["rework_batch_id"].to_pylist()
    ):
        for b in (bid, rbid):
            if b >= 0:
                lots_of_batch.setdefault(b, []).append(lot_status[lid])

    rows: dict[str, list[Any]] = {k: [] for k in ("unit", "kind", "availability", "performance", "quality", "oee",
                                                   "bottleneck_share")}  # fmt: skip
    for name, kind in zip(units["unit"].to_pylist(), units["kind"].to_pylist()):
        h = {
            k: hours.get((name, k), 0.0) for k in ("scheduled_down", "unscheduled_down", "setup", "unstaffed")
        }
        planned = window - h["scheduled_down"]
        run = planned - h["unscheduled_down"] - h["setup"] - h["unstaffed"]
        if kind == "ald":
            m = (ald_unit == name) & (ald_end >= t0) & (ald_end <= t1)
            ideal = ald_ideal_h * int(m.sum())
            done = status[m]
            quality = (
                float((done == "good").sum() / max(1, (done != "wip").sum())) if m.any() else float("nan")
            )
        elif kind == "furnace":
            m = b_in & (b_furnace == name)
            ideal = float(b_ideal[m].sum())
            verdicts = [st for i, b in enumerate(b_ids) if m[i] for st in lots_of_batch.get(b, [])]
            finished = [v for v in verdicts if v != "wip"]
            quality = sum(v == "good" for v in finished) / len(finished) if finished else float("nan")
        else:
            ideal = hours.get((name, "productive"), 0.0)  # a test takes its nominal time
            quality = qc_quality
        availability = run / planned if planned > 0 else float("nan")
        performance = min(1.0, ideal / run) if run > 0 else float("nan")
        rows["unit"].append(name)
        rows["kind"].append(kind)
        rows["availability"].append(availability)
        rows["performance"].append(performance)
        rows["quality"].append(quality)
        rows["oee"].append(availability * performance * quality)
        rows["bottleneck_share"].append(shares.get(name, 0.0))
    return pa.table(rows)


def bottleneck(oee: pa.Table) -> str:
    """The unit that is most often the momentary bottleneck."""
    shares = oee["bottleneck_share"].to_pylist()
    return oee["unit"][int(np.argmax(shares))].as_py() if shares else ""
