"""Exam-style practice questions (labkit.quiz): well-formed, tied to their lab, and checked
with an explanation after each answer; graded only when the instructor asks."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlparse

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import quiz
from labkit.authoring import metadata
from labkit.authoring.notebook import SOLUTION, lab_dirs, read
from labkit.checks import CheckFailed

LABS = lab_dirs()
OFFICIAL = {"cloud.google.com", "developers.google.com", "www.tensorflow.org", "keras.io",
            "www.kubeflow.org"}


def correct_answers(lab: str) -> dict:
    return {q.number: sorted(q.answer) for q in quiz.questions(lab)}


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_every_lab_has_six_to_ten_well_formed_questions_on_its_own_sections(lab):
    nb = read(lab / SOLUTION)
    claimed = set(metadata.parse(nb).exam_sections)
    headings = {line.strip() for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("#")}
    questions = quiz.questions(lab.name)
    assert 6 <= len(questions) <= 10
    for q in questions:
        where = f"{lab.name} question {q.number}"
        assert set(q.sections) <= claimed, f"{where}: sections {q.sections} vs {claimed}"
        assert len(q.options) >= 4 and q.answer <= set(q.options), where
        assert 1 <= q.choose <= 3, where
        assert len(q.explanation) > 80 and len(q.scenario) > 40, where
        assert q.see in headings, f"{where}: the lab has no heading {q.see!r}"
        url = urlparse(q.source)
        assert url.scheme == "https" and url.netloc in OFFICIAL, f"{where}: {q.source}"
    assert any(q.choose > 1 for q in questions), f"{lab.name}: no multiple-select question"


def test_right_answers_are_confirmed_and_explained(capsys):
    answers = correct_answers("00")
    assert quiz.check("00", answers) == len(answers)
    out = capsys.readouterr().out
    assert out.count(": right.") == len(answers) and "Source: https://" in out


def test_a_wrong_answer_gets_the_right_one_and_why_and_unanswered_ones_stay_hidden(capsys):
    first = quiz.questions("01")[0]
    wrong = next(letter for letter in first.options if letter not in first.answer)
    assert quiz.check("01", {1: wrong}) == 0
    out = capsys.readouterr().out
    assert f"not quite: the answer is {', '.join(sorted(first.answer))}" in out
    assert first.explanation in out
    second = quiz.questions("01")[1]
    assert second.explanation not in out and "not answered yet: [2, 3" in out


def test_multiple_select_needs_every_letter_and_accepts_any_case_or_order():
    multi = next(q for q in quiz.questions("00") if q.choose == 2)
    letters = sorted(multi.answer)
    assert quiz.check("00", {multi.number: [x.lower() for x in reversed(letters)]}) == 1
    assert quiz.check("00", {multi.number: letters[0]}) == 0


@pytest.mark.parametrize("answers, message", [
    ({99: "A"}, "no question 99"),
    ({1: "Z"}, "no option 'Z'"),
    ("B", "should be a dict"),
])
def test_malformed_answers_say_what_is_wrong(answers, message):
    with pytest.raises(CheckFailed, match=message):
        quiz.check("00", answers)


def test_an_unknown_lab_is_a_clear_error():
    with pytest.raises(ValueError, match="No practice questions for lab '42'"):
        quiz.questions("42")


def _grade(tmp_path, answers: dict, *flags):
    nb = new_notebook(cells=[new_code_cell(
        "# Exam practice: your answers\nfrom labkit import quiz\n"
        f"answers = {answers!r}\nquiz.check('00', answers)")])
    path = tmp_path / "practice.ipynb"
    nbformat.write(nb, path)
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "labkit.authoring", "grade", str(path),
                             "--json", str(report), *flags],
                            capture_output=True, text=True, timeout=300)
    return result, json.loads(report.read_text())


def test_practice_counts_in_a_grade_only_when_the_instructor_asks(tmp_path):
    result, report = _grade(tmp_path, {1: "A"})  # wrong, and the rest unanswered
    assert report["total"] == 0 and report["cells_with_errors"] == []
    result, report = _grade(tmp_path, {1: "A"}, "--quiz")
    assert result.returncode == 1 and report["total"] == 1 and report["passed"] == 0
    assert "wrong [1]" in report["checks"][0]["message"]
    result, report = _grade(tmp_path, correct_answers("00"), "--quiz")
    assert result.returncode == 0 and report["passed"] == report["total"] == 1


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_solution_and_exercise_show_the_questions_and_check_the_answers(lab):
    from labkit.authoring.notebook import EXERCISE, is_practice

    key = quiz.lab_key(lab.name)
    for name in (SOLUTION, EXERCISE):
        cells = read(lab / name).cells
        assert any(f'quiz.show("{key}")' in c.source for c in cells), f"{lab.name}/{name}"
        practice = [c for c in cells if is_practice(c)]
        assert len(practice) == 1 and f'quiz.check("{key}", answers)' in practice[0].source
