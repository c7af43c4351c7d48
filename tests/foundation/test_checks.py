"""Self-check helpers pass quietly-with-a-line on success and explain failures."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit import checks


def test_passing_checks_print_what_passed(capsys):
    checks.check(True, "the model was trained")
    checks.expect_between(0.9, 0.8, 1.0, "accuracy")
    checks.expect_less(1, 2, "loss")
    checks.expect_equal("a", "a", "label")
    checks.expect_columns(pd.DataFrame({"a": [1], "b": [2]}), ["a"])
    checks.expect_type(1.5, (int, float), "score")
    out = capsys.readouterr().out
    assert out.count("Passed:") == 6 and "accuracy = 0.9" in out


@pytest.mark.parametrize("call, words", [
    (lambda: checks.check(False, "the model was trained", hint="call fit()"),
     ["the model was trained", "Hint: call fit()"]),
    (lambda: checks.expect_between(0.5, 0.8, 1.0, "accuracy"), ["accuracy is 0.5", "0.8 and 1"]),
    (lambda: checks.expect_between("x", 0, 1, "accuracy"), ["should be a number"]),
    (lambda: checks.expect_less(3, 2, "loss"), ["loss: 3 should be below 2"]),
    (lambda: checks.expect_equal("b", "a", "label"), ["'b', expected 'a'"]),
    (lambda: checks.expect_columns(pd.DataFrame({"a": [1]}), ["a", "z"]), ["['z']"]),
    (lambda: checks.expect_type("1", float, "score"), ["should be a float, got str"]),
])
def test_failing_checks_explain(call, words):
    with pytest.raises(checks.CheckFailed) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize("call", [
    lambda: checks.expect_between(..., 0, 1, "accuracy"),
    lambda: checks.expect_less(..., 1, "loss"),
    lambda: checks.expect_less(1, ..., "loss"),
    lambda: checks.expect_equal(..., 1, "answer"),
    lambda: checks.expect_columns(..., ["a"]),
])
def test_an_untouched_todo_is_named(call):
    with pytest.raises(checks.CheckFailed, match="TODO"):
        call()


def test_check_failed_is_an_assertion_error():
    assert issubclass(checks.CheckFailed, AssertionError)
