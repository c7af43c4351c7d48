"""`make grade`: a learner's notebook is executed and each self-check reported."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat

from .notebooks import good_lab


def grade(tmp_path, nb):
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "labkit.authoring", "grade", str(path),
                             "--json", str(report)], capture_output=True, text=True, timeout=300)
    return result, json.loads(report.read_text())


def test_completed_notebook_passes(tmp_path):
    result, report = grade(tmp_path, good_lab())
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["passed"] == report["total"] == 1
    assert "[PASS]" in result.stdout


def test_untouched_exercise_fails_with_the_reason(tmp_path):
    from labkit.authoring.exercises import make_exercise

    result, report = grade(tmp_path, make_exercise(good_lab()))
    assert result.returncode == 1
    assert report["passed"] == 0 and report["total"] == 1
    check = report["checks"][0]
    assert check["passed"] is False and "TODO" in check["message"]
    assert "[FAIL]" in result.stdout
