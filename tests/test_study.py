"""Study files: designs expand into named, validated scenarios with one seed; errors name file, scenario, field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.errors import TwinError
from twin.study import factorial_names, load_study

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "scenarios" / "baseline.yaml"


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text.replace("BASE", str(BASE)))
    return p


FACTORIAL = """\
name: grid
base: BASE
replications: 3
seed: 42
horizon_h: 300
warmup_h: 24
design: factorial
factors:
  recipes.mild-400.setpoint_c: [350, 400, 450]
  recipes.mild-400.soak_h: [2, 3]
baseline: setpoint_c=400,soak_h=3
"""


def test_factorial_expands_every_combination_with_readable_names(tmp_path: Path) -> None:
    plan = load_study(write(tmp_path, FACTORIAL))
    names = [s.name for s in plan.scenarios]
    assert names == [
        "setpoint_c=350,soak_h=2", "setpoint_c=350,soak_h=3", "setpoint_c=400,soak_h=2",
        "setpoint_c=400,soak_h=3", "setpoint_c=450,soak_h=2", "setpoint_c=450,soak_h=3",
    ]  # fmt: skip
    assert plan.baseline == "setpoint_c=400,soak_h=3"
    assert plan.n_runs == 18
    sc = plan.scenario("setpoint_c=450,soak_h=2")
    assert sc.recipes["mild-400"].setpoint_c == 450.0
    assert sc.recipes["mild-400"].soak_h == 2.0
    # common random numbers: one seed and the study's replications, horizon and warm-up everywhere
    assert {(s.seed, s.replications, s.horizon_h, s.warmup_h) for s in plan.scenarios} == {
        (42, 3, 300.0, 24.0)
    }
    # the base's other fields are untouched
    assert sc.furnaces.policy.name == "timeout" and sc.arrivals.rate_per_h == 0.5


def test_factor_levels_that_are_sections_get_readable_names() -> None:
    names = factorial_names(
        {
            "furnaces.policy": [{"name": "full"}, {"name": "timeout", "max_wait_h": 6}],
            "furnaces.count": [2, 3],
            "buffer.environment": ["ambient", "dry_room"],
        }
    )
    assert [n for n, _ in names][:3] == [
        "policy=full,count=2,environment=ambient",
        "policy=full,count=2,environment=dry_room",
        "policy=full,count=3,environment=ambient",
    ]
    assert names[4][0] == "policy=timeout(max_wait_h=6),count=2,environment=ambient"
    assert names[4][1]["furnaces.policy"] == {"name": "timeout", "max_wait_h": 6}
    # colliding last segments get more of their path
    clash = factorial_names({"recipes.a.soak_h": [1], "recipes.b.soak_h": [2]})
    assert clash[0][0] == "a.soak_h=1,b.soak_h=2"


def test_strategies_apply_overrides_and_replace_sections(tmp_path: Path) -> None:
    plan = load_study(
        write(
            tmp_path,
            """\
base: BASE
replications: 2
design: strategies
strategies:
  - name: baseline
  - name: full-3-furnaces
    furnaces.policy: {name: full}
    furnaces.count: 3
  - name: dry
    buffer.environment: dry_room
    buffer.rh_pct: 1
""",
        )
    )
    assert plan.name == "study" and plan.baseline == "baseline"
    full = plan.scenario("full-3-furnaces")
    assert full.furnaces.count == 3
    assert full.furnaces.policy.name == "full" and full.furnaces.policy.options() == {}
    assert plan.scenario("dry").buffer.effective_rh_pct == 1.0
    assert plan.scenario("baseline").furnaces.policy.options() == {"max_wait_h": 6.0}


def test_invalid_level_names_study_file_scenario_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, FACTORIAL.replace("[350, 400, 450]", "[350, 1500]").replace("baseline: s", "# "))
    with pytest.raises(TwinError) as err:
        load_study(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "setpoint_c=1500,soak_h=2" in msg
    assert "recipes.mild-400.setpoint_c" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("furnaces.count: [2, 3]", "furnaces.colour: [red]"), "furnaces.colour: unknown field"),
        (("furnaces.count: [2, 3]", "furnaces.policy: [{name: sometimes}]"), "unknown policy 'sometimes'"),
        (("furnaces.count: [2, 3]", "furnaces.count: [0]"), "furnaces.count"),
        (("design: factorial", "design: random"), "design"),
        (("baseline: count=2", "baseline: count=7"), "baseline: no scenario named 'count=7'"),
        (("base: BASE", "base: nowhere.yaml"), "nowhere.yaml: file not found"),
        (("replications: 2", "replications: 0"), "replications"),
    ],
)
def test_bad_study_files_give_one_line_errors(tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    text = "base: BASE\nreplications: 2\ndesign: factorial\nfactors:\n  furnaces.count: [2, 3]\nbaseline: count=2\n"
    path = write(tmp_path, text.replace(*edit))
    with pytest.raises(TwinError) as err:
        load_study(path)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_design_needs_its_own_fields(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="design 'strategies' needs a list of strategies"):
        load_study(write(tmp_path, "base: BASE\ndesign: strategies\nfactors: {furnaces.count: [2]}\n"))
    with pytest.raises(TwinError, match="duplicate strategy name"):
        load_study(write(tmp_path, "base: BASE\ndesign: strategies\nstrategies: [{name: a}, {name: a}]\n"))


def test_shipped_studies_load_and_stay_small() -> None:
    for name, lo, hi in (("mild-anneal-strategies.yaml", 6, 16), ("furnace-scheduling.yaml", 12, 24)):
        plan = load_study(REPO / "scenarios" / name)
        assert lo <= len(plan.scenarios) <= hi, name
        assert plan.n_runs <= 120, name
        assert plan.baseline in [s.name for s in plan.scenarios]
        assert len({s.seed for s in plan.scenarios}) == 1


def test_cli_study_list_and_error(tmp_path: Path) -> None:
    path = write(tmp_path, FACTORIAL)
    res = CliRunner().invoke(app, ["study", str(path), "--list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "setpoint_c=450,soak_h=3" in res.output
    assert "setpoint_c=400,soak_h=3  (baseline)" in res.output
    bad = CliRunner().invoke(app, ["study", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2
    assert "missing.yaml: file not found" in bad.output
    help_ = CliRunner().invoke(app, ["study", "--help"], env={"COLUMNS": "200"})
    assert help_.exit_code == 0 and "--executor" in help_.output


def test_factor_levels_can_set_several_fields_under_one_label(tmp_path: Path) -> None:
    plan = load_study(
        write(
            tmp_path,
            """\
base: BASE
design: factorial
factors:
  furnaces.count: [2]
  buffer:
    - {label: humid, set: {buffer.environment: ambient, buffer.rh_pct: 50}}
    - {label: dry, set: {buffer.environment: dry_room, buffer.rh_pct: 1}}
""",
        )
    )
    assert [s.name for s in plan.scenarios] == ["count=2,buffer=humid", "count=2,buffer=dry"]
    dry = plan.scenario("count=2,buffer=dry").buffer
    assert (dry.environment, dry.effective_rh_pct) == ("dry_room", 1.0)
