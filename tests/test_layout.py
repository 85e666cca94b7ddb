"""The layout rules: arrows point one way (twin -> plant, twin -> adapters, adapters -> plant), and every module
starts with a docstring saying what lives there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plant", "twin", "adapters")
FORBIDDEN = {"plant": ("twin", "adapters"), "adapters": ("twin",), "twin": ()}


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    bad = {str(p.relative_to(ROOT)): sorted(imported(p) & set(FORBIDDEN[package])) for p in modules(package)}
    assert {k: v for k, v in bad.items() if v} == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_has_a_docstring(package):
    missing = [
        str(p.relative_to(ROOT))
        for p in modules(package)
        if p.name != "__init__.py" and ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == []
