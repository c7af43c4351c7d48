"""The notebook lint catches each rule on a small bad notebook, and passes a good one."""

from __future__ import annotations

import copy

import pytest
from nbformat.v4 import new_code_cell, new_output

from labkit.authoring.lint import lint

from .notebooks import INTRO, good_lab


def codes(nb, lab_name="99_tiny") -> list[str]:
    return [p.code for p in lint(nb, lab_name)]


def test_good_lab_passes():
    assert codes(good_lab()) == []


@pytest.mark.parametrize("remove, code", [
    ("# Lab 99: A tiny lab", "LAB001"),
    ("1. Add two numbers.\n2. Check the result.", "LAB002"),
    ("**Exam guide sections:** 3.1, 3.2", "LAB003"),
    ("**Estimated time:** 5 minutes", "LAB004"),
    ("## Cost on real Google Cloud\nNothing.", "LAB005"),
])
def test_missing_metadata_sections(remove, code):
    nb = good_lab()
    assert remove in nb.cells[0].source
    nb.cells[0].source = INTRO.replace(remove, "")
    assert code in codes(nb)


def test_start_cell_must_come_first():
    nb = good_lab()
    nb.cells[1], nb.cells[2] = nb.cells[2], nb.cells[1]
    assert "LAB006" in codes(nb)


def test_clean_up_section_required_with_code():
    nb = good_lab()
    assert "LAB007" in codes(nb.__class__({**nb, "cells": nb.cells[:4]}))
    nb.cells[-1].source = ""
    assert "LAB007" in codes(nb)


def test_committed_outputs():
    nb = good_lab()
    nb.cells[2].outputs = [new_output("stream", name="stdout", text="3\n")]
    nb.cells[2].execution_count = 1
    assert codes(nb) == ["LAB008"]


@pytest.mark.parametrize("source", [
    "import os\nif os.environ.get('LAB_BACKEND') == 'gcp':\n    pass",
    "if IS_TESTING:\n    n = 10",
    "if env.backend == 'local':\n    pass",
    "from labkit.env import start",
    "import os\nsmall = os.environ.get('CI')",
])
def test_backend_branching(source):
    nb = good_lab()
    nb.cells.insert(3, new_code_cell(source))
    assert "LAB009" in codes(nb)


def test_backend_named_in_a_comment_is_fine():
    nb = good_lab()
    nb.cells.insert(3, new_code_cell("x = 1  # with LAB_BACKEND=gcp this runs on Vertex AI"))
    assert codes(nb) == []


@pytest.mark.parametrize("source", [
    "import pandas as pd\ndf = pd.read_csv('../01_bigquery_ml/data.csv')",
    "model_dir = 'labs/05_serving/model'",
])
def test_reading_another_lab(source):
    nb = good_lab()
    nb.cells.insert(3, new_code_cell(source))
    assert "LAB010" in codes(nb)


def test_own_lab_folder_is_fine():
    nb = good_lab()
    nb.cells.insert(3, new_code_cell("path = 'labs/99_tiny/data.csv'"))
    assert codes(nb) == []


@pytest.mark.parametrize("work", [
    "total = 1 + 2  # TODO 3: no third objective",
    "print(1 + 2)  # TODO 1: not an assignment",
    "# TODO 1: add\ntotal = 1 + 2",
])
def test_bad_todo_markers(work):
    assert "LAB011" in codes(good_lab(work=work))


def test_self_check_required():
    nb = good_lab(check="print(total)")
    assert "LAB012" in codes(nb)


def test_exercise_must_stay_valid_python():
    work = "for i in range(2):\n# TODO 1: add\n    total = i\n# END TODO"
    compile(work, "<solution>", "exec")  # the solution itself is fine
    assert "LAB013" in codes(good_lab(work=work))


def test_lint_leaves_the_notebook_unchanged():
    nb = good_lab()
    before = copy.deepcopy(nb)
    lint(nb, "99_tiny")
    assert nb == before


BUSY_LOOP = """job.submit()
while job.state.name not in ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED"):
    print(job.state.name)"""
NO_DEADLINE = """while not schedule.list_jobs():
    time.sleep(2)"""
NO_PAUSE = """deadline = time.monotonic() + 600
while not job.done() and time.monotonic() < deadline:
    pass"""


@pytest.mark.parametrize("source, missing", [
    (BUSY_LOOP, ["a pause", "a deadline"]),
    (NO_DEADLINE, ["a deadline"]),
    (NO_PAUSE, ["a pause"]),
])
def test_polling_loops_need_a_pause_and_a_deadline(source, missing):
    nb = good_lab()
    nb.cells.insert(3, new_code_cell(source))
    problems = [p for p in lint(nb, "99_tiny") if p.code == "LAB014"]
    assert len(problems) == 1 and problems[0].cell == 3
    for words in missing:
        assert words in problems[0].message
    assert "job.wait()" in problems[0].message


@pytest.mark.parametrize("source", [
    "job.submit()\njob.wait()",
    """import time
deadline = time.monotonic() + 30 * 60
while job.state.name not in DONE:
    if time.monotonic() > deadline:
        raise TimeoutError(job.state.name)
    time.sleep(30)""",
    "for attempt in range(20):\n    if schedule.list_jobs():\n        break\n    time.sleep(15)",
    "n = 0\nwhile n < 3:\n    n += 1",  # a loop that polls nothing
])
def test_waiting_the_sdk_way_or_with_sleep_and_deadline_passes(source):
    nb = good_lab()
    nb.cells.insert(3, new_code_cell(source))
    assert codes(nb) == []


@pytest.mark.parametrize("source, tool", [
    ("!gcloud storage ls gs://my-bucket", "gcloud"),
    ("x = 1\n!gsutil cp model.joblib gs://b/m/", "gsutil"),
    ("! bq query --use_legacy_sql=false 'SELECT 1'", "bq"),
    ("%%bash\ngcloud ai endpoints list --region=us-central1", "gcloud"),
    ("%system bq ls", "bq"),
])
def test_shell_calls_to_google_cloud_tools(source, tool):
    nb = good_lab()
    nb.cells.insert(3, new_code_cell(source))
    problems = [p for p in lint(nb, "99_tiny") if p.code == "LAB015"]
    assert [p.cell for p in problems] == [3]
    assert f"!{tool}" in problems[0].message and "storage.Client" in problems[0].message


def test_tools_named_in_python_or_other_shell_commands_are_fine():
    nb = good_lab()
    nb.cells.insert(3, new_code_cell('!pip list | grep bigquery\nhint = "gcloud auth login"'))
    assert codes(nb) == []
