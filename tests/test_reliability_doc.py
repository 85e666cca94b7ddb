"""docs/reliability.md stays true: every test its table names exists, and every message it quotes is what those
tests assert (each word of the quoted message is found in a string of the named tests' files; `…` stands for a
varying part, as `{...}` in an f-string or `.*` in a regular expression does)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import REPO

PAGE = REPO / "docs" / "reliability.md"
MIN_QUOTE = 16  # backticked texts this long in the second column are messages to check
MIN_LITERAL = 6  # pieces of test strings shorter than this prove nothing


def rows() -> list[tuple[int, list[str]]]:
    out = []
    for n, line in enumerate(PAGE.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("| ") and not line.startswith(("| case ", "|---")):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            out.append((n, cells))
    return out


def named_tests(cell: str) -> list[tuple[Path, str]]:
    found = re.findall(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`", cell)
    return [(REPO / f, name) for f, name in found]


@cache
def functions_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def _normalise(text: str) -> str:
    """A test's string as plain text, its varying parts as `…` (regex wildcards, format fields)."""
    text = re.sub(r"\\d\+|\.\*|\.\+|\{\w*\}", "…", text)
    text = re.sub(r"\\(.)", r"\1", text)
    return text.strip("^$")


@cache
def fragments_of(path: Path) -> list[str]:
    """The literal pieces of every string of a test file, split where a part varies."""
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if id(node) in inner:  # a piece of an f-string: the whole string is taken below
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        out.extend(p for p in _normalise(text).split("…") if len(p.strip()) >= MIN_LITERAL)
    return out


def _cover(piece: str, fragment: str, covered: list[bool], offset: int) -> None:
    """Mark what `fragment` (from a test) accounts for in `piece` (of the page): all of it when the page
    quotes part of the test's string, the test's string where the page quotes more, or an overlap at either end."""
    if piece in fragment:
        covered[offset : offset + len(piece)] = [True] * len(piece)
        return
    for m in re.finditer(re.escape(fragment), piece):
        covered[offset + m.start() : offset + m.end()] = [True] * (m.end() - m.start())
    for k in range(min(len(piece), len(fragment)) - 1, MIN_LITERAL - 1, -1):
        if piece.endswith(fragment[:k]):
            covered[offset + len(piece) - k : offset + len(piece)] = [True] * k
            break
    for k in range(min(len(piece), len(fragment)) - 1, MIN_LITERAL - 1, -1):
        if piece.startswith(fragment[-k:]):
            covered[offset : offset + k] = [True] * k
            break


def uncovered_words(message: str, files: list[Path]) -> list[str]:
    """The words of `message` (`…` for varying parts) that no string of `files` accounts for."""
    covered = [False] * len(message)
    offset = 0
    for piece in message.split("…"):
        for f in files:
            for fragment in fragments_of(f):
                _cover(piece, fragment, covered, offset)
        offset += len(piece) + 1
    words = re.finditer(r"[A-Za-z0-9_]+", message)
    return [w.group() for w in words if not all(covered[w.start() : w.end()])]


def test_the_page_has_rows_and_the_sections_for_every_point():
    text = PAGE.read_text(encoding="utf-8")
    for section in ("## Interrupted and failed runs", "## Files the commands write", "## Damaged databases",
                    "## OPC UA", "## Documentation", "## Inputs and limits", "## SQL and the database lock"):  # fmt: skip
        assert section in text
    assert len(rows()) >= 30


@pytest.mark.parametrize("n,cells", rows(), ids=[f"line{n}" for n, _ in rows()])
def test_row_names_existing_tests_and_their_messages(n, cells):
    assert len(cells) == 3, (
        f"docs/reliability.md:{n}: a row has three cells: case | what the user gets | test"
    )
    case, gets, tests = cells
    if case.startswith("(placeholder"):
        return
    named = named_tests(tests)
    assert named, f"docs/reliability.md:{n}: no test named (`tests/test_x.py::test_name`)"
    for path, name in named:
        assert path.exists(), f"docs/reliability.md:{n}: {path.relative_to(REPO)} does not exist"
        assert name in functions_of(path), f"docs/reliability.md:{n}: {path.name} has no {name}"
    files = sorted({p for p, _ in named})
    for quote in re.findall(r"`([^`]+)`", gets):
        if len(quote) >= MIN_QUOTE:
            missing = uncovered_words(quote, files)
            assert not missing, (
                f"docs/reliability.md:{n}: {missing} of `{quote}` is asserted by none of {files}"
            )


def test_the_check_catches_a_message_no_test_asserts(tmp_path):
    test_file = tmp_path / "test_x.py"
    test_file.write_text(
        'def test_a():\n    assert err == f"error: cannot write {p}: File too large"\n'
        '    assert re.match(r"^error: database .*h\\.duckdb is damaged \\(Corrupt database file: computed", line)\n'
    )
    assert uncovered_words("error: cannot write …: File too large", [test_file]) == []
    assert (
        uncovered_words("error: database …h.duckdb is damaged (Corrupt database file: …)", [test_file]) == []
    )
    assert uncovered_words("error: cannot write report.html: File too large", [test_file]) == [
        "report",
        "html",
    ]
    missing = uncovered_words("error: cannot write …: Disk quota exceeded", [test_file])
    assert missing == ["Disk", "quota", "exceeded"]
