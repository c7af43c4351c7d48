"""`make grade NB=folder/`: a class is graded, each submission on its own, into one report.

One class of five: a finished lab, an untouched exercise, one that hangs, one that kills its
kernel, and one that deletes the other submissions as it runs. The report must grade the
first two exactly as `make grade` grades them one by one, and the other three must not
disturb them.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit.authoring.exercises import make_exercise

from .notebooks import good_lab

TIMEOUT_S = 75  # the hanging one is stopped then; the others take 10-40 s on a loaded machine


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    out = tmp_path_factory.mktemp("report")
    lab = good_lab()
    vandal = make_exercise(lab)
    vandal.cells.insert(2, new_code_cell(
        "import pathlib\n"
        f"for path in pathlib.Path({str(folder)!r}).glob('*.ipynb'):\n"
        "    path.unlink()"))
    notebooks = {
        "ada": lab,
        "bob": make_exercise(lab),
        "cyd": new_notebook(cells=[new_code_cell("import time\ntime.sleep(3600)")]),
        "dee": new_notebook(cells=[new_code_cell("import os\nos._exit(1)")]),
        "eve": vandal,
    }
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / ".ipynb_checkpoints").mkdir()
    nbformat.write(lab, folder / ".ipynb_checkpoints" / "ada-checkpoint.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "labkit.authoring", "grade", str(folder), "--out", str(out),
         "--jobs", "2", "--timeout", str(TIMEOUT_S)],
        capture_output=True, text=True, timeout=600)
    rows = {row["learner"]: row for row in csv.DictReader((out / "class-report.csv").open())}
    return result, rows, json.loads((out / "class-report.json").read_text()), out


def test_every_submission_has_a_row_and_checkpoints_are_skipped(graded):
    _, rows, report, _ = graded
    assert sorted(rows) == ["ada", "bob", "cyd", "dee", "eve"]
    assert len(report) == 5


def test_a_finished_lab_passes_and_an_untouched_exercise_fails_with_its_hint(graded):
    _, rows, _, _ = graded
    ada, bob = rows["ada"], rows["bob"]
    assert (ada["status"], ada["passed"], ada["total"], ada["the sum"]) == (
        "graded", "1", "1", "PASS")
    assert (bob["status"], bob["passed"], bob["total"], bob["the sum"]) == (
        "graded", "0", "1", "FAIL")
    assert bob["first_failing_check"] == "the sum"


def test_a_hanging_submission_is_stopped_at_its_time_limit(graded):
    _, rows, _, _ = graded
    cyd = rows["cyd"]
    assert cyd["status"] == "timed out"
    assert TIMEOUT_S <= float(cyd["seconds"]) < TIMEOUT_S + 30


def test_a_crashed_kernel_is_reported_as_not_executed(graded):
    _, rows, _, _ = graded
    assert rows["dee"]["status"] == "not executed"
    assert rows["dee"]["first_failing_check"]  # the grader's last words


def test_deleting_the_other_submissions_changes_nobody_elses_grade(graded):
    _, rows, _, _ = graded
    assert rows["eve"]["status"] == "graded" and rows["eve"]["passed"] == "0"
    assert rows["ada"]["passed"] == "1"  # graded from the copy read before any ran


def test_exit_code_says_some_notebooks_could_not_be_executed(graded):
    result, _, _, _ = graded
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ada: 1/1" in result.stdout and "cyd: timed out" in result.stdout


def test_the_html_page_has_the_rates_and_escapes_what_learners_wrote(graded):
    _, _, _, out = graded
    page = (out / "class-report.html").read_text()
    assert "<script" not in page and "http" not in page  # self-contained
    assert "TODO 1</td><td>1/3 (33%)" in page  # ada passes; bob and eve do not
    assert "the sum</td><td>1/3 (33%)" in page


def test_what_learners_wrote_is_escaped_in_the_page():
    from labkit.authoring import classroom

    check = classroom.Check("<b>x</b>", [1], False, "failed\nHint: use <script>")
    result = classroom.Result("<img src=x>", "n.ipynb", classroom.GRADED, 1.0, [check])
    page = classroom.render_html([result], ["<b>x</b>"])
    assert "<img" not in page and "<script" not in page and "<b>x" not in page
    assert "&lt;img src=x&gt;" in page and "use &lt;script&gt;" in page


def test_a_folder_without_notebooks_is_an_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "labkit.authoring", "grade", str(tmp_path),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2 and "No notebooks" in result.stdout


def test_no_submission_leaves_its_services_running(graded):
    from pathlib import Path

    proc = Path("/proc")
    if not proc.exists():
        pytest.skip("needs /proc")
    left = []
    for pid in proc.iterdir():
        try:
            command = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = str((pid / "cwd").readlink())
        except (OSError, ValueError):
            continue
        if "labkit.services serve" in command and "labkit-grade-" in cwd:
            left.append((pid.name, cwd))
    assert left == []
