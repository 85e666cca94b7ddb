"""Uncertainty sampling: a stratified, seeded Latin hypercube over PARAM_RANGES; a study runs every strategy
under every sample, sampled values on top of its own quality overrides, one seed for all (common random
numbers). The uncertain parameters' names are read from `plant.physics.PARAM_RANGES` at run time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plant import physics
from twin.cli import app
from twin.errors import TwinError
from twin.executors import _tasks, new_pool, run_study
from twin.store import Store
from twin.study import load_study
from twin.uncertainty import (
    MAX_SAMPLES,
    ParameterSamples,
    log_scaled,
    run_name,
    sample_parameters,
    unit_hypercube,
)
from twin.worker import simulate_task

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "scenarios" / "baseline.yaml"


def strata(values: np.ndarray, low: float, high: float, n: int) -> list[int]:
    """The stratum (0..n-1) of each value, in log space when the range is sampled in log space."""
    if log_scaled(low, high):
        pos = (np.log(values) - math.log(low)) / (math.log(high) - math.log(low))
    else:
        pos = (values - low) / (high - low)
    assert np.all((pos >= 0) & (pos < 1 + 1e-12))
    return sorted(np.minimum(np.floor(pos * n), n - 1).astype(int).tolist())


def test_latin_hypercube_puts_one_sample_in_each_stratum_in_log_or_linear_space() -> None:
    ranges = {
        "lin": (0.3, 0.9),  # linear
        "decades": (2.0e3, 2.0e5),  # two decades: log
        "one_decade": (1.0, 10.0),  # exactly high/low = 10: log
        "narrow": (1.0, 9.0),  # positive but less than a decade: linear
        "signed": (-1.0, 1.0),  # crosses zero: linear
    }
    for n in (2, 7, 50):
        s = sample_parameters(n, seed=3, ranges=ranges)
        assert s.values.shape == (n, 5) and s.names == tuple(sorted(ranges))
        for j, name in enumerate(s.names):
            lo, hi = ranges[name]
            assert strata(s.values[:, j], lo, hi, n) == list(range(n)), (name, n)
    assert [log_scaled(*ranges[k]) for k in ("lin", "decades", "one_decade", "narrow", "signed")] == [
        False, True, True, False, False,
    ]  # fmt: skip
    # in log space the decades split evenly: with 2 samples, one below the geometric mean (2e4), one above
    two = sample_parameters(2, seed=1, ranges={"decades": (2.0e3, 2.0e5)}).values[:, 0]
    assert min(two) < 2.0e4 < max(two)
    # the unit hypercube itself: every column a permutation of the strata
    u = unit_hypercube(11, ["a", "b", "c"], seed=0)
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 11).astype(int).tolist()) == list(range(11))


def test_the_real_param_ranges_are_sampled_stratified_and_valid() -> None:
    ranges = {k: (float(v[0]), float(v[1])) for k, v in physics.PARAM_RANGES.items()}
    s = sample_parameters(9, seed=2024)
    assert s.names == tuple(sorted(ranges))
    for j, name in enumerate(s.names):
        assert strata(s.values[:, j], *ranges[name], 9) == list(range(9)), name
    for k in range(1, s.n + 1):  # every sample is a valid set of quality parameters
        physics.QualityParams().replace(**s.overrides(k))
    assert s.overrides(0) == {}


def test_samples_are_deterministic_per_seed_and_per_parameter() -> None:
    names = sorted(physics.PARAM_RANGES)
    a = sample_parameters(12, seed=7)
    b = sample_parameters(12, seed=7)
    c = sample_parameters(12, seed=8)
    assert np.array_equal(a.values, b.values)
    assert not np.any(np.isclose(a.values, c.values, rtol=1e-9, atol=0.0))  # conductivities are ~1e-10
    # a parameter's column depends on the seed and its own name only: sampling fewer parameters keeps it
    if len(names) >= 2:
        one = sample_parameters(12, seed=7, names=[names[1]])
        assert np.array_equal(one.values[:, 0], a.values[:, names.index(names[1])])
    # the stored form gives back the same samples
    back = ParameterSamples.from_dict(json.loads(json.dumps(a.to_dict())))
    assert (back.names, back.low, back.high, back.seed) == (a.names, a.low, a.high, a.seed)
    assert np.array_equal(back.values, a.values)
    with pytest.raises(ValueError, match="unknown parameter 'no_such_param'; valid: "):
        sample_parameters(3, seed=1, names=["no_such_param"])
    with pytest.raises(ValueError, match="at least 2 samples"):
        sample_parameters(1, seed=1)


def test_run_names_sort_and_group_by_sample() -> None:
    assert run_name("O2-400C-3h", 0, 20) == "O2-400C-3h@u00"
    assert run_name("O2-400C-3h", 7, 20) == "O2-400C-3h@u07"
    assert run_name("a", 7, 150) == "a@u007"


def write(tmp_path: Path, uncertainty: str, name: str = "unc.yaml", extra: str = "") -> Path:
    p = tmp_path / name
    p.write_text(
        f"""\
name: {Path(name).stem}
base: {BASE}
replications: 2
seed: 11
horizon_h: 96
warmup_h: 12
design: strategies
strategies:
  - name: O2-400C
  - name: O2-450C
    recipes.mild-400.setpoint_c: 450
    {extra}
{uncertainty}
"""
    )
    return p


def test_plan_runs_every_strategy_under_every_sample_with_sampled_values_on_top(tmp_path: Path) -> None:
    names = sorted(physics.PARAM_RANGES)
    sampled = names[1:] if len(names) > 1 else names
    fixed = [n for n in names if n not in sampled]  # left out of the sampling (when there are two or more)
    # the second strategy sets quality fields itself: a sampled one and the one that is not sampled
    own = {n: physics.PARAM_RANGES[n][0] for n in [sampled[-1], *fixed]}
    extra = "quality: {" + ", ".join(f"{k}: {format(v, '.17e')}" for k, v in own.items()) + "}"
    path = write(tmp_path, f"uncertainty: {{samples: 3, params: [{', '.join(sampled)}]}}", extra=extra)
    plan = load_study(path)
    assert plan.strategies == ["O2-400C", "O2-450C"] and plan.baseline == "O2-400C"
    assert [s.name for s in plan.scenarios] == [
        "O2-400C@u00", "O2-450C@u00", "O2-400C@u01", "O2-450C@u01",
        "O2-400C@u02", "O2-450C@u02", "O2-400C@u03", "O2-450C@u03",
    ]  # fmt: skip
    assert plan.n_runs == 8 * 2
    samples = plan.samples
    assert samples is not None and samples.seed == 11  # the study's seed when the section gives none
    assert list(samples.names) == sampled
    assert plan.scenarios[0].quality == {}  # nominal: the scenario's own overrides only
    assert plan.scenarios[1].quality == own
    for k in (1, 2, 3):
        first, second = plan.scenarios[2 * k], plan.scenarios[2 * k + 1]
        assert first.quality == samples.overrides(k)
        assert second.quality == {**own, **samples.overrides(k)}
        assert (
            second.quality[sampled[-1]] == samples.overrides(k)[sampled[-1]] != own[sampled[-1]]
        )  # sample wins
        assert all(second.quality[n] == own[n] for n in fixed)
        assert second.recipes["mild-400"].setpoint_c == 450.0
    # common random numbers: one seed, one set of replications for every (strategy, sample)
    assert {(s.seed, s.replications) for s in plan.scenarios} == {(11, 2)}
    # the study's stored JSON holds the samples, the ranges and the strategies
    data = json.loads(plan.to_json())
    assert data["uncertainty"]["strategies"] == ["O2-400C", "O2-450C"]
    assert np.array_equal(ParameterSamples.from_dict(data["uncertainty"]).values, samples.values)
    assert [p["name"] for p in data["uncertainty"]["params"]] == list(samples.names)


def test_params_default_to_every_name_in_param_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picked = sorted(physics.PARAM_RANGES)[:2]
    narrow = {}
    for name in picked:  # the middle third of each real range
        lo, hi = physics.PARAM_RANGES[name]
        narrow[name] = (lo + (hi - lo) / 3, hi - (hi - lo) / 3)
    monkeypatch.setattr(physics, "PARAM_RANGES", narrow)
    plan = load_study(write(tmp_path, "uncertainty: {samples: 4, seed: 5}"))
    assert plan.samples is not None and plan.samples.names == tuple(picked) and plan.samples.seed == 5
    for j, name in enumerate(picked):
        assert strata(plan.samples.values[:, j], *narrow[name], 4) == [0, 1, 2, 3]
    assert sorted(plan.scenarios[-1].quality) == picked
    # without the section nothing changes: the design's scenarios under their own names, no uncertainty key
    plain = load_study(write(tmp_path, "", name="plain.yaml"))
    assert [s.name for s in plain.scenarios] == ["O2-400C", "O2-450C"] and plain.samples is None
    assert "uncertainty" not in plain.to_json()


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ("uncertainty: {samples: 1}", "uncertainty.samples: at least 2 samples are needed, got 1"),
        (
            f"uncertainty: {{samples: {MAX_SAMPLES + 1}}}",
            f"uncertainty.samples: at most {MAX_SAMPLES} samples",
        ),
        ("uncertainty: {samples: 3, params: [no_such_param]}", "unknown parameter 'no_such_param'; valid: "),
        ("uncertainty: {samples: 3, params: []}", "uncertainty.params: an empty list samples nothing"),
        ("uncertainty: {samples: 3, sead: 4}", "uncertainty.sead: unknown field"),
        ("uncertainty: {seed: 4}", "uncertainty.samples"),
    ],
)
def test_bad_uncertainty_sections_give_one_line_errors(tmp_path: Path, section: str, needle: str) -> None:
    path = write(tmp_path, section)
    with pytest.raises(TwinError) as err:
        load_study(path)
    msg = str(err.value)
    assert needle in msg and str(path) in msg
    assert "\n" not in msg
    if "valid: " in needle:
        assert all(name in msg for name in physics.PARAM_RANGES)


def test_uncertainty_option_sets_the_samples_and_keeps_the_section_s_seed(tmp_path: Path) -> None:
    path = write(tmp_path, "uncertainty: {samples: 9, seed: 3}")
    plan = load_study(path, uncertainty=2)
    assert plan.samples is not None and (plan.samples.n, plan.samples.seed) == (2, 3)
    plain = load_study(write(tmp_path, "", name="plain.yaml"), uncertainty=2)
    assert plain.samples is not None and plain.samples.seed == 11  # the study's seed
    for n in (1, MAX_SAMPLES + 1):
        with pytest.raises(
            TwinError, match=f"--uncertainty must be between 2 and {MAX_SAMPLES} samples, got {n}"
        ):
            load_study(path, uncertainty=n)
    runner = CliRunner()
    res = runner.invoke(app, ["study", str(path), "--uncertainty", "1", "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: --uncertainty must be between 2 and {MAX_SAMPLES} samples, got 1"
    ]
    bad = runner.invoke(
        app, ["study", str(write(tmp_path, "uncertainty: {samples: 3, params: [nope]}", "bad.yaml"))]
    )
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert "uncertainty.params: unknown parameter 'nope'" in bad.output
    listed = runner.invoke(app, ["study", str(path), "--list", "--uncertainty", "4"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert "nominal model and 4 parameter samples: 10 runs, 20 replications" in listed.output


def test_a_study_with_uncertainty_stores_every_strategy_x_sample_and_pool_workers_agree(
    tmp_path: Path,
) -> None:
    plan = load_study(write(tmp_path, "uncertainty: {samples: 2}"))
    progress: list[tuple[int, int]] = []
    serial = run_study(
        plan, "serial", db=tmp_path / "s.duckdb", progress=lambda d, t: progress.append((d, t))
    )
    assert progress[-1] == (12, 12) and len(progress) == 12  # (1 + 2) samples x 2 strategies x 2 replications
    assert [r.scenario.name for r in serial.runs] == [s.name for s in plan.scenarios]
    with new_pool(2) as pool:  # every task in a worker process: the same KPIs, bit for bit
        remote = list(pool.map(simulate_task, _tasks(plan, range(2))))
    assert len(remote) == 12
    for index, rep in remote:
        here = serial.runs[index].replications[rep.replication]
        assert json.dumps(rep.kpis) == json.dumps(here.kpis), (plan.scenarios[index].name, rep.replication)
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        runs = store.query("SELECT scenario_name, scenario_json, seed FROM runs ORDER BY run_id").to_pylist()
        study = json.loads(store.query("SELECT study_json FROM studies").column(0)[0].as_py())
    assert [r["scenario_name"] for r in runs] == [s.name for s in plan.scenarios]
    assert {r["seed"] for r in runs} == {11}
    samples = ParameterSamples.from_dict(study["uncertainty"])
    assert np.array_equal(samples.values, plan.samples.values)
    for r in runs:
        k = int(r["scenario_name"].rsplit("@u", 1)[1])
        assert json.loads(r["scenario_json"])["quality"] == samples.overrides(k)
    # the samples change the model: some KPI differs between the nominal model and a sample
    nominal = serial.runs[0].summary.column("mean").to_pylist()
    assert any(r.summary.column("mean").to_pylist() != nominal for r in serial.runs[2::2])
