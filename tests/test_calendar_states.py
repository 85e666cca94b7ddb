"""Shift calendars, planned shutdowns, failure clocks and equipment states."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linehelpers import scenario

from plant.calendar import Calendar
from plant.equipment.unit import STATES
from plant.line import Line
from twin.scenario import CalendarConfig


def deterministic_ald_line(calendar: dict | None, horizon_h: float = 672.5):
    """One reactor with an exact 4 h batch, always fed; everything downstream fast and roomy."""
    return scenario(
        horizon_h=horizon_h,
        arrivals={"kind": "takt", "takt_h": 1.0},
        ald={
            "reactors": 1,
            "load_h": 0.5,
            "pump_heat_h": 0.5,
            "cycle_min": 15.0,
            "vent_cool_h": 0.0,
            "unload_h": 0.5,
            "time_distribution": "fixed",
            "mtbf_h": None,
            "pm_every_batches": None,
        },
        buffer={"capacity_lots": 10_000},
        furnaces={"count": 4, "capacity_lots": 4, "mtbf_h": None, "policy": {"name": "immediate"}},
        qc={"test_h": 1.0, "stations": 4},
        calendar=calendar,
    )


def run(sc):
    line = Line(sc, seed=1)
    return line, {k: v.to_pandas() for k, v in line.run().tables().items()}


def test_weekends_off_lower_output_by_two_sevenths():
    _, free = run(deterministic_ald_line(None))
    _, weekdays = run(deterministic_ald_line({"pattern": "3x8-weekdays"}))
    n_free = (free["events"].kind == "ald_end").sum()
    n_week = (weekdays["events"].kind == "ald_end").sum()
    assert n_free == 4 * 42  # 4 weeks of 4 h batches around the clock
    assert n_week == 4 * 30  # 120 staffed hours a week / 4 h
    # good output at QC follows (pipeline lag of a few lots at each weekend)
    good_free = (free["lots"].status == "good").sum()
    good_week = (weekdays["lots"].status == "good").sum()
    assert good_week / good_free == pytest.approx(30 / 42, abs=0.03)


def staffed_at(cal: Calendar, times) -> bool:
    return all(cal.is_staffed(t) for t in times)


def test_no_loading_unloading_or_qc_in_unstaffed_windows():
    sc = deterministic_ald_line({"pattern": "2x8-weekdays", "holidays": [2]})
    line, tabs = run(sc)
    ev, b = tabs["events"], tabs["batches"]
    cal = line.calendar
    assert staffed_at(cal, ev.t_h[ev.kind == "ald_start"])
    assert staffed_at(cal, ev.t_h[ev.kind == "qc_start"])
    done = b.dropna(subset=["end_h"])  # batches still in a furnace at the horizon have not been unloaded
    assert staffed_at(cal, b.load_start_h) and staffed_at(cal, done.end_h - sc.furnaces.unload_h)
    # the holiday (day 2, a Wednesday) sees no ALD start at all
    day = (ev.t_h[ev.kind == "ald_start"] // 24).astype(int)
    assert 2 not in set(day) and {0, 1, 3} <= set(day)
    # units show unstaffed time
    units = tabs["units"].set_index("unit")
    assert units.loc["ALD1", "unstaffed_h"] > 100


def test_planned_shutdown_starts_no_work_and_is_scheduled_down():
    sc = deterministic_ald_line({"shutdowns": [{"start_h": 100.0, "end_h": 148.0}]}, horizon_h=300.0)
    _, tabs = run(sc)
    ev = tabs["events"]
    starts = ev.t_h[ev.kind.isin(["ald_start", "qc_start"])]
    assert not ((starts >= 100.0) & (starts < 148.0)).any()
    states = tabs["states"]
    ald = states[(states.unit == "ALD1") & (states.state == "scheduled_down")]
    assert (ald.end_h - ald.start_h).sum() == pytest.approx(48.0 - (ald.start_h.min() - 100.0), abs=4.0)


def test_calendar_queries():
    cal = Calendar(CalendarConfig(pattern="1x8-weekdays", holidays=[1]), 24 * 14)
    assert cal.is_staffed(7.0) and not cal.is_staffed(6.99) and not cal.is_staffed(15.0)
    assert cal.next_staffed(15.0) == 2 * 24 + 7.0  # day 1 is a holiday
    assert cal.next_staffed(4 * 24 + 16) == 7 * 24 + 7.0  # Friday evening -> Monday morning
    always = Calendar(None, 100.0)
    assert always.always_staffed and always.ready_at(42.0, staff=True) == 42.0


def test_failure_clock_calendar_vs_operating():
    def downs(clock: str) -> int:
        sc = scenario(
            horizon_h=20_000.0,
            arrivals={"kind": "poisson", "rate_per_h": 0.15},  # reactors mostly idle
            ald={"mtbf_h": 100.0, "mttr_h": 1.0, "failure_clock": clock, "pm_every_batches": None},
        )
        _, tabs = run(sc)
        ev = tabs["events"]
        return int(((ev.kind == "down") & ev.unit.str.startswith("ALD")).sum())

    operating, calendar = downs("operating"), downs("calendar")
    # busy share ~ 0.15 * 4.5 / 3 = 0.225: calendar-time failures are several times more frequent
    assert calendar > 2.5 * operating
    assert operating == pytest.approx(3 * 0.225 * 20_000 / 100, rel=0.25)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.05, 1.2),
    reactors=st.integers(1, 4),
    buffer_cap=st.integers(1, 15),
    furnaces=st.integers(1, 3),
    policy=st.sampled_from(["full", "timeout", "immediate", "campaign", "quality_aware"]),
    pattern=st.sampled_from([None, "3x8-weekdays", "2x8-weekdays", "1x8-weekdays"]),
    shutdown=st.booleans(),
    clock=st.sampled_from(["operating", "calendar"]),
    horizon=st.floats(50.0, 600.0),
    seed=st.integers(0, 2**31),
)
def test_time_in_states_sums_to_the_horizon(
    rate, reactors, buffer_cap, furnaces, policy, pattern, shutdown, clock, horizon, seed
):
    cal = None
    if pattern or shutdown:
        cal = {
            "pattern": pattern,
            "shutdowns": [{"start_h": horizon / 3, "end_h": horizon / 2}] if shutdown else [],
        }
    sc = scenario(
        horizon_h=horizon,
        arrivals={"kind": "poisson", "rate_per_h": rate},
        ald={"reactors": reactors, "mtbf_h": 40.0, "failure_clock": clock},
        buffer={"capacity_lots": buffer_cap},
        furnaces={"count": furnaces, "mtbf_h": 100.0, "failure_clock": clock, "policy": {"name": policy}},
        calendar=cal,
    )
    line = Line(sc, seed=seed)
    tabs = line.run().tables()
    states = tabs["states"].to_pandas()
    assert set(states.state) <= set(STATES)
    assert (states.end_h > states.start_h).all()
    per_unit = (states.end_h - states.start_h).groupby(states.unit).sum()
    units = [u.name for u in (*line.reactors, *line.furnaces, *line.qc.stations)]
    for u in units:
        assert per_unit.get(u, 0.0) == pytest.approx(horizon, rel=1e-9, abs=1e-9), u
    # intervals of one unit never overlap and are contiguous
    for _, grp in states.groupby("unit"):
        g = grp.sort_values("start_h")
        assert g.start_h.iloc[1:].to_numpy() == pytest.approx(g.end_h.iloc[:-1].to_numpy())
    # the units table is the same totals
    totals = tabs["units"].to_pandas().set_index("unit")
    row_sum = totals[["busy_h", "setup_h", "down_h", "pm_h", "blocked_h", "standby_h", "unstaffed_h"]].sum(
        axis=1
    )
    assert isinstance(totals, pd.DataFrame)
    for u in units:
        assert row_sum[u] == pytest.approx(horizon, rel=1e-9)
