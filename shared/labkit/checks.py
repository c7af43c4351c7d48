"""Self-checks for lab cells.

A failing check raises `CheckFailed` with a message that says what is wrong and where to
look, so the learner sees one clear sentence instead of a bare AssertionError. They pass
in a lab's solution and fail in its untouched exercise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class CheckFailed(AssertionError):
    """A self-check did not pass; its message is written for the learner."""

    def __init__(self, message: str, hint: str | None = None):
        text = f"Self-check failed: {message}"
        if hint:
            text += f"\nHint: {hint}"
        super().__init__(text)


def _is_todo(value: Any) -> bool:
    return value is Ellipsis


def _todo_guard(value: Any, what: str, hint: str | None) -> None:
    if _is_todo(value):
        raise CheckFailed(f"{what} is still `...`: the TODO above has not been done yet.", hint)


def check(condition: bool, message: str, hint: str | None = None) -> None:
    """The general check: `message` says what should be true when it is not."""
    if not condition:
        raise CheckFailed(message, hint)
    print(f"Passed: {message}" if not message.endswith(".") else f"Passed: {message[:-1]}")


def expect_equal(actual: Any, expected: Any, what: str, hint: str | None = None) -> None:
    _todo_guard(actual, what, hint)
    if actual != expected:
        raise CheckFailed(f"{what} is {actual!r}, expected {expected!r}.", hint)
    print(f"Passed: {what} is {expected!r}")


def expect_between(value: Any, low: float, high: float, what: str,
                   hint: str | None = None) -> None:
    """Passes when low <= value <= high (value must be a number)."""
    _todo_guard(value, what, hint)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should be a number, got {value!r}.", hint) from None
    if not low <= number <= high:
        raise CheckFailed(f"{what} is {number:.4g}; expected between {low:g} and {high:g}.", hint)
    print(f"Passed: {what} = {number:.4g} (expected {low:g} to {high:g})")


def expect_less(value: Any, other: Any, what: str, hint: str | None = None) -> None:
    """Passes when value < other."""
    _todo_guard(value, what, hint)
    _todo_guard(other, what, hint)
    if not float(value) < float(other):
        raise CheckFailed(f"{what}: {float(value):.4g} should be below {float(other):.4g}.", hint)
    print(f"Passed: {what} ({float(value):.4g} < {float(other):.4g})")


def expect_columns(frame: Any, columns: Iterable[str], hint: str | None = None) -> None:
    """Passes when the DataFrame (or anything with .columns) has every named column."""
    _todo_guard(frame, "The result", hint)
    have = list(getattr(frame, "columns", []))
    missing = [c for c in columns if c not in have]
    if missing:
        raise CheckFailed(f"the result lacks the column(s) {missing}; it has {have}.", hint)
    print(f"Passed: the result has the columns {list(columns)}")


def expect_type(value: Any, kind: type | tuple[type, ...], what: str,
                hint: str | None = None) -> None:
    _todo_guard(value, what, hint)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CheckFailed(f"{what} should be a {names}, got {type(value).__name__}.", hint)
    print(f"Passed: {what} is a {type(value).__name__}")
