"""Robustness to model-parameter uncertainty: probability of best and expected regret on hand-checked numbers,
with constraints per sample; end to end through `twin study --uncertainty`, `twin compare`, report and API."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_report import check_page
from typer.testing import CliRunner

import twin
from plant import physics
from twin import report
from twin.cli import app
from twin.compare import COST_KPI, OBJECTIVES, Constraint, Selection, System
from twin.errors import TwinError
from twin.robustness import best_and_regret, ranked, robustness, robustness_json, split_uncertainty
from twin.store import Store
from twin.uncertainty import run_name, sample_parameters

REPO = Path(__file__).resolve().parent.parent
NAN = float("nan")

# samples x strategies (a, b, c); sample 1: a and c tie, sample 4: a has no value
VALUES = np.array([[10.0, 8.0, 10.0], [5.0, 9.0, 7.0], [6.0, 6.0, 3.0], [NAN, 1.0, 2.0]])


def test_probability_of_best_and_regret_on_hand_checked_numbers() -> None:
    p, regret, feasible = best_and_regret(VALUES, maximize=True)
    # wins: a 1/2 + 1/2, b 1 + 1/2, c 1/2 + 1, over 4 samples
    assert p.tolist() == pytest.approx([0.25, 0.375, 0.375])
    # regrets: a (0, 4, 0) over its 3 samples with a value; b (2, 0, 0, 1); c (0, 2, 3, 0)
    assert regret.tolist() == pytest.approx([4 / 3, 0.75, 1.25])
    assert feasible.tolist() == pytest.approx([0.75, 1.0, 1.0])
    # minimising: best 8 (b), 5 (a), 3 (c), 1 (b)
    p, regret, _ = best_and_regret(VALUES, maximize=False)
    assert p.tolist() == pytest.approx([0.25, 0.5, 0.25])
    assert regret.tolist() == pytest.approx([5 / 3, 7 / 4, 5 / 4])
    # b infeasible in sample 2: c is best there (7), a's regret there is 2
    mask = np.ones_like(VALUES, dtype=bool)
    mask[1, 1] = False
    p, regret, feasible = best_and_regret(VALUES, maximize=True, feasible=mask)
    assert p.tolist() == pytest.approx([0.25, 0.125, 0.625])
    assert regret.tolist() == pytest.approx([(0 + 2 + 0) / 3, (2 + 0 + 1) / 3, (0 + 0 + 3 + 0) / 4])
    assert feasible.tolist() == pytest.approx([0.75, 0.75, 1.0])
    # a sample where nothing is feasible has no best: the probabilities sum to the other samples' share
    p, _, _ = best_and_regret(VALUES, maximize=True, feasible=np.array([[True] * 3, [False] * 3] * 2))
    assert p.sum() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="samples x strategies"):
        best_and_regret(np.array([1.0, 2.0]), maximize=True)


@given(
    st.integers(2, 12),
    st.integers(2, 6),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_probabilities_sum_to_one_and_only_an_always_best_strategy_has_no_regret(
    n: int, m: int, seed: int, maximize: bool
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 10, (n, m)).round(1)  # rounded: ties happen
    p, regret, feasible = best_and_regret(values, maximize)
    assert p.sum() == pytest.approx(1.0) and np.all((p >= 0) & (p <= 1))
    assert np.all(regret >= 0) and np.all(feasible == 1.0)
    # the strategy with p = 1 has no regret; make strategy 0 best in every sample by a margin
    sign = 1.0 if maximize else -1.0
    values[:, 0] = (values.max(axis=1) if maximize else values.min(axis=1)) + sign * 5.0
    p, regret, _ = best_and_regret(values, maximize)
    assert p[0] == 1.0 and regret[0] == 0.0
    assert np.all(p[1:] == 0.0) and np.all(regret[1:] >= 5.0)


def system(name: str, **kpis: list[float]) -> System:
    n = len(next(iter(kpis.values())))
    return System(name, 1, np.arange(n), {k: np.array(v, float) for k, v in kpis.items()})


def uncertain_selection() -> Selection:
    """Strategies a and b, nominal model and 2 samples, 2 replications each: throughput and yield by hand."""
    samples = sample_parameters(2, seed=1, ranges={"x": (1.0, 2.0)})
    runs = {  # (strategy, sample) -> (good_kg_per_h per replication, final_yield per replication, cost)
        ("a", 0): ([50, 52], [0.95, 0.97], [9.0, 9.0]),
        ("b", 0): ([48, 50], [0.99, 0.99], [8.0, 8.0]),
        ("a", 1): ([60, 62], [0.80, 0.84], [10.0, 12.0]),  # a best by throughput (61 vs 55), yield 0.82
        ("b", 1): ([54, 56], [0.98, 0.96], [8.0, 9.0]),
        ("a", 2): ([40, 42], [0.96, 0.96], [7.0, 7.0]),  # b best by throughput (45 vs 41)
        ("b", 2): ([44, 46], [0.97, 0.97], [9.0, 9.0]),
    }
    systems = [
        system(run_name(s, k, 2), good_kg_per_h=t, final_yield=y, **{COST_KPI: c})
        for (s, k), (t, y, c) in runs.items()
    ]
    study = {"baseline": "a", "uncertainty": samples.to_dict() | {"strategies": ["a", "b"]}}
    return Selection(systems, 1, "hand", "a", study)


def test_robustness_of_constructed_systems_with_and_without_a_constraint() -> None:
    groups = split_uncertainty(uncertain_selection())
    assert groups is not None and groups.strategies == ["a", "b"] and groups.incomplete == []
    assert [s.name for s in groups.nominal.systems] == ["a", "b"]  # the nominal runs, named by strategy
    assert groups.nominal.systems[0].kpi("good_kg_per_h").tolist() == [50, 52]
    assert [[s.name for s in row] for row in groups.by_sample.values()] == [
        ["a@u01", "b@u01"],
        ["a@u02", "b@u02"],
    ]
    r = robustness(groups, objectives=["throughput", "yield", "cost"])
    thr, yld, cost = r.objectives
    assert (thr.kpi, thr.maximize, thr.unit) == ("good_kg_per_h", True, "kg/h")
    assert [(x.strategy, x.p_best, x.expected_regret, x.nominal) for x in thr.rows] == [
        ("a", 0.5, pytest.approx(2.0), 51.0),  # regret 0 in sample 1, 45 - 41 = 4 in sample 2
        ("b", 0.5, pytest.approx(3.0), 49.0),  # 61 - 55 = 6 in sample 1, 0 in sample 2
    ]
    assert [x.p_best for x in yld.rows] == [0.0, 1.0]  # yield: b 0.97 / 0.97 against a 0.82 / 0.96
    assert yld.rows[0].expected_regret == pytest.approx((0.15 + 0.01) / 2)
    assert yld.rows[1].expected_regret == 0.0
    assert [x.p_best for x in cost.rows] == [0.5, 0.5] and not cost.maximize  # a 11 vs 8.5; 7 vs 9
    assert [x.strategy for x in ranked(thr)] == ["a", "b"]  # equal chances: the lower regret first
    # with final_yield >= 0.9 a is infeasible in sample 1: b wins it, a competes in sample 2 only
    r = robustness(groups, [Constraint("final_yield", ">=", 0.9)], objectives=["throughput"])
    a, b = r.objectives[0].rows
    assert (a.p_best, a.expected_regret, a.feasible) == (0.0, pytest.approx(4.0), 0.5)
    assert (b.p_best, b.expected_regret, b.feasible) == (1.0, 0.0, 1.0)
    data = robustness_json(r)
    assert data["constraints"] == ["final_yield >= 0.9"] and data["params"][0]["name"] == "x"
    assert data["objectives"][0]["strategies"][0] == {
        "strategy": "a", "p_best": 0.0, "expected_regret": 4.0, "feasible": 0.5, "nominal": 51.0,
    }  # fmt: skip
    with pytest.raises(TwinError, match="constraint on unknown KPI 'colour'"):
        robustness(groups, [Constraint("colour", ">=", 1)])
    # a sample some strategy has no run of is left out and reported
    sel = uncertain_selection()
    sel.systems = [s for s in sel.systems if s.name != "b@u02"]
    part = split_uncertainty(sel)
    assert part is not None and part.incomplete == [2] and list(part.by_sample) == [1]
    assert robustness(part, objectives=["throughput"]).objectives[0].rows[0].p_best == 1.0
    assert split_uncertainty(Selection(sel.systems, 1, "plain", "a", {"baseline": "a"})) is None


# -- end to end ----------------------------------------------------------------------------------------------
STUDY = """\
name: robust
base: {base}
replications: 2
seed: 4
horizon_h: 96
warmup_h: 12
design: strategies
baseline: O2-400C
strategies:
  - name: O2-400C
  - name: O2-450C-1h
    recipes.mild-400.setpoint_c: 450
    recipes.mild-400.soak_h: 1
"""
ENV = {"COLUMNS": "250", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The study above run by the CLI with 3 uncertainty samples: 2 strategies x (1 + 3) samples x 2 reps."""
    tmp = tmp_path_factory.mktemp("robust")
    path = tmp / "robust.yaml"
    path.write_text(STUDY.format(base=REPO / "scenarios" / "baseline.yaml"))
    db = tmp / "r.duckdb"
    res = CliRunner().invoke(
        app, ["study", str(path), "--uncertainty", "3", "--executor", "serial", "--db", str(db)], env=ENV
    )
    assert res.exit_code == 0, res.output
    assert "2 scenarios x (1 nominal + 3 samples) x 2 replications" in res.output
    assert "8 runs stored; 3 Latin-hypercube samples (seed 4)" in res.output
    assert "16 replications on serial" in res.output
    assert (
        "@u0" not in res.output.split("runs stored")[0]
    )  # the table shows the nominal runs by strategy name
    return path, db


def _means(db: Path, kpi: str) -> dict[str, float]:
    with Store(db, read_only=True) as store:
        rows = store.query(
            "SELECT r.scenario_name, s.mean FROM kpi_summary s JOIN runs r USING (run_id) WHERE s.kpi = ?",
            [kpi],
        ).to_pylist()
    return {r["scenario_name"]: r["mean"] for r in rows}


def test_cli_study_stores_every_strategy_x_sample_with_its_overrides(study_db: tuple[Path, Path]) -> None:
    _, db = study_db
    with Store(db, read_only=True) as store:
        runs = store.query("SELECT scenario_name, scenario_json FROM runs ORDER BY run_id").to_pylist()
        study = json.loads(store.query("SELECT study_json FROM studies").column(0)[0].as_py())
    assert len(runs) == (3 + 1) * 2
    unc = study["uncertainty"]
    assert unc["samples"] == 3 and unc["seed"] == 4 and unc["strategies"] == ["O2-400C", "O2-450C-1h"]
    assert [p["name"] for p in unc["params"]] == sorted(physics.PARAM_RANGES)
    for r in runs:
        name, k = r["scenario_name"].rsplit("@u", 1)
        quality = json.loads(r["scenario_json"])["quality"]
        expected = {} if k == "00" else dict(zip(sorted(physics.PARAM_RANGES), unc["values"][int(k) - 1]))
        assert quality == expected, r["scenario_name"]
        assert name in unc["strategies"]


def test_cli_compare_reports_robustness_from_the_stored_samples(study_db: tuple[Path, Path]) -> None:
    path, db = study_db
    runner = CliRunner()
    js = runner.invoke(app, ["compare", str(path), "--db", str(db), "--format", "json"], env=ENV)
    assert js.exit_code == 0, js.output
    data = json.loads(js.output)
    # the plain comparison is of the nominal runs, under the strategies' names
    assert data["baseline"] == "O2-400C"
    assert {r["scenario"] for r in data["ranking"]} == {"O2-400C", "O2-450C-1h"}
    thr = _means(db, "good_kg_per_h")
    nominal = {r["scenario"]: r["objective"]["good_kg_per_h"]["mean"] for r in data["ranking"]}
    assert nominal == {s: pytest.approx(thr[f"{s}@u00"]) for s in nominal}
    rob = data["robustness"]
    assert rob["samples"] == 3 and rob["samples_used"] == 3
    assert [o["objective"] for o in rob["objectives"]] == list(OBJECTIVES)
    for o in rob["objectives"]:
        assert sum(x["p_best"] for x in o["strategies"]) + o["no_feasible_strategy"] == pytest.approx(1.0)
    # throughput, recomputed from the stored KPI summaries: which strategy has the best mean in each sample
    o = rob["objectives"][0]
    assert o["kpi"] == "good_kg_per_h" and o["no_feasible_strategy"] == 0
    wins = {"O2-400C": 0.0, "O2-450C-1h": 0.0}
    regret = dict.fromkeys(wins, 0.0)
    for k in ("01", "02", "03"):
        v = {s: thr[f"{s}@u{k}"] for s in wins}
        best = max(v.values())
        for s in wins:
            wins[s] += (v[s] == best) / sum(x == best for x in v.values()) / 3
            regret[s] += (best - v[s]) / 3
    got = {x["strategy"]: (x["p_best"], x["expected_regret"]) for x in o["strategies"]}
    assert got == {s: (pytest.approx(wins[s]), pytest.approx(regret[s])) for s in wins}
    # the table
    res = runner.invoke(app, ["compare", str(path), "--db", str(db), "--min-yield", "0.5"], env=ENV)
    assert res.exit_code == 0, res.output
    assert "nominal model: KPI means" in res.output
    assert "robustness to model-parameter uncertainty: 3 samples of" in res.output
    assert "constraints: final_yield >= 0.5" in res.output
    assert "E[regret]" in res.output and "P(best)" in res.output
    for name in physics.PARAM_RANGES:
        assert name in res.output
    bad = runner.invoke(app, ["compare", str(path), "--db", str(db), "--constraint", "colour>=1"], env=ENV)
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert "unknown KPI 'colour'" in bad.output


def test_report_has_a_robustness_section_for_an_uncertainty_study(
    study_db: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = study_db
    out, t = report.write_report("study:1", tmp_path / "r.html", db)
    text = out.read_text()
    c = check_page(text)
    assert [r.name for r in t.runs] == ["O2-400C", "O2-450C-1h"] and t.focus.name == "O2-400C"
    section = text[text.index('<section id="robustness">') : text.index('<section id="warmup">')]
    assert c.sections["robustness"].get("table", 0) == 3  # results, parameters, samples
    assert "3 Latin-hypercube samples (seed 4)" in section
    for name in physics.PARAM_RANGES:
        assert f"<th>{name}</th>" in section
    for obj in OBJECTIVES:
        assert f">{obj}<br>" in section
    assert "@u0" not in text[text.index('<section id="kpis">') : text.index('<section id="gantt">')]


def test_compare_of_a_study_stopped_before_its_samples_shows_the_nominal_runs(
    study_db: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = study_db
    cut = tmp_path / "cut.duckdb"
    with Store(db, read_only=True) as store:
        ids = store.query("SELECT run_id FROM runs WHERE scenario_name LIKE '%@u00'").column(0).to_pylist()
    assert len(ids) == 2
    con = duckdb.connect(str(cut))  # a copy of the study with its nominal runs only, as if interrupted there
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
    for table in ("meta", "studies"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table}")
    for table in ("runs", "kpis", "lots", "batches"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table} WHERE run_id IN ({ids[0]}, {ids[1]})")
    con.close()
    res = CliRunner().invoke(app, ["compare", "study:1", "--db", str(cut), "--kpi", "final_yield"], env=ENV)
    assert res.exit_code == 0, res.output
    assert "ranking by throughput" in res.output and "O2-450C-1h" in res.output
    assert "no parameter sample has a run of every strategy yet (samples 1..3)" in res.output


def test_api_gives_the_numbers_compare_prints(study_db: tuple[Path, Path]) -> None:
    path, db = study_db
    r = twin.strategy_robustness(1, db=db, min_yield=0.5)
    assert r.constraints == [Constraint("final_yield", ">=", 0.5)] and r.samples.n == 3
    js = CliRunner().invoke(
        app, ["compare", "study:1", "--db", str(db), "--format", "json", "--min-yield", "0.5"]
    )
    assert robustness_json(r) == json.loads(js.output)["robustness"]
    assert twin.strategy_robustness(str(path), db=db).samples.seed == 4
    s = twin.sample_parameters(4, seed=4)
    assert s.values.shape == (4, len(physics.PARAM_RANGES))
    with pytest.raises(TwinError, match="unknown parameter 'nope'"):
        twin.sample_parameters(4, seed=4, params=["nope"])


def test_api_refuses_a_study_without_samples(tmp_path: Path) -> None:
    from twin.executors import run_study
    from twin.study import load_study

    path = tmp_path / "plain.yaml"
    path.write_text(
        STUDY.format(base=REPO / "scenarios" / "baseline.yaml").replace("horizon_h: 96", "horizon_h: 36")
    )
    run_study(load_study(path), "serial", db=tmp_path / "p.duckdb")
    with pytest.raises(TwinError, match="sampled no model parameters"):
        twin.strategy_robustness(1, db=tmp_path / "p.duckdb")
    out, _ = report.write_report("study:1", tmp_path / "p.html", tmp_path / "p.duckdb")
    c = check_page(out.read_text())
    assert "Needs an uncertainty study" in c.notes["robustness"]
