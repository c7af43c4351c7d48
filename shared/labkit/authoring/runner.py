"""Executing notebooks headless: `make run LAB=..` (keep the executed copy) and
`make grade NB=..` (report each self-check of a learner's notebook)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from labkit.authoring.notebook import (
    REPO,
    is_practice,
    is_self_check,
    read,
    self_check_label,
    write,
)

CELL_TIMEOUT_S = 900


def execute(nb, cwd: Path, allow_errors: bool) -> None:
    """Runs every cell in the current environment's kernel, on the local backend."""
    os.environ["LAB_BACKEND"] = "local"  # grading and CI never touch a real project
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}})
    client.execute()


def run(lab: Path) -> int:
    """Executes a lab's solution; the executed notebook goes to build/NN_slug.ipynb."""
    nb = read(lab / "solution.ipynb")
    out = REPO / "build" / f"{lab.name}.ipynb"
    out.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    try:
        execute(nb, lab, allow_errors=False)
        status, message = 0, "passed"
    except CellExecutionError as exc:
        status, message = 1, f"failed:\n{str(exc)[-2000:]}"
    write(nb, out)
    print(f"{lab.name}: {message} in {time.monotonic() - started:.0f} s; executed copy: "
          f"{out.relative_to(REPO)}")
    return status


@dataclass
class CheckResult:
    cell: int
    check: str
    passed: bool
    message: str


def _error_of(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output['ename']}: {output['evalue']}"
    return None


def grade(path: Path, json_out: Path | None = None, quiz: bool = False) -> int:
    """Runs a learner's notebook and reports every self-check; non-zero if any failed.
    With `quiz`, the exam practice cells count too (a wrong or missing answer fails)."""
    from labkit.quiz import GRADED_ENV

    nb = read(path)
    if quiz:
        os.environ[GRADED_ENV] = "1"  # the kernel inherits it: labkit.quiz.check raises
    execute(nb, path.parent, allow_errors=True)

    def counted(cell) -> bool:
        return is_self_check(cell) or (quiz and is_practice(cell))

    results = []
    for index, cell in enumerate(nb.cells):
        if counted(cell):
            error = _error_of(cell)
            results.append(CheckResult(index, self_check_label(cell), error is None,
                                       error or "passed"))
    broken = [i for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and not counted(c) and _error_of(c)]
    passed = sum(r.passed for r in results)
    print(f"Grading {path}")
    for r in results:
        print(f"  [{'PASS' if r.passed else 'FAIL'}] cell {r.cell}: {r.check}")
        if not r.passed:
            print(f"         {r.message.splitlines()[0][:300]}")
    print(f"{passed}/{len(results)} self-checks passed"
          + (f"; {len(broken)} other cell(s) raised errors: {broken}" if broken else ""))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"notebook": str(path), "passed": passed,
                                        "total": len(results), "cells_with_errors": broken,
                                        "checks": [asdict(r) for r in results]}, indent=2))
        print(f"JSON report: {json_out}")
    return 0 if results and passed == len(results) else 1
