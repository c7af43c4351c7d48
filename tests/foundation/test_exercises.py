"""Exercise generation: markers become valid `...` TODOs; the rest is untouched."""

from __future__ import annotations

import textwrap

import pytest

from labkit.authoring.exercises import MarkerError, exercise_source, make_exercise, todo_numbers

from .notebooks import good_lab


@pytest.mark.parametrize("solution, exercise", [
    ('model_type = "logistic_reg"  # TODO 2: choose the model type',
     "model_type = ...  # TODO 2: choose the model type"),
    ("    a, b = split(x, ratio=0.8)  # TODO 1: split",
     "    a, b = ...  # TODO 1: split"),
    ("opts: dict = {'k': 1}  # TODO 1: options", "opts: dict = ...  # TODO 1: options"),
    ("x = 1\n# TODO 3: train\nmodel.fit(x)\nmodel.save()\n# END TODO\nprint(x)",
     "x = 1\n# TODO 3: train\n...\nprint(x)"),
    ("def f():\n    # TODO 1: body\n    return 2\n    # END TODO",
     "def f():\n    # TODO 1: body\n    ..."),
    ("x = 1\n# a TODO without a number stays", "x = 1\n# a TODO without a number stays"),
])
def test_markers(solution, exercise):
    assert exercise_source(solution) == exercise
    compile(textwrap.dedent(exercise), "<exercise>", "exec")


@pytest.mark.parametrize("bad", [
    "# TODO 1: never closed\nx = 1",
    "x = 1\n# END TODO",
    "fit(x)  # TODO 1: a call is not an assignment",
])
def test_bad_markers_raise(bad):
    with pytest.raises(MarkerError):
        exercise_source(bad)


def test_todo_numbers():
    assert todo_numbers("a = 1  # TODO 2: x\n# TODO 1: y\n...\n# END TODO") == [2, 1]


def test_make_exercise_keeps_solution_and_marks_intro():
    solution = good_lab()
    exercise = make_exercise(solution)
    assert solution.cells[2].source == "total = 1 + 2  # TODO 1: add the numbers"
    assert exercise.cells[2].source == "total = ...  # TODO 1: add the numbers"
    assert "Exercise version" in exercise.cells[0].source
    assert [c.source for c in exercise.cells[3:]] == [c.source for c in solution.cells[3:]]
