"""The line: determinism, common random numbers, arrivals kinds, equipment behaviour and quality in the line."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from linehelpers import scenario

from plant import physics
from plant.line import Line
from twin.scenario import load_scenario


def ipc_bytes(table: pa.Table) -> bytes:
    """The table serialised (Arrow IPC): equal bytes = identical bit for bit, NaN included."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def tables(sc, seed=1, rep=0):
    return Line(sc, seed=seed, replication=rep).run().tables()


def test_same_scenario_and_seed_give_identical_trace():
    sc = scenario(horizon_h=800.0)
    a, b = tables(sc, 3), tables(sc, 3)
    for name in a:
        assert ipc_bytes(a[name]) == ipc_bytes(b[name]), name
    c = tables(sc, 4)
    assert ipc_bytes(a["lots"]) != ipc_bytes(c["lots"])


def test_replications_differ_and_are_reproducible():
    sc = scenario(horizon_h=400.0)
    assert ipc_bytes(tables(sc, 3, 0)["lots"]) != ipc_bytes(tables(sc, 3, 1)["lots"])
    assert ipc_bytes(tables(sc, 3, 1)["lots"]) == ipc_bytes(tables(sc, 3, 1)["lots"])


def test_common_random_numbers_across_furnace_policies():
    a = tables(scenario(horizon_h=800.0, furnaces={"policy": {"name": "full"}}), 9)["lots"]
    b = tables(scenario(horizon_h=800.0, furnaces={"policy": {"name": "immediate"}}), 9)["lots"]
    # same arrivals
    assert a["release_h"].equals(b["release_h"])
    # same ALD times: the first lots, before the buffer ever blocks, have identical ALD start/end
    n = 40
    assert a["ald_end_h"].slice(0, n).equals(b["ald_end_h"].slice(0, n))
    # same thickness noise per lot (the lot's quality noise does not depend on its path)
    good = [i for i in range(n) if not math.isnan(a["thickness_nm"][i].as_py() or math.nan)]
    good = [i for i in good if not math.isnan(b["thickness_nm"][i].as_py() or math.nan)]
    assert good
    for i in good:
        assert a["thickness_nm"][i].as_py() == b["thickness_nm"][i].as_py()


def test_takt_and_plan_arrivals(tmp_path):
    sc = scenario(horizon_h=100.0, arrivals={"kind": "takt", "takt_h": 2.5})
    rel = tables(sc)["lots"]["release_h"].to_pylist()
    assert rel[:4] == [0.0, 2.5, 5.0, 7.5] and len(rel) == 40
    plan = tmp_path / "plan.csv"
    plan.write_text("lot_id,release_h,mass_kg,recipe\n101,1.0,100,r400\n102,1.5,90,hot\n103,30,80,r400\n")
    yml = tmp_path / "s.yaml"
    yml.write_text(
        "horizon_h: 200\narrivals: {kind: plan, plan_csv: plan.csv}\n"
        "recipes: {r400: {setpoint_c: 400}, hot: {setpoint_c: 450}}\n"
    )
    lots = tables(load_scenario(yml))["lots"].to_pandas()
    assert lots.lot_id.tolist() == [101, 102, 103]
    assert lots.mass_kg.tolist() == [100.0, 90.0, 80.0]
    assert lots.release_h.tolist() == [1.0, 1.5, 30.0]
    assert lots.recipe.tolist() == ["r400", "hot", "r400"]


def test_trace_tables_are_arrow_with_documented_columns():
    tabs = tables(scenario(horizon_h=200.0))
    assert set(tabs) == {"events", "lots", "batches", "units", "states"}
    assert all(isinstance(t, pa.Table) for t in tabs.values())
    assert tabs["events"].column_names == ["t_h", "kind", "unit", "lot_id", "batch_id"]
    for col in ("wait_h", "x_d", "rl_ppm", "r_int_ohm_cm2", "bonding", "roughness_nm", "verdict", "reason"):
        assert col in tabs["lots"].column_names
    for col in ("energy_kwh", "o2_nm3", "setup_h", "n_lots", "setpoint_c", "atmosphere"):
        assert col in tabs["batches"].column_names


def test_full_buffer_blocks_reactors():
    sc = scenario(
        horizon_h=1500.0,
        arrivals={"kind": "poisson", "rate_per_h": 0.7},
        buffer={"capacity_lots": 3},
        furnaces={"count": 1, "capacity_lots": 4, "policy": {"name": "timeout", "max_wait_h": 2.0}},
    )
    tabs = tables(sc)
    ev = tabs["events"].to_pandas()
    assert (ev.kind == "blocked_start").sum() > 50
    units = tabs["units"].to_pandas().set_index("unit")
    assert units.loc[["ALD1", "ALD2", "ALD3"], "blocked_h"].sum() > 100
    # the buffer never holds more coated lots than its capacity
    level = ev.kind.map({"buffer_in": 1, "buffer_out": -1}).fillna(0).cumsum()
    assert level.max() <= 3


def test_full_policy_with_a_buffer_smaller_than_a_batch_deadlocks_visibly():
    sc = scenario(
        horizon_h=600.0,
        buffer={"capacity_lots": 2},
        furnaces={"count": 1, "capacity_lots": 4, "policy": {"name": "full"}},
    )
    ev = tables(sc)["events"].to_pandas()
    # each reactor blocks once, for good; nothing is ever annealed
    assert (ev.kind == "blocked_start").sum() == 3 and (ev.kind == "blocked_end").sum() == 0
    assert (ev.kind == "batch_start").sum() == 0


def test_failures_and_preventive_maintenance_are_booked():
    sc = scenario(horizon_h=2000.0, ald={"mtbf_h": 50.0, "mttr_h": 5.0, "pm_every_batches": 10, "pm_h": 4.0})
    tabs = tables(sc)
    ev = tabs["events"].to_pandas()
    units = tabs["units"].to_pandas().set_index("unit")
    ald = units.loc[["ALD1", "ALD2", "ALD3"]]
    downs = ev[(ev.kind == "down") & ev.unit.str.startswith("ALD")]
    assert len(downs) > 20
    # operating hours between failures average mtbf: busy hours / failures ~ 50 h (loose, a few dozen failures)
    assert 30 < ald.busy_h.sum() / len(downs) < 75
    assert ald.down_h.sum() / len(downs) == __import__("pytest").approx(5.0, rel=0.4)
    pm = ev[(ev.kind == "pm_start") & ev.unit.str.startswith("ALD")]
    assert len(pm) == int(sum(b // 10 for b in ald.batches))


def test_setup_energy_and_gas_are_booked_per_batch():
    sc = scenario(
        horizon_h=1500.0,
        arrivals={"kind": "poisson", "rate_per_h": 0.4, "recipe_mix": {"o2": 1.0, "n2": 1.0}},
        recipes={
            "o2": {"setpoint_c": 400.0, "atmosphere": "O2"},
            "n2": {"setpoint_c": 400.0, "atmosphere": "N2"},
        },
        furnaces={"policy": {"name": "immediate"}, "atmosphere_change_h": 1.5, "setpoint_change_h": 0.5},
    )
    b = tables(sc)["batches"].to_pandas()
    assert set(b.setup_h.round(6)) <= {0.0, 1.5}
    assert (b.setup_h > 0).sum() > 5
    assert (b.o2_nm3[b.atmosphere == "N2"] == 0).all() and (b.o2_nm3[b.atmosphere == "O2"] > 0).all()
    full = b[b.n_lots == 4]
    # energy per kg falls with fill: a full batch uses less energy per kg than a single-lot batch
    one = b[b.n_lots == 1]
    if len(one) and len(full):
        assert (one.energy_kwh / one.mass_kg).mean() > (full.energy_kwh / full.mass_kg).mean()
    assert full.energy_kwh.mean() / full.mass_kg.mean() == __import__("pytest").approx(0.6, rel=0.25)


def test_quality_in_the_line_follows_the_recipe():
    def final(recipe: dict, buffer: dict | None = None):
        sc = scenario(horizon_h=600.0, recipes={"r400": recipe}, buffer=buffer or {}, qc={"rework": False})
        return tables(sc)["lots"].to_pandas().query("status != 'wip'")

    good = final({"setpoint_c": 400.0, "soak_h": 3.0, "atmosphere": "O2"})
    assert (good.status == "good").mean() > 0.9
    cold = final({"setpoint_c": 300.0, "soak_h": 2.0, "atmosphere": "O2"})
    assert (cold.reason == "under_dense").mean() > 0.9
    hot = final({"setpoint_c": 650.0, "soak_h": 2.0, "atmosphere": "O2"})
    # over-annealed in O2: the rock-salt layer and interdiffusion fail the EIS limit (mixing fails first in N2)
    assert (hot.status == "scrap").mean() > 0.9 and hot.reason.isin(
        ["resistance", "damage_mixing"]
    ).mean() > 0.9
    assert good.r_int_ohm_cm2.mean() < cold.r_int_ohm_cm2.mean()
    assert good.r_int_ohm_cm2.mean() < hot.r_int_ohm_cm2.mean()


def test_lines_share_a_recipe_dose_only_under_the_same_profile_and_parameters():
    sc = scenario(horizon_h=24.0)
    (name,) = sc.recipes
    first = Line(sc, replication=0).dose(name)
    assert Line(sc, replication=1).dose(name) is first  # integrated once per process, not per replication
    assert first == physics.anneal_dose(
        *physics.recipe_profile(
            sc.recipes[name].setpoint_c, sc.recipes[name].ramp_c_per_min, sc.recipes[name].soak_h,
            sc.recipes[name].cool_c_per_min, start_c=sc.furnaces.start_c, unload_c=sc.furnaces.unload_c,
        ),
        sc.quality_params(),
    )  # fmt: skip
    hotter = scenario(horizon_h=24.0, recipes={name: {"setpoint_c": 450.0}})
    assert Line(hotter).dose(name).d > first.d
    other_params = scenario(horizon_h=24.0, quality={"ea_d_kj": sc.quality_params().ea_d_kj + 10.0})
    assert Line(other_params).dose(name).d < first.d  # a higher activation energy: less dose below 400 °C
    later_unload = sc.model_copy(update={"furnaces": sc.furnaces.model_copy(update={"unload_c": 100.0})})
    assert Line(later_unload).dose(name).duration_h < first.duration_h  # unloaded hotter: a shorter cool


def test_rework_reanneals_once():
    sc = scenario(horizon_h=800.0, recipes={"r400": {"setpoint_c": 330.0, "soak_h": 3.0}})
    lots = tables(sc)["lots"].to_pandas().query("status != 'wip'")
    assert lots.anneals.max() == 2
    reworked = lots[lots.anneals == 2]
    assert len(reworked) > 10
    assert (reworked.rework_batch_id > reworked.batch_id).all()
    assert not reworked.first_pass.any()


def test_operator_hold_and_setpoint_override():
    sc = scenario(horizon_h=300.0, ald={"time_distribution": "fixed", "mtbf_h": None})
    line = Line(sc, seed=2)
    line.reactors[0].hold(True)
    line.furnaces[1].setpoint_override = 420.0
    tabs = line.run().tables()
    lots, b = tabs["lots"].to_pandas(), tabs["batches"].to_pandas()
    assert "ALD1" not in set(lots.ald_unit) and {"ALD2", "ALD3"} <= set(lots.ald_unit)
    assert set(b.setpoint_c[b.furnace == "F2"]) == {420.0} and set(b.setpoint_c[b.furnace == "F1"]) == {400.0}
    states = tabs["states"].to_pandas()
    held = states[(states.unit == "ALD1")]
    assert set(held.state) == {"scheduled_down"}
    # releasing the hold resumes work
    line = Line(sc, seed=2)
    r = line.reactors[0]
    r.hold(True)
    line.start()
    line.env.run(until=100.0)
    r.hold(False)
    line.env.run(until=200.0)
    starts = [e for e in line.trace.events if e[1] == "ald_start" and e[2] == "ALD1"]
    assert starts and min(e[0] for e in starts) >= 100.0


def test_a_run_leaves_no_cyclic_garbage():
    """The line pauses the cyclic garbage collector during a run; that is only safe while a run creates no
    reference cycles that it then drops (else memory would grow with the horizon). The line itself is one
    cycle (units refer to the line), freed once when it is dropped."""
    import gc

    sc = scenario(horizon_h=3000.0, furnaces={"policy": {"name": "quality_aware"}},
                  calendar={"pattern": "2x8-weekdays"})  # fmt: skip
    gc.collect()
    gc.disable()
    try:
        line = Line(sc, seed=4)
        line.run()
        assert gc.isenabled() is False  # a run restores the collector's state, it does not force it on
        dropped = gc.collect()  # unreachable cycles made during the run, while the line is still alive
    finally:
        gc.enable()
    assert len(line.trace.lots) > 1000
    assert dropped < 50


def test_a_run_triggers_no_garbage_collection():
    """The collector is paused during a run and the Arrow conversion, and on leaving the run's objects go to the
    oldest generation unscanned: re-enabled with them still young, it would scan the whole trace at the next
    allocation."""
    import gc

    gc.collect()
    assert gc.isenabled()
    collections: list[int] = []

    def watch(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    line = Line(scenario(horizon_h=2000.0), seed=4)
    gc.callbacks.append(watch)
    try:
        line.run()
        line.trace.tables()
    finally:
        gc.callbacks.remove(watch)
    assert gc.isenabled()
    assert collections == []
    assert len(line.trace.lots) > 500


def test_lot_noise_rows_are_the_single_draw_sequence_and_qc_takes_its_test():
    """Lot noise comes as rows of 9 from the quality stream, the same numbers as 9 single draws in turn; QC reads
    deviates 1-4 on the first test and 5-8 on the re-test (0 is the thickness deviate)."""
    from plant.lot import Lot
    from plant.random import Streams

    rows = Streams(11, 2).draws("quality", "normal", width=9)
    single = Streams(11, 2).draws("quality", "normal")
    for _ in range(600):  # more than two blocks of rows
        assert rows.next() == [single.next() for _ in range(9)]
    lot = Lot(1, "r400", 120.0, 0.0)
    lot.noise = [float(i) for i in range(9)]
    assert list(lot.qc_noise()) == [1.0, 2.0, 3.0, 4.0]
    lot.anneals = 2
    assert list(lot.qc_noise()) == [5.0, 6.0, 7.0, 8.0]


def test_packed_events_decode_live_and_convert_to_the_same_rows():
    """Events are recorded as packed bytes with kind and unit codes: a live reader (the OPC UA server) decodes
    the new ones after each step, and the Arrow table holds the same rows, strings and all."""
    from plant.trace import EVENT_KINDS

    line = Line(scenario(horizon_h=300.0, ald={"mtbf_h": 30.0}), seed=3)
    line.start()
    trace, seen, live = line.trace, 0, []
    while line.env.peek() < 300.0:
        line.env.step()
        if trace.n_events > seen:
            live += trace.events_since(seen)
            seen = trace.n_events
    assert len(live) > 500 and {e[1] for e in live} >= {"arrive", "qc_end", "down", "up"}
    assert live == trace.events
    rows = trace.events_table().to_pylist()
    assert [(r["t_h"], r["kind"], r["unit"], r["lot_id"], r["batch_id"]) for r in rows] == live
    assert {e[1] for e in live} <= set(EVENT_KINDS)
    assert [e[0] for e in live] == sorted(e[0] for e in live)  # recorded in time order
    # each code means its kind: arrivals at the lots' release times, ALD ends on their reactors, QC ends
    lots = {lot.lot_id: lot for lot in trace.lots}
    assert {e[3]: e[0] for e in live if e[1] == "arrive"} == {i: lot.release_h for i, lot in lots.items()}
    ald_end = [e for e in live if e[1] == "ald_end"]
    assert ald_end and all(e[0] == lots[e[3]].ald_end_h and e[2] == lots[e[3]].ald_unit for e in ald_end)
    qc_end = {e[3]: e[0] for e in live if e[1] == "qc_end" and e[2] == "QC"}  # a re-test's end overwrites
    assert qc_end == {i: lot.qc_end_h for i, lot in lots.items() if not math.isnan(lot.qc_end_h)}


def test_unit_totals_are_the_exact_sums_of_their_state_intervals():
    """A unit keeps running hours per state next to its packed intervals: the units table must equal the sums
    of the states table's intervals, added in time order, to the last bit."""
    sc = scenario(horizon_h=2000.0, ald={"mtbf_h": 60.0}, furnaces={"mtbf_h": 150.0},
                  calendar={"pattern": "2x8-weekdays"})  # fmt: skip
    tabs = Line(sc, seed=5).run().tables()
    sums: dict[tuple[str, str], float] = {}
    for r in tabs["states"].to_pylist():
        key = (r["unit"], r["state"])
        sums[key] = sums.get(key, 0.0) + (r["end_h"] - r["start_h"])
    column = {"productive": "busy_h", "setup": "setup_h", "unscheduled_down": "down_h", "scheduled_down": "pm_h",
              "blocked": "blocked_h", "standby": "standby_h", "unstaffed": "unstaffed_h"}  # fmt: skip
    units = tabs["units"].to_pylist()
    assert len(units) > 5 and any(u["unstaffed_h"] > 0 for u in units) and any(u["down_h"] > 0 for u in units)
    for u in units:
        for state, col in column.items():
            assert u[col] == sums.get((u["unit"], state), 0.0), (u["unit"], state)


def test_a_batch_run_lets_finished_lots_go_and_gives_the_same_tables():
    """keep_lots=False (the runner's batch runs): a lot's row is packed when it leaves the line and the trace lets
    the lot go; the tables are the same bits as when every lot is kept, WIP and rework lots included."""
    sc = scenario(horizon_h=800.0, recipes={"r400": {"setpoint_c": 330.0, "soak_h": 3.0}})  # many reworks
    kept = Line(sc, seed=2).run()
    batch = Line(sc, seed=2, keep_lots=False).run()
    a, b = kept.tables(), batch.tables()
    for name in a:
        assert ipc_bytes(a[name]) == ipc_bytes(b[name]), name
    lots = a["lots"].to_pylist()
    assert {r["status"] for r in lots} == {"good", "scrap", "wip"} and any(r["anneals"] > 1 for r in lots)
    assert [r["lot_id"] for r in lots] == [lot.lot_id for lot in kept.lots]  # release order
    assert len(batch.lots) == len(kept.lots)
    for lot, left in zip(kept.lots, batch.lots, strict=True):
        assert (left is None) == (lot.status != "wip")


def _baseline_tables(seed: int = 5) -> dict[str, pa.Table]:
    sc = load_scenario("scenarios/baseline.yaml").model_copy(update={"warmup_h": 0.0})
    return tables(sc, seed)


def test_batches_of_one_furnace_never_overlap_and_load_after_their_setup():
    """A batch occupies its furnace from the start of loading (after any setup) to the end of unloading; the
    next batch of that furnace starts loading no earlier than that end plus its own setup."""
    sc = load_scenario("scenarios/baseline.yaml")
    b = _baseline_tables()["batches"].to_pandas()
    heated = b.dropna(subset=["start_h"])
    assert (
        (heated.start_h - heated.load_start_h) - sc.furnaces.load_h
    ).abs().max() < 1e-9  # loading, then heat
    for furnace, grp in b.sort_values("load_start_h").groupby("furnace"):
        gaps = grp.load_start_h.to_numpy()[1:] - grp.end_h.to_numpy()[:-1]
        assert len(grp) > 20
        assert (gaps >= -1e-9).all(), f"{furnace}: batches overlap by {-gaps.min():.3f} h"
    # with a setup between recipes, loading starts after the setup
    sc = scenario(
        horizon_h=400.0,
        arrivals={"recipe_mix": {"a": 1.0, "b": 1.0}},
        recipes={"a": {"setpoint_c": 400.0}, "b": {"setpoint_c": 450.0, "atmosphere": "N2"}},
    )
    mixed = tables(sc)["batches"].to_pandas().sort_values("load_start_h")
    assert (mixed.setup_h > 0).sum() > 5
    for _, grp in mixed.groupby("furnace"):
        prev_end = grp.end_h.to_numpy()[:-1]
        assert (grp.load_start_h.to_numpy()[1:] - grp.setup_h.to_numpy()[1:] >= prev_end - 1e-9).all()


def test_furnace_util_is_the_units_occupied_hours_over_the_window():
    """furnace_util = the furnaces' productive hours (units table) / (furnaces x horizon) on the baseline."""
    from twin.stats import replication_kpis

    sc = load_scenario("scenarios/baseline.yaml")
    tabs = _baseline_tables()
    units = tabs["units"].to_pandas()
    furnaces = units[units.kind == "furnace"]
    occupied = furnaces.busy_h.sum() / (len(furnaces) * sc.horizon_h)
    util = replication_kpis(tabs, 0.0, sc.horizon_h)["furnace_util"]
    assert util == pytest.approx(occupied, abs=1e-9)
    assert 0.80 < util < 0.97
