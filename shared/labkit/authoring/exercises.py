"""Exercise notebooks, generated from marked lines of the solution.

Two markers, both valid Python, so the exercise stays lintable and runnable:

    model_type = "logistic_reg"  # TODO 2: choose the model type
        -> model_type = ...  # TODO 2: choose the model type

    # TODO 3: evaluate the model
    <solution lines>
    # END TODO
        -> # TODO 3: evaluate the model
           ...

TODO numbers refer to the lab's objectives.
"""

from __future__ import annotations

import copy
import io
import re
import tokenize

BLOCK_START = re.compile(r"^(?P<indent>\s*)#\s*TODO\s+(?P<n>\d+)\s*:.*$")
BLOCK_END = re.compile(r"^\s*#\s*END TODO\s*$")
ANY_TODO = re.compile(r"#\s*TODO\s+(?P<n>\d+)\s*:")


class MarkerError(ValueError):
    pass


def exercise_source(source: str) -> str:
    out: list[str] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if start := BLOCK_START.match(line):
            end = next((j for j in range(i + 1, len(lines)) if BLOCK_END.match(lines[j])), None)
            if end is None:
                raise MarkerError(f"`{line.strip()}` has no matching `# END TODO`")
            out += [line, f"{start['indent']}..."]
            i = end + 1
            continue
        if BLOCK_END.match(line):
            raise MarkerError("`# END TODO` without a `# TODO N:` line above it")
        if ANY_TODO.search(line):
            out.append(_blank_assignment(line))
        else:
            out.append(line)
        i += 1
    return "\n".join(out)


def _blank_assignment(line: str) -> str:
    """`x = value  # TODO n: ...` -> `x = ...  # TODO n: ...`"""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip("\n") + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    depth, assign_at, comment_at = 0, None, None
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.OP and tok.string == "=" and depth == 0 and assign_at is None:
            assign_at = tok.start[1]
        elif tok.type == tokenize.COMMENT:
            comment_at = tok.start[1]
    if assign_at is None or comment_at is None:
        raise MarkerError(f"an inline TODO must end a one-line assignment: `{line.strip()}`")
    return f"{line[:assign_at].rstrip()} = ...  {line[comment_at:]}"


def todo_numbers(source: str) -> list[int]:
    return [int(m["n"]) for m in ANY_TODO.finditer(source)]


def make_exercise(solution):
    """The exercise twin of a solution notebook (a new notebook; the input is untouched)."""
    nb = copy.deepcopy(solution)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = exercise_source(cell.source)
    first = nb.cells[0]
    if first.cell_type == "markdown":
        first.source += ("\n\n> **Exercise version.** Complete each `# TODO N` (N matches the "
                         "objectives above); the self-check cells tell you when you are done. "
                         "The solution is `solution.ipynb` in the same folder.")
    nb.metadata.setdefault("labkit", {})["generated_from"] = "solution.ipynb"
    return nb
