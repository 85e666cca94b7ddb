"""Scenario files: validation errors name the file and the field path; the JSON schema is printable."""

from __future__ import annotations

import json

import pytest

from twin.errors import TwinError
from twin.scenario import load_scenario, scenario_errors, scenario_json_schema


def write(tmp_path, text: str):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_baseline_loads_and_has_its_documented_shape():
    sc = load_scenario("scenarios/baseline.yaml")
    assert sc.name == "baseline"
    assert sc.ald.reactors == 3 and sc.furnaces.count == 2 and sc.furnaces.capacity_lots == 4
    assert sc.recipes["mild-400"].setpoint_c == 400 and sc.recipes["mild-400"].atmosphere == "O2"
    assert sc.buffer.effective_rh_pct == 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("horizon_h: [1, 2\n", "YAML syntax error: line"),
        ("horizon_h: 100\nbogus: 1\n", "bogus: unknown field"),
        ("ald:\n  reactors: three\n", "ald.reactors: Input should be a valid integer"),
        ("ald:\n  load_h: -1\n", "ald.load_h: Input should be greater than or equal to 0"),
        ("qc:\n  test_h: 0\n", "qc.test_h: Input should be greater than 0"),
        (
            "furnaces:\n  capacity_lots: 0\n",
            "furnaces.capacity_lots: Input should be greater than or equal to 1",
        ),
        ("furnaces:\n  policy: {name: fastest}\n", "furnaces.policy: unknown policy 'fastest'"),
        ("furnaces:\n  policy: {name: timeout, max_wiat_h: 3}\n", "has no option 'max_wiat_h'"),
        ("recipes:\n  default: {atmosphere: H2}\n", "recipes.default.atmosphere: Input should be"),
        ("arrivals: {recipe: nope}\n", "recipe(s) nope not defined"),
        ("quality: {k_ww: 3}\n", "quality: "),
        ("horizon_h: 10\nwarmup_h: 20\n", "warmup_h (20.0) must be shorter than horizon_h"),
        ("- just\n- a list\n", "a scenario must be a mapping"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path, text, expected):
    p = write(tmp_path, text)
    errors = scenario_errors(p)
    assert errors, text
    assert all(line.startswith(f"{p}: ") for line in errors)
    assert any(expected in line for line in errors), errors
    with pytest.raises(TwinError) as exc:
        load_scenario(p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


def test_every_error_is_reported_one_line_each(tmp_path):
    p = write(tmp_path, "ald: {reactors: 0, load_h: -2}\nqc: {stations: 0}\n")
    errors = scenario_errors(p)
    assert len(errors) == 3
    assert {e.split(": ")[1] for e in errors} == {"ald.reactors", "ald.load_h", "qc.stations"}


def test_missing_file_and_plan_errors(tmp_path):
    assert scenario_errors(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: file not found"]
    p = write(tmp_path, "arrivals: {kind: plan, plan_csv: plan.csv}\n")
    assert "arrivals.plan_csv: file not found" in scenario_errors(p)[0]
    (tmp_path / "plan.csv").write_text("lot_id,release_h,mass_kg,recipe\n1,abc,100,default\n")
    assert "line 2: non-numeric" in scenario_errors(p)[0]
    (tmp_path / "plan.csv").write_text("lot_id,release_h\n1,2\n")
    assert "missing column(s) mass_kg, recipe" in scenario_errors(p)[0]


def test_json_schema_describes_the_scenario():
    schema = scenario_json_schema()
    json.dumps(schema)  # serialisable
    assert schema["additionalProperties"] is False
    assert {"arrivals", "ald", "buffer", "furnaces", "recipes", "qc", "quality"} <= set(schema["properties"])
    recipe = schema["$defs"]["Recipe"]["properties"]
    assert recipe["atmosphere"]["enum"] == ["O2", "dry_air", "air", "N2"]


def test_quality_params_are_shared_by_equal_overrides_and_follow_them():
    base = load_scenario("scenarios/baseline.yaml")
    a = base.model_copy(update={"quality": {"rl_max_ppm": 900.0}})
    b = base.model_copy(update={"quality": {"rl_max_ppm": 900.0}})
    c = base.model_copy(update={"quality": {"rl_max_ppm": 800.0}})
    assert a.quality_params() is b.quality_params()  # one object: the quality model's caches serve every run
    assert a.quality_params().rl_max_ppm == 900.0 and c.quality_params().rl_max_ppm == 800.0
    assert base.quality_params() is not a.quality_params()
    assert base.quality_params().rl_max_ppm == type(base.quality_params())().rl_max_ppm
