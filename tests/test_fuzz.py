"""Fuzzing the inputs: mutated scenario and study files and mutated command lines end in success or in one line
of error with exit code 2 (`twin scenario check`: one line per error, exit 1), within a time limit; never a
traceback, never a hang.

Mutations of a small valid scenario (a few simulated hours, tight `limits:` so that no mutation runs long) and of a
small study: values replaced by other types, signs, NaN, infinities and huge numbers; keys deleted, renamed and
duplicated; sections nested wrongly; aliases (one node in two places, or inside itself); bytes that are not UTF-8, truncation, stray tabs. Commands run in-process
through Typer's CliRunner. Examples per test: TWIN_FUZZ_EXAMPLES (default 300), drawn by the hypothesis profile
of conftest.py (derandomized: `ci`; HYPOTHESIS_PROFILE=explore for fresh draws).
"""

from __future__ import annotations

import copy
import math
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from typer.exceptions import Abort, Exit, TyperException
from typer.testing import CliRunner

from twin.cli import app, usage_line

EXAMPLES = int(os.environ.get("TWIN_FUZZ_EXAMPLES", "300"))
SECONDS_PER_EXAMPLE = 10.0
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

LIMITS = {
    "horizon_h": 400,
    "replications": 3,
    "units": 12,
    "lots_per_replication": 1500,
    "events_per_replication": 40000,
    "lots_per_run": 3000,
    "runs_per_study": 12,
    "lots_per_study": 6000,
}
SCENARIO: dict[str, Any] = {
    "name": "fuzz",
    "description": "small line for fuzzing",
    "horizon_h": 6,
    "warmup_h": 1,
    "seed": 3,
    "replications": 1,
    "arrivals": {"kind": "poisson", "rate_per_h": 0.8, "mass_kg": 120, "recipe": "mild",
                 "recipe_mix": {"mild": 2, "hot": 1}},
    "coating": {"material": "HfO2", "cycles": 10},
    "ald": {"reactors": 2, "load_h": 0.5, "pump_heat_h": 0.75, "cycle_min": 12, "vent_cool_h": 0.75,
            "unload_h": 0.5, "time_distribution": "gamma", "time_cv": 0.1, "mtbf_h": 40, "mttr_h": 2,
            "pm_every_batches": 3, "pm_h": 1, "failure_clock": "calendar"},
    "buffer": {"capacity_lots": 6, "environment": "ambient", "rh_pct": 50, "temp_c": 25},
    "furnaces": {"count": 2, "capacity_lots": 3, "load_h": 0.5, "unload_h": 0.5, "start_c": 25, "unload_c": 80,
                 "atmosphere_change_h": 1.5, "setpoint_change_h": 0.5, "heat_kwh_fixed": 100,
                 "heat_kwh_per_kg": 0.18, "holding_kw": 20, "gas_nm3_per_h": 18, "mtbf_h": 50, "mttr_h": 2,
                 "policy": {"name": "timeout", "max_wait_h": 1}},
    "recipes": {"mild": {"setpoint_c": 400, "ramp_c_per_min": 10, "soak_h": 0.5, "atmosphere": "O2",
                         "cool_c_per_min": 5},
                "hot": {"setpoint_c": 550, "ramp_c_per_min": 10, "soak_h": 0.25, "atmosphere": "N2",
                        "cool_c_per_min": 5}},
    "qc": {"test_h": 0.5, "stations": 2, "rework": True},
    "calendar": {"pattern": "2x8-weekdays", "holidays": [1], "shutdowns": [{"start_h": 2, "end_h": 2.5}],
                 "start_weekday": "mon"},
    "quality": {"k_w_ppm2_per_h": 30.0},
    "limits": LIMITS,
}  # fmt: skip
PLAN_SCENARIO = copy.deepcopy(SCENARIO) | {
    "name": "fuzz-plan",
    "arrivals": {"kind": "plan", "mass_kg": 100, "plan": [
        {"lot_id": 1, "release_h": 0.0, "mass_kg": 100, "recipe": "mild"},
        {"lot_id": 2, "release_h": 0.5, "mass_kg": 110, "recipe": "hot"},
        {"lot_id": 3, "release_h": 1.0, "mass_kg": 90, "recipe": "mild"}]},
    "calendar": None,
}  # fmt: skip
STUDY: dict[str, Any] = {
    "name": "fuzzstudy",
    "description": "two strategies",
    "base": "base.yaml",
    "replications": 1,
    "seed": 5,
    "horizon_h": 5,
    "warmup_h": 1,
    "design": "strategies",
    "baseline": "a",
    "strategies": [{"name": "a"}, {"name": "b", "recipes.mild.setpoint_c": 450, "furnaces.count": 3}],
    "uncertainty": {"samples": 2, "seed": 4, "params": ["ea_d_kj", "y0_uptake"]},
    "limits": {"lots_per_study": 5000},
}
FACTORIAL_STUDY: dict[str, Any] = {
    "name": "fuzzgrid",
    "base": "base.yaml",
    "replications": 1,
    "design": "factorial",
    "factors": {
        "furnaces.count": [1, 2],
        "buffer": [{"label": "dry", "set": {"buffer.environment": "dry_room", "buffer.rh_pct": 1}},
                   {"label": "humid", "set": {"buffer.rh_pct": 60}}],
    },
}  # fmt: skip


# -- the time limit ---------------------------------------------------------------------------------------------
class Hang(BaseException):
    """An example ran past SECONDS_PER_EXAMPLE (a BaseException, so that no `except Exception` swallows it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"no result after {SECONDS_PER_EXAMPLE} s")


def invoke(*args: str):
    """Run `twin ARGS` in-process with the time limit; the CliRunner result."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_EXAMPLE)
    try:
        # as `twin` runs it (twin/cli.py main): click's usage errors come back as exceptions, not usage boxes
        return runner.invoke(app, list(args), standalone_mode=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- the oracle -------------------------------------------------------------------------------------------------
PROGRESS = re.compile(r"^.+: \d+/\d+ replications$")


def _usage_error(exc: BaseException | None) -> bool:
    """A command line Typer cannot parse (its vendored click's UsageError family)."""
    return isinstance(exc, TyperException) and not isinstance(exc, Abort | Exit)


def error_line(r, args: tuple[str, ...]) -> str | None:
    """None for a success; else the one `error: ...` line of a user error (exit 2), or of a command line Typer
    cannot parse, as `twin` prints it (twin/cli.py usage_line). Fails the example on a traceback, a crash,
    another exit code or more than one line (progress lines of a run excepted)."""
    what = f"twin {' '.join(args)!r}"
    if _usage_error(r.exception):
        line = usage_line(r.exception)
        assert "\n" not in line and line.startswith("error: twin") and "--help`)" in line, f"{what}: {line!r}"
        return line
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"{what} raised {type(r.exception).__name__}: {r.exception}") from r.exception
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, f"{what}: traceback\n{r.stderr}"
    code = r.return_value if isinstance(r.return_value, int) else r.exit_code  # typer.Exit's code, returned
    if code == 0:
        return None
    assert code == 2, f"{what}: exit code {code}\n{r.stderr}"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: not one error line:\n{r.stderr}"
    return lines[0]


def check_lines(r, path: Path) -> list[str]:
    """`twin scenario check FILE`: [] when valid (exit 0), else the error lines, each naming the file (exit 1),
    or one `error:` line (exit 2)."""
    if r.exit_code == 1 and (r.exception is None or isinstance(r.exception, SystemExit)):
        lines = r.stderr.splitlines()
        assert lines and all(ln.startswith(f"{path}: ") for ln in lines), r.stderr
        return lines
    line = error_line(r, ("scenario", "check", str(path)))
    if line is None:
        assert f"{path}: ok (scenario " in r.stdout
        return []
    return [line]


# -- mutations --------------------------------------------------------------------------------------------------
NAN, INF = math.nan, math.inf
ODD_VALUES = [
    None, True, False, 0, -1, 1, 3, 2**31, 2**63, 2**64, 10**30, -(10**30), 0.5, -0.5, -0.0, 1e-300, 1e9, 1e308,
    -1e308, NAN, INF, -INF, "", "abc", "nan", "1e9", " 3 ", "\u00e9\u00e8", "a\nb", "[bold]x[/]", "x" * 300, [],
    [1, 2], [None], {}, {"x": 1}, {"name": "full"}, "O2", "poisson", "timeout", "dry_room", "mild", "HfO2",
]  # fmt: skip
ODD_KEYS = [
    "",
    "x",
    "horizon_h",
    "name",
    "ald",
    "reactors",
    "rate_per_h",
    "limits",
    "__class__",
    "1",
    7,
    None,
]


def _paths(node: Any, prefix: tuple[Any, ...] = (), seen: set[int] | None = None) -> list[tuple[Any, ...]]:
    """Every node's path; a node in two places (an alias, or a cycle) is entered once."""
    seen = set() if seen is None else seen
    out = [prefix]
    if isinstance(node, dict | list) and id(node) not in seen:
        seen.add(id(node))
        for k, v in node.items() if isinstance(node, dict) else enumerate(node):
            out += _paths(v, (*prefix, k), seen)
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _numeric_variants(v: Any) -> list[Any]:
    """Odd numbers near a number: its negative, a billion times it, a billionth, a half more, as text."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return []
    out: list[Any] = [-v, v * 10**9, v + 0.5, str(v), v * 1e-9]
    if isinstance(v, float):
        out.append(int(v) if math.isfinite(v) else 0)
    return out


def _plausible_variants(v: Any) -> list[Any]:
    """Numbers a user might well write instead (same type, scaled): most of them still valid."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return []
    if isinstance(v, int):
        return [max(0, v - 1), v + 1, v * 2, v * 10, 0, 1]
    return [v * 0.5, v * 2, v * 10, v * 0.01, 0.0, round(v) + 0.25]


@st.composite
def tree_mutation(draw: st.DrawFn, doc: Any) -> Any:
    """One mutation of a parsed YAML document: replace, tweak, delete, rename, re-nest or alias a node."""
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(_paths(doc)))
    node = _get(doc, path)
    ops = ["replace", "wrap"]
    if path:
        ops += ["delete", "move", "share"]
        if isinstance(path[-1], str):
            ops.append("rename")
    if _numeric_variants(node):
        ops += ["tweak", "tweak"]
    if _plausible_variants(node):
        ops += ["scale", "scale", "scale"]
    op = draw(st.sampled_from(ops))
    if op == "replace":
        value = draw(st.sampled_from(ODD_VALUES))
    elif op == "tweak":
        value = draw(st.sampled_from(_numeric_variants(node)))
    elif op == "scale":
        value = draw(st.sampled_from(_plausible_variants(node)))
    elif op == "wrap":
        value = draw(st.sampled_from([[node], {"value": node}, {"name": node}]))
    elif op == "share":  # the same object in two places: written as a YAML anchor and alias (or a cycle)
        value = _get(doc, draw(st.sampled_from(_paths(doc))))
    else:
        value = None
    if not path:
        return value if op in ("replace", "wrap") else doc
    parent, last = _get(doc, path[:-1]), path[-1]
    if op in ("replace", "tweak", "scale", "wrap", "share"):
        parent[last] = value
    elif op == "delete":
        del parent[last]
    elif op == "rename":
        new = draw(st.sampled_from([last + "_", last.upper(), last[:-1], *ODD_KEYS]))
        parent[new] = parent.pop(last)
    elif op == "move":  # the node one level up, or into a sibling section
        del parent[last]
        if len(path) >= 2:
            grand = _get(doc, path[:-2])
            if isinstance(grand, dict):
                grand[last if isinstance(last, str) else "moved"] = node
        elif isinstance(doc, dict):
            sections = [k for k, v in doc.items() if isinstance(v, dict)]
            if sections:
                doc[draw(st.sampled_from(sections))][last] = node
    return doc


@st.composite
def byte_mutation(draw: st.DrawFn, text: bytes) -> bytes:
    """One mutation of a file's bytes: not UTF-8, truncated, a stray tab or NUL, a duplicate key, a second
    document, a line deleted or re-indented, CRLF line ends, a byte-order mark, nothing at all."""
    pos = draw(st.integers(0, len(text)))
    lines = text.split(b"\n")
    line = draw(st.integers(0, max(0, len(lines) - 1)))
    op = draw(st.sampled_from(["bad_utf8", "byte", "truncate", "tab", "nul", "dup", "doc", "dedent", "indent",
                               "delete_line", "crlf", "bom", "empty", "comment_only", "latin1"]))  # fmt: skip
    if op == "bad_utf8":
        return (
            text[:pos] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\x80abc"])) + text[pos:]
        )
    if op == "byte":
        return text[:pos] + bytes([draw(st.integers(0, 255))]) + text[pos + 1 :]
    if op == "truncate":
        return text[:pos]
    if op == "tab":
        return text[:pos] + b"\t" + text[pos:]
    if op == "nul":
        return text[:pos] + b"\x00" + text[pos:]
    if op == "dup":
        top = [ln for ln in lines if ln and not ln.startswith((b" ", b"-", b"#"))]
        return text + (draw(st.sampled_from(top)) + b"\n" if top else b"a: 1\na: 2\n")
    if op == "doc":
        return text + b"---\nname: second\n"
    if op == "dedent":
        lines[line] = lines[line].lstrip()
    elif op == "indent":
        lines[line] = b"   " + lines[line]
    elif op == "delete_line":
        del lines[line]
    elif op == "crlf":
        return text.replace(b"\n", b"\r\n")
    elif op == "bom":
        return b"\xef\xbb\xbf" + text
    elif op == "empty":
        return b""
    elif op == "comment_only":
        return b"# nothing here\n\n"
    elif op == "latin1":
        return text.replace(b"description: ", "description: Qualit\u00e4t ".encode("latin-1"))
    return b"\n".join(lines)


def dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


@st.composite
def mutated_file(draw: st.DrawFn, bases: list[dict[str, Any]]) -> tuple[bytes, Any]:
    """A mutated document (1-3 tree mutations, then a byte mutation one time in four): its bytes and, when its
    bytes are plain YAML of the tree, the tree."""
    doc: Any = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(tree_mutation(doc))
    text = dump(doc)
    if draw(st.integers(0, 3)) == 0:
        return draw(byte_mutation(text)), None
    return text, doc


# -- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the base scenario (base.yaml, for studies) and a run-history database holding one run of
    it and one study of two scenarios (for `twin compare`)."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / "base.yaml").write_bytes(dump(SCENARIO))
    (d / "study.yaml").write_bytes(dump(STUDY | {"uncertainty": None, "limits": None}))
    db = d / "prepared.duckdb"
    r = invoke("run", str(d / "base.yaml"), "-n", "2", "--db", str(db))
    assert r.exit_code == 0, r.stderr
    r = invoke("study", str(d / "study.yaml"), "--executor", "serial", "--db", str(db))
    assert r.exit_code == 0, r.stderr
    return d


def test_the_bases_are_valid_and_run(work: Path) -> None:
    """The fuzzer mutates valid files: each base checks ok and runs (else every example would only test one
    error)."""
    for i, doc in enumerate((SCENARIO, PLAN_SCENARIO)):
        p = work / f"valid{i}.yaml"
        p.write_bytes(dump(doc))
        assert check_lines(invoke("scenario", "check", str(p)), p) == []
        assert error_line(invoke("run", str(p), "--db", str(work / "valid.duckdb")), ("run",)) is None
    for i, doc in enumerate((STUDY, FACTORIAL_STUDY)):
        p = work / f"valid-study{i}.yaml"
        p.write_bytes(dump(doc))
        r = invoke("study", str(p), "--list")
        assert error_line(r, ("study",)) is None and "scenarios" in r.stdout


# -- 1. scenario files ------------------------------------------------------------------------------------------
def _with(doc: dict[str, Any], section: str, **values: Any) -> tuple[bytes, dict[str, Any]]:
    doc = copy.deepcopy(doc)
    doc[section] = doc[section] | values
    return dump(doc), doc


@FUZZ
@given(mutated_file([SCENARIO, PLAN_SCENARIO]))
# found by this fuzzer: a gamma cv whose square underflows (ZeroDivisionError in plant/random.py)
@example(_with(SCENARIO, "ald", time_cv=1e-300))
@example(_with(SCENARIO, "ald", time_cv=1e-160))
@example((dump(SCENARIO) + b"horizon_h: 5\n", None))
def test_mutated_scenario_files_check_and_run_with_one_line_errors(
    work: Path, case: tuple[bytes, Any]
) -> None:
    """`scenario check` and `run` agree: a file that checks ok runs (exit 0), a file that does not is refused by
    `run` with the first line `scenario check` printed."""
    text, doc = case
    path = work / "mutated.yaml"
    path.write_bytes(text)
    problems = check_lines(invoke("scenario", "check", str(path)), path)
    event("scenario check: " + ("ok" if not problems else "error"))
    if isinstance(doc, dict) and doc.get("limits") != LIMITS and not problems:
        return  # a mutation of the limits themselves may allow a long run: checked, not run
    r = invoke("run", str(path), "--db", str(work / "fuzz.duckdb"))
    line = error_line(r, ("run", str(path)))
    if not problems:
        assert line is None, f"scenario check said ok but run failed: {line}"
    else:
        assert line is not None, f"scenario check found {problems[0]!r} but run succeeded"
        first = problems[0].removeprefix("error: ")
        assert line.removeprefix("error: ").startswith(first), (line, problems)


# -- 2. study files ---------------------------------------------------------------------------------------------
@FUZZ
@given(mutated_file([STUDY, FACTORIAL_STUDY]))
# found by this fuzzer: a factor level set whose field path is a number (AttributeError in twin/study.py)
@example(_with(FACTORIAL_STUDY, "factors", buffer=[{"label": "humid", "set": {7: 60}}]))
def test_mutated_study_files_list_with_one_line_errors(work: Path, case: tuple[bytes, Any]) -> None:
    text, _ = case
    path = work / "mutated-study.yaml"
    path.write_bytes(text)
    r = invoke("study", str(path), "--list")
    line = error_line(r, ("study", str(path), "--list"))
    event("study --list: " + ("ok" if line is None else "error"))
    if line is None:
        assert "(baseline)" in r.stdout


# -- 3. command lines -------------------------------------------------------------------------------------------
NUMBERS = ["nan", "NaN", "inf", "-inf", "+inf", "1e999", "-1", "0", "-0", "0.5", "2", "3", "1e-300", "1e15",
           "99999999999999999999", "abc", "", " 2", "0x10", "1_0", "\u0663"]  # fmt: skip
INTS = ["-1", "0", "1", "2", "3", "1000", "1000000000", "99999999999999999999", "1.5", "abc", ""]
# plain values, drawn about as often as the odd ones, so that many commands go on to do their work
SANE = ["1", "2", "3", "0.5", "0.9", "4"]
HOURS = ["2", "3", "4", "5", "6"]


def _options(draw: st.DrawFn, choices: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for name in draw(st.lists(st.sampled_from(sorted(choices)), max_size=min(3, len(choices)), unique=True)):
        values = choices[name]
        out += [name] if not values else [name, draw(st.sampled_from(values))]
    return out


@st.composite
def command_line(draw: st.DrawFn, work: Path) -> list[str]:
    """A command line for scenario check, run (a few simulated hours at most), study --list or compare on the
    prepared database, with options drawn from odd values (NaN, infinities, huge, negative, not numbers)."""
    files = [str(work / "base.yaml"), str(work / "missing.yaml"), str(work), str(work / "bad-utf8.yaml"),
             str(work / "empty.yaml"), str(work / "study.yaml"), str(work / "prepared.duckdb")]  # fmt: skip
    db = ["--db", str(work / "prepared.duckdb")]
    kind = draw(st.sampled_from(["check", "run", "study", "compare"]))
    if kind == "check":
        return ["scenario", "check", *draw(st.lists(st.sampled_from(files[:1] * 6 + files), max_size=3))]
    if kind == "run":
        hours = ["--hours", draw(st.sampled_from(NUMBERS + HOURS * 5))]
        opts = _options(draw, {"--warmup": NUMBERS + ["0", "0.5"] * 5, "-n": INTS + SANE[:3] * 3,
                               "--seed": INTS + ["-5", "9223372036854775808"] + SANE[:3],
                               "--precision": NUMBERS + ["0.5", "0.9"] * 3, "--max-replications": INTS + SANE[:3] * 2,
                               "--kpi": ["good_kg_per_h", "x"], "--bogus": []})  # fmt: skip
        return ["run", draw(st.sampled_from(files[:1] * 4 + files[1:2] + files[3:5])), *hours, *opts,
                "--db", str(work / "runs.duckdb")]  # fmt: skip
    if kind == "study":
        opts = _options(draw, {"--uncertainty": INTS + ["201", "200", "2", "5"]})
        return ["study", draw(st.sampled_from([files[5]] * 4 + [files[0], files[1]])), "--list", *opts]
    good = ["1", "2", "3", "study:1", "fuzzstudy", files[5]]
    items = draw(st.lists(st.sampled_from(good * 3 + ["study:99", files[1], "-1", "abc", "run:1", "99"]),
                          min_size=1, max_size=3))  # fmt: skip
    opts = _options(draw, {"--objective": ["throughput", "yield", "power", "cycle-life", "cost", "speed"],
                           "--baseline": ["a", "b", "zzz"], "--min-yield": NUMBERS + ["0.5", "0"] * 3,
                           "--constraint": ["final_yield>=0.5", "wait_p95_h<=1e999", "x>=1", "bad"],
                           "--kpi": ["good_kg_per_h", "nope"], "--format": ["table", "json", "xml"],
                           "--price": ["electricity_eur_per_kwh=nan", "electricity_eur_per_kwh=0.3",
                                       "nope=1", "electricity_eur_per_kwh"],
                           "--select-best": [], "--delta": NUMBERS + SANE * 2, "--alpha": NUMBERS + ["0.1"] * 5,
                           "--procedure": ["kn", "rinott", "x"], "--n0": INTS[:6], "--max-reps": INTS[:5]})  # fmt: skip
    if "--select-best" in opts and "--max-reps" not in opts:
        opts += ["--max-reps", "3"]  # select-best simulates more replications: at most 3 per scenario
    return ["compare", *items, *opts, *db]


@FUZZ
@given(st.data())
def test_mutated_command_lines_end_in_success_or_one_line(work: Path, data: st.DataObject) -> None:
    (work / "bad-utf8.yaml").write_bytes(b"name: caf\xe9\n")
    (work / "empty.yaml").write_bytes(b"")
    args = data.draw(command_line(work))
    r = invoke(*args)
    event(f"{args[0]}: exit {r.exit_code}" + (" (usage)" if _usage_error(r.exception) else ""))
    if args[:2] == ["scenario", "check"] and r.exit_code == 1 and isinstance(r.exception, SystemExit | None):
        lines = r.stderr.splitlines()
        assert lines and all(": " in ln and "Traceback" not in ln for ln in lines), r.stderr
        return
    error_line(r, tuple(args))
