"""`twin report`: valid, self-contained HTML with one figure per section (or a note for a single run), numbers that
match the store, no reference a browser would fetch from the network; the Pareto front on a constructed case."""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import run_twin

from twin import plots, report
from twin.errors import TwinError
from twin.runner import run_scenario
from twin.scenario import scenario_from_dict
from twin.store import Store, open_store

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
URL_ATTRS = {"src", "href", "xlink:href", "action", "poster", "data", "srcset", "formaction", "background"}


class Checker(HTMLParser):
    """Balanced tags, ids, section contents and every URL-like attribute of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.urls: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.sections: dict[str, dict[str, int]] = {}
        self.notes: dict[str, str] = {}
        self._section: str | None = None
        self._in_note = False
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k == "id" and v:
                self.ids.append(v)
            if k in URL_ATTRS or k.endswith(":href"):
                self.urls.append((k, v or ""))
            if k == "style" and v and "url(" in v:
                self.urls.append((k, v))
        if self._section is not None:
            counts = self.sections[self._section]
            counts[tag] = counts.get(tag, 0) + 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag == "section":
            self._section = dict(attrs).get("id") or "?"
            self.sections[self._section] = {}
        if tag == "p" and dict(attrs).get("class") == "note":
            self._in_note = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)  # <path .../> in SVG: opens and closes

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "section":
            self._section = None
        if tag == "p":
            self._in_note = False

    def handle_data(self, data: str) -> None:
        if self._in_note and self._section:
            self.notes[self._section] = self.notes.get(self._section, "") + data


def check_page(text: str) -> Checker:
    c = Checker()
    c.feed(text)
    c.close()
    assert c.doctype, "no <!DOCTYPE html>"
    assert not c.errors, c.errors[:5]
    assert not c.stack, f"unclosed tags: {c.stack}"
    assert len(c.ids) == len(set(c.ids)), "duplicate ids"
    # offline: nothing a browser would fetch
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(c.tags)
    for attr, value in c.urls:
        assert value.startswith("#") or value.startswith("data:"), (attr, value[:80])
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, flags=re.I)
    assert "@import" not in text and "@font-face" not in text
    assert [sid for sid in c.sections] == [sid for sid, _ in report.SECTIONS]
    return c


def _scenario(name: str, setpoint_c: float, soak_h: float, hours: float = 120.0) -> object:
    return scenario_from_dict(
        {
            "name": name,
            "horizon_h": hours,
            "warmup_h": 24,
            "seed": 3,
            "arrivals": {"rate_per_h": 0.45, "recipe": "r"},
            "furnaces": {"policy": {"name": "timeout", "max_wait_h": 4}},
            "recipes": {"r": {"setpoint_c": setpoint_c, "soak_h": soak_h}},
        }
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain run (run 1) and a study of four recipes (runs 2-5), 120 h x 2 replications each."""
    path = tmp_path_factory.mktemp("report") / "t.duckdb"
    with open_store(path) as store:
        run_scenario(_scenario("single", 400, 3), replications=2, store=store)
        sid = store.create_study("recipes", json.dumps({"baseline": "s400-3h"}), "x")
        for sp, soak in ((350, 3), (400, 3), (400, 1), (450, 2)):
            run_scenario(_scenario(f"s{sp}-{soak}h", sp, soak), replications=2, store=store, study_id=sid)
        store.finish_study(sid)
    return path


def test_study_report_structure_and_numbers(db: Path, tmp_path: Path) -> None:
    out, t = report.write_report("recipes", tmp_path / "r.html", db)
    text = out.read_text()
    c = check_page(text)
    assert t.kind == "study" and len(t.runs) == 4 and t.focus.name == "s400-3h"
    for sid, _ in report.SECTIONS:
        if sid == "kpis":
            assert c.sections[sid].get("table", 0) >= 2
            assert c.sections[sid].get("tr", 0) >= 1 + 4  # header + one row per scenario
        elif sid == "robustness":  # tests/test_robustness.py: the section of a study with parameter samples
            assert "Needs an uncertainty study" in c.notes[sid]
        else:
            assert c.sections[sid].get("svg", 0) == 1, (sid, c.notes.get(sid))
            assert sid not in c.notes
    # the KPI table shows the stored numbers: final yield of every scenario as "xx.x %"
    with Store(db, read_only=True) as store:
        rows = store.query(
            "SELECT r.scenario_name, s.mean FROM kpi_summary s JOIN runs r USING (run_id) "
            "WHERE r.study_id IS NOT NULL AND s.kpi = 'final_yield'"
        ).to_pylist()
        n_batches = (
            store.query(
                "SELECT count(*) AS n FROM batches b JOIN runs r USING (run_id) "
                "WHERE r.scenario_name = 's400-3h' AND b.replication = 0"
            )
            .column("n")[0]
            .as_py()
        )
    kpi_html = text[text.index('<section id="kpis">') : text.index('<section id="gantt">')]
    for name, mean in ((r["scenario_name"], r["mean"]) for r in rows):
        row = re.search(rf"<tr><th>{re.escape(name)}.*?</tr>", kpi_html).group(0)
        assert f"{100 * mean:.1f} %" in row
    # the Gantt chart draws every batch of the focus run's replication 0
    assert f"{n_batches} batches of s400-3h" in text
    assert n_batches > 5
    # the Pareto caption names the front: 450 °C/2 h has the best yield in this design
    pareto_html = text[text.index('<section id="pareto">') : text.index('<section id="warmup">')]
    assert "s450-2h" in pareto_html.split("here:")[1]


def test_single_run_report_notes(db: Path, tmp_path: Path) -> None:
    out, t = report.write_report("run:1", tmp_path / "run.html", db)
    c = check_page(out.read_text())
    assert t.kind == "run" and len(t.runs) == 1
    for sid in ("recipe-effects", "pareto"):
        assert c.sections[sid].get("svg", 0) == 0
        assert "Needs a study" in c.notes[sid]
    for sid in ("gantt", "queue-wip", "wait", "warmup"):
        assert c.sections[sid].get("svg", 0) == 1, (sid, c.notes.get(sid))


def test_cli_report_and_errors(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    ok = run_twin("report", "study:1", "-o", str(out), "--db", str(db))
    assert ok.returncode == 0, ok.stderr
    assert out.is_file() and "4 scenario(s)" in ok.stdout
    for target, expected in (("99", "unknown run id 99"), ("nosuch", "no study or run 'nosuch'")):
        bad = run_twin("report", target, "-o", str(tmp_path / "x.html"), "--db", str(db))
        assert bad.returncode == 2
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (tmp_path / "x.html").exists()


def test_pareto_front_constructed_case() -> None:
    # (throughput, yield): C dominates B; A and D trade off; E ties D on yield but is worse; F is NaN
    x = [10.0, 8.0, 9.0, 5.0, 4.0, np.nan]
    y = [0.80, 0.85, 0.90, 0.99, 0.99, 0.99]
    assert plots.pareto_front(x, y).tolist() == [True, False, True, True, False, False]
    # duplicates are both on the front (neither is strictly better)
    assert plots.pareto_front([1.0, 1.0], [0.5, 0.5]).tolist() == [True, True]


def test_month_run_report_is_fast(tmp_path: Path) -> None:
    """A month (720 h) run with 2 replications: the report builds in a few seconds."""
    path = tmp_path / "m.duckdb"
    with open_store(path) as store:
        run_scenario(_scenario("month", 400, 3, hours=720.0), replications=2, store=store)
    t0 = time.perf_counter()
    out, _ = report.write_report("1", tmp_path / "m.html", path)
    elapsed = time.perf_counter() - t0
    check_page(out.read_text())
    assert elapsed < 10.0, elapsed
    assert out.stat().st_size < 2_000_000


def test_targets(db: Path, tmp_path: Path) -> None:
    """A study YAML file resolves to the newest study of its name; run ids in both spellings."""
    study_file = tmp_path / "recipes.yaml"
    study_file.write_text("name: recipes\nbase: baseline.yaml\ndesign: strategies\nstrategies: [{name: a}]\n")
    with Store(db, read_only=True) as store:
        t = report.resolve(store, str(study_file))
        assert t.kind == "study" and [r.name for r in t.runs] == ["s350-3h", "s400-3h", "s400-1h", "s450-2h"]
        assert report.resolve(store, "run:3").runs[0].name == "s400-3h"
        assert report.resolve(store, "3").kind == "run"
        other = tmp_path / "other.yaml"
        other.write_text("name: other\n")
        with pytest.raises(TwinError, match="study 'other'.*has no runs"):
            report.resolve(store, str(other))
