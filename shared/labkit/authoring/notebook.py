"""Reading and writing lab notebooks, and where they live."""

from __future__ import annotations

from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[3]
LABS = REPO / "labs"
SOLUTION = "solution.ipynb"
EXERCISE = "exercise.ipynb"
START_CALL = "labkit.start("
SELF_CHECK_PREFIX = "# Self-check"
PRACTICE_PREFIX = "# Exam practice"  # labkit.quiz cells: graded only when asked


def lab_dirs(labs: Path = LABS) -> list[Path]:
    return sorted(p.parent for p in labs.glob(f"*/{SOLUTION}"))


def find_lab(key: str, labs: Path = LABS) -> Path:
    """`00`, `00_ml_foundations` or a path -> the lab folder."""
    path = Path(key)
    if path.is_dir() and (path / SOLUTION).exists():
        return path
    matches = [d for d in lab_dirs(labs) if d.name == key or d.name.startswith(f"{key}_")]
    if len(matches) != 1:
        names = ", ".join(d.name for d in lab_dirs(labs))
        raise SystemExit(f"No single lab matches {key!r}; labs: {names}")
    return matches[0]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    path.write_text(dumps(nb))


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def is_self_check(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SELF_CHECK_PREFIX)


def is_practice(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(PRACTICE_PREFIX)


def self_check_label(cell) -> str:
    first = cell.source.lstrip().splitlines()[0]
    return first.lstrip("# ").removeprefix("Self-check").lstrip(" :") or "self-check"
