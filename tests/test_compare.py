"""Comparison: CRN shrinks paired CIs, the ranking picks the known best, constraints, KN select-best, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.compare import (
    COST_KPI,
    Constraint,
    CostPrices,
    System,
    compare,
    load_selection,
    paired_difference,
    rank,
    replication_cost,
    select_best,
    systems_from_results,
    welch_difference,
)
from twin.errors import TwinError
from twin.executors import run_study
from twin.store import Store
from twin.study import parse_study, plan_study

REPO = Path(__file__).resolve().parent.parent


def plan(
    strategies: list[dict], replications: int = 4, horizon_h: float = 240.0, seed: int = 11, name: str = "cmp"
):
    study = parse_study(
        {
            "name": name,
            "base": "baseline.yaml",
            "replications": replications,
            "seed": seed,
            "horizon_h": horizon_h,
            "warmup_h": 24,
            "design": "strategies",
            "strategies": strategies,
        },
        f"{name}.yaml",
    )
    return plan_study(study, REPO / "scenarios" / f"{name}.yaml")


POLICIES = [
    {"name": "timeout-6"},
    {"name": "timeout-3", "furnaces.policy": {"name": "timeout", "max_wait_h": 3}},
]


def test_common_random_numbers_shrink_the_ci_of_a_paired_difference() -> None:
    crn = plan(POLICIES, replications=8)
    indep = crn.model_copy(deep=True)
    indep.scenarios[1].seed = 999  # the same two scenarios, the second with independent random numbers
    a = systems_from_results(run_study(crn, "serial").runs)
    b = systems_from_results(run_study(indep, "serial").runs)
    for kpi in ("lead_time_mean_h", "wait_mean_h", "r_int_good_mean"):
        d_crn = paired_difference(a[1].kpi(kpi), a[0].kpi(kpi))
        d_ind = paired_difference(b[1].kpi(kpi), b[0].kpi(kpi))
        assert d_crn.n == d_ind.n == 8
        assert d_crn.half / d_ind.half < 0.7, (kpi, d_crn.half, d_ind.half)
    # lead time: the paired CI is several times narrower, enough to make the difference significant
    lead_crn = paired_difference(a[1].kpi("lead_time_mean_h"), a[0].kpi("lead_time_mean_h"))
    lead_ind = paired_difference(b[1].kpi("lead_time_mean_h"), b[0].kpi("lead_time_mean_h"))
    assert lead_crn.half / lead_ind.half < 0.35
    assert lead_crn.significant


def test_paired_and_welch_intervals_on_known_numbers() -> None:
    x = np.array([10.0, 12.0, 11.0, 13.0])
    y = x - np.array([1.0, 1.2, 0.8, 1.0])
    d = paired_difference(x, y)
    assert d.mean == pytest.approx(1.0)
    # sd of (1, 1.2, 0.8, 1) = 0.16330, t(0.975, 3) = 3.18245
    assert d.half == pytest.approx(3.18245 * 0.163299 / 2, rel=1e-4)
    assert d.significant and d.paired
    w = welch_difference(x, y)
    assert w.mean == pytest.approx(1.0) and not w.paired
    assert (
        w.half > 1.0 and not w.significant
    )  # unpaired, the spread between replications hides the difference


def synthetic(name: str, seed: int = 1, **kpis: list[float]) -> System:
    n = len(next(iter(kpis.values())))
    return System(name, seed, np.arange(n), {k: np.array(v, float) for k, v in kpis.items()})


def test_ranking_objectives_and_constraints_on_a_constructed_case() -> None:
    a = synthetic("a", good_kg_per_h=[50, 51, 52], final_yield=[0.99, 0.98, 0.99], r_int_good_mean=[40, 41, 40],
                  rate_capability_good_mean=[0.52, 0.52, 0.52],
                  ret100_good_mean=[0.91, 0.91, 0.91], bonding_good_mean=[0.7, 0.7, 0.7], **{COST_KPI: [9, 9, 9]})  # fmt: skip
    b = synthetic("b", good_kg_per_h=[60, 61, 62], final_yield=[0.90, 0.91, 0.92], r_int_good_mean=[45, 44, 46],
                  rate_capability_good_mean=[0.50, 0.50, 0.50],
                  ret100_good_mean=[0.91, 0.91, 0.91], bonding_good_mean=[0.8, 0.8, 0.8], **{COST_KPI: [8, 8.5, 8]})  # fmt: skip
    c = synthetic("c", good_kg_per_h=[55, 56, 57], final_yield=[0.96, 0.97, 0.96], r_int_good_mean=[38, 38, 39],
                  rate_capability_good_mean=[0.52, 0.52, 0.52],
                  ret100_good_mean=[0.90, 0.90, 0.90], bonding_good_mean=[0.9, 0.9, 0.9], **{COST_KPI: [10, 10, 10]})  # fmt: skip
    systems = [a, b, c]
    assert [r.system for r in rank(systems, "throughput")] == ["b", "c", "a"]
    assert [r.system for r in rank(systems, "yield")] == ["a", "c", "b"]
    assert [r.system for r in rank(systems, "power")] == ["c", "a", "b"]  # rate capability, then resistance
    assert [r.system for r in rank(systems, "cost")] == ["b", "a", "c"]  # cheapest first
    assert [r.system for r in rank(systems, "cycle-life")] == ["b", "a", "c"]  # retention, then bonding
    constrained = rank(systems, "throughput", [Constraint("final_yield", ">=", 0.95)])
    assert [(r.rank, r.system) for r in constrained] == [(1, "c"), (2, "a"), (None, "b")]
    assert constrained[2].violations == ["final_yield 0.91 (needs >= 0.95)"]
    # differences to the best are paired (same seed) and significant here
    assert constrained[1].to_best is not None and constrained[1].to_best.mean == pytest.approx(-5.0)
    assert constrained[1].to_best.significant
    comp = compare(systems, baseline="a", objective="throughput", kpis=["good_kg_per_h"])
    assert comp.best == "b"
    row_b = next(r for r in comp.rows if r.system == "b")
    assert row_b.diff is not None and row_b.diff.mean == pytest.approx(10.0) and row_b.diff.significant
    assert Constraint.parse("wait_p95_h<=8") == Constraint("wait_p95_h", "<=", 8.0)
    with pytest.raises(TwinError, match="expected KPI>=VALUE"):
        Constraint.parse("wait < 8")
    with pytest.raises(TwinError, match="--baseline 'zz' is not one of the scenarios"):
        compare(systems, baseline="zz")


RECIPES = [
    {"name": "O2-400C", "recipes.mild-400.setpoint_c": 400},
    {"name": "O2-350C", "recipes.mild-400.setpoint_c": 350},
    {"name": "O2-450C", "recipes.mild-400.setpoint_c": 450},
    {"name": "N2-400C", "recipes.mild-400.atmosphere": "N2"},
]


@pytest.fixture(scope="module")
def recipe_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cmp") / "recipes.duckdb"
    run_study(plan(RECIPES, replications=4, name="recipes"), "serial", db=db)
    return db


def test_ranking_picks_the_known_best_recipe(recipe_db: Path) -> None:
    with Store(recipe_db, read_only=True) as store:
        sel = load_selection(store, ["recipes"])
    assert [s.name for s in sel.systems] == ["O2-400C", "O2-350C", "O2-450C", "N2-400C"]
    assert sel.baseline == "O2-400C" and all(s.n == 4 for s in sel.systems)
    # 350 °C leaves the film under-dense and unlithiated, N2 grows a reduced rock-salt layer and loses the
    # relithiation sink: 400 °C in O2 is best for power, 450 °C in O2 (bonding, more residual Li bound) for cycle
    # life and yield (docs/model.md §2)
    comp = compare(sel.systems, objective="yield", constraints=[Constraint("final_yield", ">=", 0.93)])
    assert comp.best == "O2-450C"
    excluded = {r.system for r in comp.ranking if r.rank is None}
    assert excluded == {"O2-350C", "N2-400C"}
    assert [r.system for r in compare(sel.systems, objective="power").ranking] == [
        "O2-400C", "O2-450C", "N2-400C", "O2-350C",
    ]  # fmt: skip
    assert compare(sel.systems, objective="cycle-life").best == "O2-450C"
    cold = next(r for r in comp.rows if r.kpi == "final_yield" and r.system == "O2-350C")
    assert cold.diff is not None and cold.diff.paired and cold.diff.significant and cold.diff.mean < -0.08
    # the cost objective exists and is finite for every scenario
    assert all(np.isfinite(s.kpi(COST_KPI)).all() for s in sel.systems)


def test_cost_per_good_kg_matches_a_hand_computation() -> None:
    res = run_study(plan(POLICIES[:1], replications=1, horizon_h=120), "serial").runs[0]
    rep = res.replications[0]
    lots, batches = rep.tables["lots"], rep.tables["batches"]
    p = CostPrices()
    df, bf = lots.to_pandas(), batches.to_pandas()
    win = (df.done_h >= 24) & (df.done_h <= 120)
    good = df.mass_kg[win & (df.status == "good")].sum()
    bwin = (bf.start_h >= 24) & (bf.start_h <= 120)
    ald = (df.ald_start_h >= 24) & (df.ald_start_h <= 120)
    total = (
        bf.energy_kwh[bwin].sum() * p.electricity_eur_per_kwh
        + bf.gas_nm3[bwin].sum() * p.o2_eur_per_nm3
        + df.precursor_mol[ald].sum() * p.precursor_eur_per_mol
        + df.mass_kg[win & (df.status == "scrap")].sum() * p.scrap_eur_per_kg
    )
    assert replication_cost(lots, batches, 24, 120, p) == pytest.approx(total / good, rel=1e-12)
    dearer = CostPrices.parse(["electricity_eur_per_kwh=0.30"])
    extra = bf.energy_kwh[bwin].sum() * 0.15 / good
    assert replication_cost(lots, batches, 24, 120, dearer) == pytest.approx(total / good + extra, rel=1e-12)
    with pytest.raises(TwinError, match="--price 'coal=1'"):
        CostPrices.parse(["coal=1"])


def test_select_best_with_kn_simulates_and_stores_more_replications(tmp_path: Path) -> None:
    db = tmp_path / "kn.duckdb"
    strategies = [RECIPES[0], RECIPES[2], {"name": "O2-400C-1h", "recipes.mild-400.soak_h": 1}]
    run_study(plan(strategies, replications=3, name="kn"), "serial", db=db)
    with Store(db, read_only=True) as store:
        sel = load_selection(store, ["kn"])
    best = select_best(sel, "yield", delta=0.01, n0=3, db=db)
    assert best.best == "O2-450C"
    assert best.n_per_system["O2-450C"] > 3 and best.new_replications > 0
    assert not best.stopped_at_max
    assert "probability >= 95%" in best.statement()
    # the new replications were stored as more runs of the same study, and a new comparison merges them
    assert len(best.stored_run_ids) >= 1
    with Store(db, read_only=True) as store:
        again = load_selection(store, ["kn"])
    n = {s.name: s.n for s in again.systems}
    assert n["O2-450C"] == best.n_per_system["O2-450C"]
    assert [s.name for s in again.systems] == ["O2-400C", "O2-450C", "O2-400C-1h"]


def test_cli_compare_table_json_and_errors(recipe_db: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "250"}
    args = ["compare", "recipes", "--db", str(recipe_db), "--kpi", "final_yield", "--kpi", "r_int_good_mean"]
    res = runner.invoke(app, [*args, "--objective", "power", "--min-yield", "0.9"], env=env)
    assert res.exit_code == 0, res.output
    assert "ranking by power (constraints: final_yield >= 0.9)" in res.output
    assert "excluded: final_yield" in res.output
    assert "O2-450C" in res.output and "*" in res.output
    js = runner.invoke(app, [*args, "--format", "json"], env=env)
    assert js.exit_code == 0, js.output
    data = json.loads(js.output)
    assert data["baseline"] == "O2-400C" and data["ranking"][0]["rank"] == 1
    assert {r["kpi"] for r in data["kpis"]} == {"final_yield", "r_int_good_mean"}
    runs = runner.invoke(app, ["compare", "1", "3", "--db", str(recipe_db), "--kpi", "final_yield"], env=env)
    assert runs.exit_code == 0 and "O2-450C" in runs.output
    for bad, msg in (
        (["compare", "nope", "--db", str(recipe_db)], "'nope' is neither a run id nor a study"),
        (["compare", "recipes", "--db", str(recipe_db), "--baseline", "X"], "--baseline 'X' is not one of"),
        (["compare", "recipes", "--db", str(recipe_db), "--objective", "speed"], "unknown objective 'speed'"),
        (["compare", "recipes", "--db", str(recipe_db), "--kpi", "colour"], "unknown KPI 'colour'"),
        (["compare", "recipes", "--db", str(recipe_db), "--select-best"], "--select-best needs --delta"),
        (["compare", "99", "--db", str(recipe_db)], "unknown run id 99"),
        (["compare", "recipes", "--db", str(recipe_db.parent / "none.duckdb")], "not found"),
    ):
        out = runner.invoke(app, bad, env=env)
        assert out.exit_code == 2, (bad, out.output)
        assert msg in out.output, (bad, out.output)
    con = duckdb.connect(str(recipe_db), read_only=True)
    assert (
        con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    )  # compare never writes without --select-best
    con.close()


def test_readme_study_commands_use_existing_options() -> None:
    """Every `twin` command of the README studies section: the --list one runs as written; the others (full
    studies, minutes) must use only subcommands and options that exist."""
    import re
    import shlex

    text = (REPO / "README.md").read_text()
    block = text[text.index("<!-- studies:begin -->") : text.index("<!-- studies:end -->")]
    bash = block[block.index("```bash") + 7 :]
    bash = bash[: bash.index("```")]
    commands = [shlex.split(line.split("#")[0]) for line in bash.splitlines() if line.startswith("twin ")]
    assert len(commands) >= 6
    runner = CliRunner()
    helps: dict[str, str] = {}
    for cmd in commands:
        sub = cmd[1]
        if sub not in helps:
            h = runner.invoke(app, [sub, "--help"], env={"COLUMNS": "250"})
            assert h.exit_code == 0, sub
            helps[sub] = h.output
        for opt in (a for a in cmd if a.startswith("--")):
            assert re.search(rf"{re.escape(opt)}\b", helps[sub]), (sub, opt)
        for arg in cmd[2:]:
            if arg.startswith("scenarios/"):
                assert (REPO / arg).is_file(), arg
    listed = next(c for c in commands if "--list" in c)
    res = runner.invoke(app, [listed[1], str(REPO / listed[2]), "--list"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "O2-450C-1h" in res.output


def test_select_best_with_rinott_through_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "rin.duckdb"
    strategies = [RECIPES[0], RECIPES[2], {"name": "O2-400C-1h", "recipes.mild-400.soak_h": 1}]
    run_study(plan(strategies, replications=3, name="rin"), "serial", db=db)
    with Store(db, read_only=True) as store:
        sel = load_selection(store, ["rin"])
    best = select_best(sel, "yield", delta=0.02, n0=3, db=db, procedure="rinott")
    assert best.best == "O2-450C" and best.procedure == "rinott"
    assert "(Rinott, n0 = 3)" in best.statement() or best.stopped_at_max
    # Rinott's second stage gives every system at least its first stage
    assert min(best.n_per_system.values()) >= 3
    res = CliRunner().invoke(app, ["compare", "rin", "--db", str(db), "--objective", "yield", "--select-best",
                                   "--delta", "0.02", "--procedure", "nope"])  # fmt: skip
    assert res.exit_code == 2 and "--procedure must be kn or rinott" in res.output
