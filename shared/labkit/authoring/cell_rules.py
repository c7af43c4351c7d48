"""Lint rules that read a lab cell's code: loops that poll a job, and shell commands that
would reach real Google Cloud.

Polling: a Vertex AI pipeline or training job runs 10 to 60 minutes on Google Cloud. A loop
that asks for its state with no pause sends requests as fast as the network allows for all
that time (and the job's quota of reads runs out); one with no deadline hangs the notebook
when the job never reaches the state it waits for. The SDK's own waiting calls (`job.wait()`,
`job.run(sync=True)`, `operation.result(timeout=...)`) do both for you.

Shell: `!gcloud`, `!gsutil` and `!bq` call Google's servers with the gcloud credentials,
whatever labkit.start() set up; on the local backend they would read or change a real project.
"""

from __future__ import annotations

import ast
import re

from IPython.core.inputtransformer2 import TransformerManager

# What a loop reads when it polls something that changes on the server.
POLL_ATTRIBUTES = {"state", "status", "done", "running", "refresh", "reload", "has_ended",
                   "task_details", "list_jobs", "get_state"}
CLOCKS = {"time", "monotonic", "perf_counter", "now", "utcnow"}
DEADLINE_NAME = re.compile(r"deadline|timeout|until|max_wait|budget|tries|attempt", re.I)
SHELL = re.compile(r"^\s*(?:!|%%?(?:system|sx|bash|sh|script)\b)\s*"
                   r"(?:sudo\s+)?(?P<tool>gcloud|gsutil|bq)\b", re.M)
CELL_MAGIC_SHELL = re.compile(r"\A\s*%%(?:bash|sh|script|system)\b")
SHELL_LINE_TOOL = re.compile(r"^\s*(?:sudo\s+)?(?P<tool>gcloud|gsutil|bq)\b", re.M)


def _names(node: ast.AST) -> set[str]:
    """Every attribute and plain name read anywhere under node."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif isinstance(sub, ast.Name):
            found.add(sub.id)
    return found


def _calls(node: ast.AST) -> set[str]:
    called = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            called.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return called


def _bounded(loop: ast.While) -> bool:
    """The loop stops at a deadline: it reads a clock, or a name that says it counts down."""
    names = _names(loop)
    return bool(_calls(loop) & CLOCKS) or any(DEADLINE_NAME.search(n) for n in names)


def polling_problems(source: str) -> list[str]:
    """One sentence per `while` loop that polls without a pause or without a deadline."""
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return []  # the exercise-validity rule reports broken code
    problems = []
    for loop in ast.walk(tree):
        if not isinstance(loop, ast.While):
            continue
        polled = sorted(_names(loop) & POLL_ATTRIBUTES)
        if not polled:
            continue
        missing = []
        if "sleep" not in _calls(loop):
            missing.append("a pause between polls (time.sleep)")
        if not _bounded(loop):
            missing.append("a deadline (time.monotonic() against a timeout)")
        if missing:
            problems.append(
                f"line {loop.lineno}: the loop polls `.{polled[0]}` without "
                f"{' and '.join(missing)}; call the SDK's blocking wait (job.wait(), "
                "run(sync=True), result(timeout=...)) or sleep between polls and stop at a "
                "deadline: a real job runs for many minutes")
    return problems


def shell_tools(source: str) -> list[str]:
    """gcloud / gsutil / bq run as shell commands (`!`, `%system`, `%%bash` cells)."""
    tools = [m["tool"] for m in SHELL.finditer(source)]
    if CELL_MAGIC_SHELL.match(source):
        tools += [m["tool"] for m in SHELL_LINE_TOOL.finditer(source.split("\n", 1)[-1])]
    return sorted(set(tools))
