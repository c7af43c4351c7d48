"""The AutoML search is neutral: labkit.automl imports neither labkit.vertex nor
labkit.bigquery, and labkit.bigquery does not import labkit.vertex (BigQuery ML's AUTOML_*
trainer uses labkit.automl directly)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LABKIT = Path(__file__).resolve().parents[2] / "shared" / "labkit"


def _imports(package: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((LABKIT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found += [(str(path.relative_to(LABKIT)), name) for name in names]
    return found


@pytest.mark.parametrize(("package", "forbidden"), [
    ("automl", ("labkit.vertex", "labkit.bigquery")),
    ("bigquery", ("labkit.vertex",)),
])
def test_no_import_across_rooms(package, forbidden):
    crossing = [(where, name) for where, name in _imports(package)
                if name.startswith(forbidden)]
    assert crossing == []
