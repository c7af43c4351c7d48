"""Structural lint for lab notebooks: every rule has a code and says how to fix it.

Checks the order the design brief fixes (title, objectives, exam sections, minutes,
cost, start cell, work, self-checks, clean-up) and the rules that keep labs honest:
no committed outputs, no cell that branches on the backend, no reading another lab, no
loop that polls a job without a pause and a deadline, no `!gcloud`/`!gsutil`/`!bq` (the
last two in labkit.authoring.cell_rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from IPython.core.inputtransformer2 import TransformerManager

from labkit.authoring import cell_rules, exercises, metadata
from labkit.authoring.notebook import START_CALL, code_cells, is_self_check

COST_HEADING = re.compile(r"^##\s+Cost", re.M | re.I)
CLEANUP_HEADING = re.compile(r"^##\s+Clean(ing)?[\s-]?up", re.M | re.I)
BACKEND_BRANCH = re.compile(
    r"\bLAB_BACKEND\b|\bIS_TESTING\b|\bIS_CI\b|\benv\.backend\b|\bbackend\s*[=!]="
    r"|\blabkit\.(env|services)\b|environ(\.get)?\s*[\[(]\s*['\"](CI|TESTING)['\"]")
COMMENT = re.compile(r"#.*$", re.M)
OTHER_LAB = re.compile(r"\.\./|\blabs/(?P<lab>\d\d_\w+)")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    cell: int | None = None  # index in the notebook

    def __str__(self) -> str:
        where = f" (cell {self.cell})" if self.cell is not None else ""
        return f"{self.code}{where}: {self.message}"


def lint(nb, lab_name: str | None = None) -> list[Problem]:
    problems: list[Problem] = []
    meta = metadata.parse(nb)
    if not meta.title:
        problems.append(Problem("LAB001", "no title: the first markdown cell starts with "
                                          "`# Lab NN: Title`"))
    if not meta.objectives:
        problems.append(Problem("LAB002", "no objectives: add `## What you will learn` followed by "
                                          "a numbered list"))
    if not meta.exam_sections:
        problems.append(Problem("LAB003", "no exam guide sections: add "
                                          "`**Exam guide sections:** 1.1, 3.2`"))
    if meta.minutes is None:
        problems.append(Problem("LAB004", "no estimate: add `**Estimated time:** 30 minutes`"))
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    if not COST_HEADING.search(markdown):
        problems.append(Problem("LAB005", "no `## Cost on real Google Cloud` section"))

    codes = code_cells(nb)
    if not codes or START_CALL not in codes[0].source:
        problems.append(Problem("LAB006", "the first code cell must be the start cell "
                                          "(`env = labkit.start()`)"))
    problems += _cleanup(nb)
    if not any(is_self_check(c) for c in codes):
        problems.append(Problem("LAB012", "no self-check cell (a code cell starting with "
                                          "`# Self-check:` that calls labkit.checks)"))

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            problems.append(Problem("LAB008", "committed outputs: clear them before committing",
                                    index))
        if m := BACKEND_BRANCH.search(COMMENT.sub("", cell.source)):
            problems.append(Problem("LAB009", f"`{m.group(0)}`: lab cells must not look at the "
                                              "backend; put that knowledge in labkit", index))
        for m in OTHER_LAB.finditer(cell.source):
            if m["lab"] != lab_name:
                problems.append(Problem("LAB010", f"`{m.group(0)}`: a lab creates the data it "
                                                  "needs and never reads another lab's files",
                                        index))
        for sentence in cell_rules.polling_problems(cell.source):
            problems.append(Problem("LAB014", sentence, index))
        for tool in cell_rules.shell_tools(cell.source):
            problems.append(Problem("LAB015", f"`!{tool}` calls real Google Cloud with your gcloud "
                                              "credentials on either backend; use the Python "
                                              "client (bigquery.Client, storage.Client, "
                                              "aiplatform) that labkit.start() points at the "
                                              "backend", index))
        problems += _markers(cell.source, index, len(meta.objectives))
    return problems


def _cleanup(nb) -> list[Problem]:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and CLEANUP_HEADING.search(cell.source):
            if any(c.cell_type == "code" and c.source.strip() for c in nb.cells[index + 1:]):
                return []
            return [Problem("LAB007", "the clean-up section has no code cell after it", index)]
    return [Problem("LAB007", "no `## Clean up` section that deletes what the lab created")]


def _markers(source: str, index: int, objectives: int) -> list[Problem]:
    problems = []
    try:
        exercise = exercises.exercise_source(source)
    except exercises.MarkerError as exc:
        return [Problem("LAB011", str(exc), index)]
    for n in exercises.todo_numbers(source):
        if not 1 <= n <= objectives:
            problems.append(Problem("LAB011", f"TODO {n} matches no objective (the lab has "
                                              f"{objectives})", index))
    if exercise != source:
        try:
            compile(TransformerManager().transform_cell(exercise), "<exercise>", "exec")
        except SyntaxError as exc:
            problems.append(Problem("LAB013", f"the exercise version is not valid Python: {exc}",
                                    index))
    return problems


def lint_file(path: Path) -> list[Problem]:
    from labkit.authoring.notebook import read

    return lint(read(path), path.parent.name)
