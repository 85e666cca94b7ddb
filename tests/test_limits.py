"""Limits and bad input: work that would fill the memory for hours, NaN and infinities, files that are not UTF-8
text or not a mapping end in one line naming the file or option, the limit and how to raise it (exit code 2;
`twin scenario check`: one line per error, exit 1). The defaults allow every shipped scenario and study."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, run_twin
from typer.testing import CliRunner

from twin.api import with_overrides
from twin.cli import app
from twin.errors import TwinError
from twin.limits import MAX_UNITS, Limits, expected_lots
from twin.scenario import load_scenario, scenario_errors, scenario_hash
from twin.study import load_study

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
SCENARIOS = REPO / "scenarios"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_error(r) -> str:
    """The single `error: ...` line of a refused command (exit 2, nothing else on stderr, no traceback)."""
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def write(tmp_path: Path, text: str | bytes, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


RAISE = "in the scenario or study file to allow it"


# -- work limits ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "arrivals: {rate_per_h: 1e9}\n",
            "arrivals.rate_per_h: about 7.2e+11 lots per replication (rate_per_h 1e+09/h x horizon_h 720 h) is "
            f"over the limit of 1000000; raise limits.lots_per_replication {RAISE}",
        ),
        (
            "horizon_h: 1e12\n",
            f"horizon_h: 1e+12 h is over the limit of 100000 h; raise limits.horizon_h {RAISE}",
        ),
        (
            "replications: 1000000000\n",
            f"replications: 1000000000 is over the limit of 1000; raise limits.replications {RAISE}",
        ),
        (
            "ald: {reactors: 100000}\n",
            f"ald.reactors: 100000 is over the limit of 1000 units of one kind; raise limits.units {RAISE}",
        ),
        ("furnaces: {count: 5000}\n", "furnaces.count: 5000 is over the limit of 1000 units"),
        ("qc: {stations: 5000}\n", "qc.stations: 5000 is over the limit of 1000 units"),
        (
            "arrivals: {kind: takt, takt_h: 0.0001}\n",
            "arrivals.takt_h: about 7.2e+06 lots per replication (horizon_h 720 h / takt_h 0.0001 h)",
        ),
        (
            "horizon_h: 100\nald: {mtbf_h: 0.00001, failure_clock: calendar}\n",
            "ald.mtbf_h: about 6e+07 events per replication (50 lots, 3e+07 failures and maintenance stops) is "
            f"over the limit of 20000000; raise limits.events_per_replication {RAISE}",
        ),
        (
            "horizon_h: 20000\nreplications: 500\n",
            "replications: 500 replications x about 1e+04 lots = 5e+06 lots per run is over the limit of 2000000 "
            f"(a run is held in memory until it is stored); raise limits.lots_per_run {RAISE}",
        ),
        (
            "limits: {units: 65534}\n",
            f"limits.units: Input should be less than or equal to {MAX_UNITS}",
        ),
        (
            "limits: {units: 40000}\nald: {reactors: 40000}\nfurnaces: {count: 30000}\n",
            "ald.reactors: ald.reactors + furnaces.count + qc.stations = 70004; a run records at most 65533 units",
        ),
    ],
)
def test_work_over_a_limit_is_one_line_naming_field_limit_and_how_to_raise_it(tmp_path, text, expected):
    p = write(tmp_path, text)
    errors = scenario_errors(p)
    assert f"{p}: {expected}" in [e[: len(str(p)) + 2 + len(expected)] for e in errors], errors
    r = invoke("scenario", "check", str(p))
    assert r.exit_code == 1 and r.stderr.splitlines() == errors
    line = one_error(invoke("run", str(p), "--db", str(tmp_path / "t.duckdb")))
    assert line.startswith(f"error: {errors[0]}")
    assert not (tmp_path / "t.duckdb").exists()


def test_a_limits_section_raises_a_limit(tmp_path):
    p = write(tmp_path, "horizon_h: 200000\narrivals: {rate_per_h: 0.001}\nlimits: {horizon_h: 250000}\n")
    assert scenario_errors(p) == []
    sc = load_scenario(p)
    assert sc.limits.horizon_h == 250000 and sc.limits.lots_per_replication == Limits().lots_per_replication
    p = write(tmp_path, "ald: {reactors: 2000}\nlimits: {units: 2000}\n")
    assert scenario_errors(p) == []
    p = write(tmp_path, "limits: {horizon_h: .nan, lots: 3}\n")
    assert {e.split(": ")[1] for e in scenario_errors(p)} == {"limits.horizon_h", "limits.lots"}


def test_limits_change_no_result_so_not_the_scenario_hash(tmp_path):
    a = load_scenario(write(tmp_path, "horizon_h: 100\n", "a.yaml"))
    b = load_scenario(write(tmp_path, "horizon_h: 100\nlimits: {horizon_h: 500000}\n", "b.yaml"))
    assert scenario_hash(a.model_copy(update={"name": "x"})) == scenario_hash(
        b.model_copy(update={"name": "x"})
    )


def test_the_defaults_allow_every_shipped_scenario_and_study_and_four_years_of_the_baseline():
    studies = 0
    for p in sorted(SCENARIOS.glob("*.yaml")):
        if "design:" in p.read_text():
            studies += 1
            plan = load_study(p, uncertainty=200)  # the most samples a study may draw
            assert len(plan.scenarios) == 201 * len(plan.strategies)
        else:
            assert scenario_errors(p) == [], p
    assert studies == 2
    base = load_scenario(SCENARIOS / "baseline.yaml")
    four_years = with_overrides(base, hours=4 * 8766)
    assert four_years.horizon_h == 4 * 8766
    assert expected_lots(four_years)[0] * four_years.replications < Limits().lots_per_run / 10


def test_cli_overrides_are_checked_against_the_limits(tmp_path):
    p = write(tmp_path, "horizon_h: 10\nwarmup_h: 1\nreplications: 1\n")
    db = str(tmp_path / "t.duckdb")
    assert one_error(invoke("run", str(p), "--hours", "1e15", "--db", db)) == (
        f"error: scenario s with --hours 1e+15: horizon_h: 1e+15 h is over the limit of 100000 h; raise "
        f"limits.horizon_h {RAISE}"
    )
    assert one_error(invoke("run", str(p), "-n", "1000000000", "--db", db)) == (
        f"error: --replications 1000000000 is over the limit of 1000 replications (scenario s); raise "
        f"limits.replications {RAISE}"
    )
    assert one_error(
        invoke("run", str(p), "--precision", "0.1", "--max-replications", "5000", "--db", db)
    ) == (
        f"error: --max-replications 5000 is over the limit of 1000 replications (scenario s); raise "
        f"limits.replications {RAISE}"
    )
    assert one_error(invoke("run", str(p), "--seed", str(2**63), "--db", db)).startswith(
        "error: --seed must be between 0 and 2**63 - 1"
    )
    assert not Path(db).exists()


# -- studies ----------------------------------------------------------------------------------------------------
STUDY = """\
name: st
base: {base}
design: strategies
strategies:
  - name: a
  - name: b
    furnaces.count: 3
"""


def test_study_overrides_and_generated_scenarios_are_checked(tmp_path):
    base = SCENARIOS / "baseline.yaml"
    cases = {
        "horizon_h: 1e12\n": f"base {base}: horizon_h: 1e+12 h is over the limit of 100000 h",
        "replications: 1000000000\n": "replications: 1000000000 is over the limit of 1000",
        "horizon_h: .inf\n": "horizon_h: Input should be a finite number",
        "seed: 99999999999999999999\n": "seed: Input should be less than or equal to 9223372036854775807",
        "strategies:\n  - {name: a, furnaces.start_c: .nan}\n": "scenario 'a': furnaces.start_c: Input should be a finite",
        "strategies:\n  - {name: a, arrivals.rate_per_h: 1e9}\n": "scenario 'a': arrivals.rate_per_h: about 7.2e+11 lots",
        "uncertainty: {samples: 200}\nlimits: {runs_per_study: 100}\n": (
            "2 scenarios x 201 (nominal + uncertainty samples) = 402 runs is over the limit of 100 runs per study; "
            "raise limits.runs_per_study in the study file to allow it"
        ),
        "horizon_h: 50000\nlimits: {lots_per_study: 10000}\n": (
            "2 runs add up to about 2.5e+05 lots (replications x lots per replication), over the limit of 10000 "
            "lots per study; raise limits.lots_per_study in the study file to allow it"
        ),
    }
    for extra, expected in cases.items():
        text = STUDY.format(base=base)
        if extra.startswith("strategies:"):
            text = text[: text.index("strategies:")]
        p = write(tmp_path, text + extra, "study.yaml")
        with pytest.raises(TwinError) as exc:
            load_study(p)
        assert str(exc.value).startswith(f"{p}: "), exc.value
        assert expected in str(exc.value), (extra, str(exc.value))
        line = one_error(invoke("study", str(p), "--list"))
        assert line == f"error: {exc.value}"


def test_a_study_limits_section_raises_the_limits_of_every_scenario(tmp_path):
    base = SCENARIOS / "baseline.yaml"
    p = write(
        tmp_path, STUDY.format(base=base) + "horizon_h: 150000\nlimits: {horizon_h: 200000}\n", "study.yaml"
    )
    plan = load_study(p)
    assert [s.horizon_h for s in plan.scenarios] == [150000, 150000]
    assert all(s.limits.horizon_h == 200000 for s in plan.scenarios)
    assert plan.scenarios[0].limits.lots_per_replication == Limits().lots_per_replication


def test_factorial_too_many_combinations_is_refused_before_they_are_generated(tmp_path):
    levels = "[" + ", ".join(str(v) for v in range(1, 31)) + "]"
    text = (
        f"name: big\nbase: {SCENARIOS / 'baseline.yaml'}\ndesign: factorial\nfactors:\n"
        f"  furnaces.count: {levels}\n  qc.stations: {levels}\n  ald.reactors: {levels}\n  coating.cycles: {levels}\n"
    )
    p = write(tmp_path, text, "study.yaml")
    line = one_error(invoke("study", str(p), "--list"))
    assert line == (
        f"error: {p}: 810000 scenarios = 810000 runs is over the limit of 10000 runs per study; raise "
        "limits.runs_per_study in the study file to allow it"
    )


# -- NaN and infinity -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("furnaces: {start_c: .nan}\n", "furnaces.start_c"),
        ("furnaces: {unload_c: -.inf}\n", "furnaces.unload_c"),
        ("quality: {k_w_ppm2_per_h: .nan}\n", "quality.k_w_ppm2_per_h"),
        ("ald: {time_cv: .inf}\n", "ald.time_cv"),
        ("buffer: {temp_c: .nan}\n", "buffer.temp_c"),
        ("recipes: {default: {setpoint_c: .nan}}\n", "recipes.default.setpoint_c"),
        ("limits: {horizon_h: .inf}\n", "limits.horizon_h"),
    ],
)
def test_nan_and_infinity_in_a_scenario_are_refused_naming_the_field(tmp_path, text, field):
    p = write(tmp_path, text)
    errors = scenario_errors(p)
    assert len(errors) == 1 and errors[0].startswith(f"{p}: {field}: "), errors
    line = one_error(invoke("run", str(p), "--db", str(tmp_path / "t.duckdb")))
    assert line.startswith(f"error: {p}: {field}: ") and line.endswith("Input should be a finite number")


def test_start_and_unload_temperatures_are_bounded(tmp_path):
    p = write(tmp_path, "furnaces: {start_c: -300, unload_c: 5000}\n")
    assert [e.split(": ")[1] for e in scenario_errors(p)] == ["furnaces.start_c", "furnaces.unload_c"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "S", "--hours", "nan"], "error: --hours must be a finite number, got nan"),
        (["run", "S", "--hours", "inf"], "error: --hours must be a finite number, got inf"),
        (["run", "S", "--warmup", "-inf"], "error: --warmup must be a finite number, got -inf"),
        (["run", "S", "--precision", "nan"], "error: --precision must be a finite number, got nan"),
        (["compare", "1", "--alpha", "nan"], "error: --alpha must be a finite number, got nan"),
        (["compare", "1", "--min-yield", "inf"], "error: --min-yield must be a finite number, got inf"),
        (["compare", "1", "--delta", "nan", "--select-best"], "error: --delta must be a finite number, got nan"),
        (["runs", "show", "1", "--warmup", "nan"], "error: --warmup must be a finite number, got nan"),
        (["mirror", "opc.tcp://127.0.0.1:1", "--tags", "T", "--duration", "inf"],
         "error: --duration must be a finite number, got inf"),
        (["mirror", "opc.tcp://127.0.0.1:1", "--tags", "T", "--stale-s", "nan"],
         "error: --stale-s must be a finite number, got nan"),
        (["forecast", "--hours", "nan"], "error: --hours must be a finite number, got nan"),
        (["compare", "1", "--price", "electricity_eur_per_kwh=nan"],
         "error: --price 'electricity_eur_per_kwh=nan': the price must be a finite number"),
        (["compare", "1", "--constraint", "wait_p95_h<=1e999"],
         "error: --constraint 'wait_p95_h<=1e999': the bound must be a finite number"),
    ],
)  # fmt: skip
def test_every_float_option_refuses_nan_and_infinity(tmp_path, args, expected):
    scenario = write(tmp_path, "horizon_h: 10\nwarmup_h: 1\n")
    db = tmp_path / "t.duckdb"
    db.write_bytes(b"")  # exists: compare checks the database only after its options
    args = [str(scenario) if a == "S" else str(tmp_path / "tags.yaml") if a == "T" else a for a in args]
    if args[0] in ("run", "compare", "runs", "forecast"):
        args += ["--db", str(db)]
    assert one_error(invoke(*args)) == expected


@pytest.mark.parametrize("speed", ["inf", "nan"])
def test_plant_serve_refuses_a_speed_that_is_not_finite(tmp_path, speed):
    out = run_twin(
        "plant", "serve", str(SCENARIOS / "baseline.yaml"), "--speed", speed, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: --speed must be a positive finite number, got {speed}"
    ]


# -- files that are not a scenario ------------------------------------------------------------------------------
# nested aliases: nine lists of nine references each expand to 9**9 values ("billion laughs")
LAUGHS = (
    b"x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + b"".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n".encode() for p, n in zip("abcdefgh", "bcdefghi"))
    + b"furnaces: {policy: {name: timeout, max_wait_h: *i}}\n"
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"horizon_h: 10\nname: caf\xe9\n", "not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8"),
        (b"\xff\xfeh\x00o\x00", "not UTF-8 text (byte 0xff on line 1); save the file as UTF-8"),
        (b"", "the file is empty; a scenario is a mapping of fields (`name: ...`)"),
        (b"# only a comment\n\n", "the file is empty; a scenario is a mapping of fields (`name: ...`)"),
        (b"horizon_h: 10\nseed: 2\nhorizon_h: 20\n", "line 3, column 1: duplicate key 'horizon_h' (YAML would keep"),
        (b"ald:\n  reactors: 2\n  reactors: 3\n", "line 3, column 3: duplicate key 'reactors'"),
        (b"- horizon_h: 10\n", "a scenario must be a mapping of fields, got a list"),
        (b"just words\n", "a scenario must be a mapping of fields, got a single string"),
        (b"a: 1\n---\nb: 2\n", "YAML syntax error: line 2, column 1: but found another document"),
        (b"[" * 5000, "YAML nested too deeply"),
        (LAUGHS, "YAML aliases expand the file to more than 1000000 values; write the values out or use fewer"),
        (b"holidays: &a [1, *a]\n", "a YAML alias refers to a value that contains it"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_scenario_mapping_is_one_line(tmp_path, data, expected):
    p = write(tmp_path, data)
    assert scenario_errors(p) == [f"{p}: {expected}"] or scenario_errors(p)[0].startswith(f"{p}: {expected}")
    line = one_error(invoke("run", str(p), "--db", str(tmp_path / "t.duckdb")))
    assert line.startswith(f"error: {p}: {expected}")
    assert not (tmp_path / "t.duckdb").exists()  # an empty file no longer runs the defaults


def test_merge_keys_and_aliases_are_allowed(tmp_path):
    p = write(tmp_path, "ald:\n  <<: {reactors: 2, load_h: 0.5}\n  reactors: 4\n")
    assert scenario_errors(p) == [] and load_scenario(p).ald.reactors == 4
    p = write(tmp_path, "recipes:\n  a: &r {setpoint_c: 380, soak_h: 2}\n  b: *r\narrivals: {recipe: b}\n")
    assert load_scenario(p).recipes["b"].setpoint_c == 380


def test_a_study_file_that_is_not_utf8_or_empty_is_one_line(tmp_path):
    p = write(tmp_path, b"name: \xe9tude\n", "study.yaml")
    assert one_error(invoke("study", str(p), "--list")) == (
        f"error: {p}: not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8"
    )
    p = write(tmp_path, b"", "study.yaml")
    assert one_error(invoke("study", str(p), "--list")) == (
        f"error: {p}: the file is empty; a study is a mapping of fields (`name: ...`)"
    )


def test_plan_qc_and_tag_map_files_that_are_not_utf8_are_one_line(tmp_path):
    (tmp_path / "plan.csv").write_bytes(b"lot_id,release_h,mass_kg,recipe\n1,0,100,r\xe9\n")
    p = write(tmp_path, "arrivals: {kind: plan, plan_csv: plan.csv}\n")
    assert scenario_errors(p) == [
        f"{tmp_path / 'plan.csv'}: not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8"
    ]
    (tmp_path / "plan.csv").write_text("lot_id,release_h,mass_kg,recipe\n1,0,100\n")
    assert scenario_errors(p) == [
        f"{tmp_path / 'plan.csv'}: line 2: non-numeric or missing lot_id, release_h, mass_kg or recipe"
    ]
    qc = write(tmp_path, b"lot_id,wait_h,rh_pct,recipe,x_d\nL1,1,50,caf\xe9,0.5\n", "qc.csv")
    assert one_error(invoke("calibrate", str(qc), "-o", str(tmp_path / "out.yaml"))) == (
        f"error: {qc}: not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8"
    )
    tags = write(tmp_path, b"units:\n  F1: {kind: furnace, name: F\xfcr}\n", "tags.yaml")
    r = invoke("mirror", "opc.tcp://127.0.0.1:1", "--tags", str(tags), "--db", str(tmp_path / "m.duckdb"))
    assert one_error(r) == f"error: tag map {tags}: not UTF-8 text; save the file as UTF-8"


def test_poisson_arrivals_need_a_rate(tmp_path):
    p = write(tmp_path, "arrivals: {kind: poisson, rate_per_h: null}\n")
    assert scenario_errors(p) == [f"{p}: arrivals: kind 'poisson' needs rate_per_h"]


def test_a_key_with_a_line_break_stays_one_line(tmp_path):
    p = write(tmp_path, 'recipes:\n  "a\\nb": {setpoint_c: 5000}\n')
    errors = scenario_errors(p)
    assert errors == [f"{p}: recipes.a\\nb.setpoint_c: Input should be less than or equal to 1200"]
    assert one_error(invoke("run", str(p), "--db", str(tmp_path / "t.duckdb"))) == "error: " + errors[0]


def test_docs_limits_table_lists_every_limit_with_its_default():
    text = (REPO / "docs" / "limits.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", text, flags=re.M))
    assert {k: float(v) for k, v in rows.items()} == {k: float(v) for k, v in Limits().model_dump().items()}
    assert f"at most {MAX_UNITS}" in text


def test_forecast_hours_and_replications_are_checked_against_the_limits():
    from twin.live.forecast import forecast

    sc = load_scenario(SCENARIOS / "baseline.yaml")
    with pytest.raises(TwinError) as exc:
        forecast(sc, None, 1e9, 3)  # refused before the mirrored state is used
    assert str(exc.value) == (
        f"forecast of scenario baseline with --hours 1e+09 -n 3: horizon_h: 1e+09 h is over the limit of 100000 h; "
        f"raise limits.horizon_h {RAISE}"
    )
    with pytest.raises(TwinError, match=r"-n 5000: replications: 5000 is over the limit of 1000; raise"):
        forecast(sc, None, 12, 5000)


def test_select_best_replications_are_checked_against_the_stored_scenarios_limits(tmp_path):
    write(tmp_path, "horizon_h: 24\nwarmup_h: 2\nreplications: 2\n", "base.yaml")
    study = write(
        tmp_path, "name: sb\nbase: base.yaml\nreplications: 2\n" + STUDY[STUDY.index("design") :], "st.yaml"
    )
    db = str(tmp_path / "t.duckdb")
    assert invoke("study", str(study), "--executor", "serial", "--db", db).exit_code == 0
    line = one_error(
        invoke("compare", str(study), "--select-best", "--delta", "1", "--max-reps", "5000", "--db", db)
    )
    assert line == (
        f"error: --max-reps 5000 is over the limit of 1000 replications (scenario a); raise limits.replications {RAISE}"
    )
    line = one_error(
        invoke("compare", str(study), "--select-best", "--delta", "1", "--n0", "2000", "--db", db)
    )
    assert line.startswith("error: --n0 2000 is over the limit of 1000 replications (scenario a)")
