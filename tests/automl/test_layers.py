"""The AutoML search is neutral: labkit.automl imports neither labkit.vertex nor
labkit.bigquery, and labkit.bigquery does not import labkit.vertex (BigQuery ML's AUTOML_*
trainer uses labkit.automl directly). Each side turns the search's errors into its own."""

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


def test_each_side_maps_the_search_errors():
    from labkit.automl import InvalidInput, NoModelFound
    from labkit.bigquery.ml.errors import MLError
    from labkit.bigquery.ml.trainers.automl import AutoMLTrainer
    from labkit.vertex.automl.pipelines import vertex_error

    assert vertex_error(InvalidInput("bad")).rpc_status == "INVALID_ARGUMENT"
    assert vertex_error(NoModelFound("none")).as_operation_error() == {"code": 13,
                                                                        "message": "none"}
    with pytest.raises(MLError, match="not valid for prediction type regression"):
        AutoMLTrainer("automl_regressor").fit(None, [1.0], None, None, None,
                                              {"optimization_objective": "MAXIMIZE_AU_ROC"})
