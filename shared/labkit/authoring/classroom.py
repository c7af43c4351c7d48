"""Grading a class: `make grade NB=folder/` grades every submission in a folder (or a glob).

Each submission is copied into a private folder and graded there by its own
`python -m labkit.authoring grade` process, with its own workspace (so its own services
process), its own kernel and a time limit; a few run at once, as many as the machine has
cores. The originals are read once, before anything runs, so a submission that deletes
files around it can only touch its own copy's neighbourhood, and every result comes back
to this process before the next one starts in that slot. A submission that hangs is
killed with its whole process group, and its services are stopped.

The report lands in one folder: `class-report.csv` (a row per learner, a column per
self-check), `class-report.json`, and `class-report.html`, a page with no outside links:
pass rate per self-check, per TODO and per learner, time taken, and the first failing check
with its hint. Not a sandbox: submissions run as the instructor's user.
"""

from __future__ import annotations

import csv
import fcntl
import glob
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from labkit.authoring.exercises import todo_numbers
from labkit.authoring.notebook import is_self_check, self_check_label

DEFAULT_TIMEOUT_S = 1800  # a lab's solution runs in under 5 minutes on 2 cores

GRADED, TIMED_OUT, NOT_EXECUTED = "graded", "timed out", "not executed"


@dataclass
class Check:
    label: str
    todos: list[int]
    passed: bool
    message: str

    @property
    def hint(self) -> str:
        for line in self.message.splitlines():
            if line.startswith("Hint:"):
                return line.removeprefix("Hint:").strip()
        return ""


@dataclass
class Result:
    learner: str
    notebook: str
    status: str  # GRADED, TIMED_OUT or NOT_EXECUTED
    seconds: float
    checks: list[Check] = field(default_factory=list)
    problem: str = ""  # why it could not be graded

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.passed), None)


def submissions(target: str) -> list[Path]:
    """A folder's notebooks (Jupyter's checkpoints left out), or what a glob matches."""
    path = Path(target)
    found = (path.glob("*.ipynb") if path.is_dir()
             else (Path(p) for p in glob.glob(target, recursive=True)))
    return sorted(p for p in found if p.suffix == ".ipynb" and p.is_file()
                  and ".ipynb_checkpoints" not in p.parts)


def is_class(target: str) -> bool:
    return Path(target).is_dir() or glob.has_magic(target)


def grade_class(target: str, out: Path, jobs: int | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S, quiz: bool = False) -> int:
    """Grades every submission; 0 unless some notebook could not be executed at all."""
    paths = submissions(target)
    if not paths:
        print(f"No notebooks in {target}")
        return 2
    originals = {path: path.read_bytes() for path in paths}  # before any of them runs
    learners = _learner_names(paths)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    print(f"Grading {len(paths)} notebook(s), {jobs} at a time, "
          f"{timeout_s:.0f} s each at most")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(
            lambda path: _grade_one(learners[path], path, originals[path], timeout_s, quiz),
            paths))
    out.mkdir(parents=True, exist_ok=True)
    write_reports(results, out)
    for r in results:
        score = f"{r.passed}/{len(r.checks)}" if r.status == GRADED else r.status
        print(f"  {r.learner}: {score} in {r.seconds:.0f} s"
              + (f" ({r.problem.splitlines()[0][:200]})" if r.problem else ""))
    print(f"Class report: {out / 'class-report.html'} (and .csv, .json)")
    return 1 if any(r.status != GRADED for r in results) else 0


def _learner_names(paths: list[Path]) -> dict[Path, str]:
    """The file's stem; the parent folder too where two stems collide."""
    stems = [p.stem for p in paths]
    return {p: (p.stem if stems.count(p.stem) == 1 else f"{p.parent.name}/{p.stem}")
            for p in paths}


def _grade_one(learner: str, path: Path, content: bytes, timeout_s: float,
               quiz: bool) -> Result:
    private = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    work, workspace = private / "work", private / "workspace"
    work.mkdir()
    copy = work / "submission.ipynb"
    copy.write_bytes(content)
    report = private / "report.json"  # outside the folder the notebook runs in
    env = {**os.environ, "LAB_WORKSPACE": str(workspace), "LAB_BACKEND": "local"}
    started = time.monotonic()
    command = [sys.executable, "-m", "labkit.authoring", "grade", str(copy), "--json", str(report),
               *(["--quiz"] if quiz else [])]
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        timed_out = True
    seconds = time.monotonic() - started
    _stop_services(workspace)
    try:
        data = json.loads(report.read_text()) if report.exists() else None
    except ValueError:
        data = None
    shutil.rmtree(private, ignore_errors=True)
    if timed_out:
        return Result(learner, str(path), TIMED_OUT, seconds,
                      problem=f"still running after {timeout_s:.0f} s: stopped")
    if data is None:
        tail = (output or "").strip().splitlines()[-3:]
        return Result(learner, str(path), NOT_EXECUTED, seconds,
                      problem=" / ".join(tail) or f"the grader exited {process.returncode}")
    return Result(learner, str(path), GRADED, seconds, _checks(content, data["checks"]))


def _stop_services(workspace: Path) -> None:
    """Stops the submission's services (detached: not in the killed process group), also
    ones still starting when the grader was stopped: they hold the owner lock before they
    write services.json, so wait for one or the other."""
    from labkit.services import daemon
    from labkit.workspace import Workspace

    deadline = time.monotonic() + 60
    while True:
        try:
            daemon.stop(Workspace(workspace))
        except OSError:
            pass
        if not _services_alive(workspace) or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _services_alive(workspace: Path) -> bool:
    owner = workspace / "services.owner"
    if not owner.exists():
        return False
    with owner.open() as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the grader and the kernel it started
    except ProcessLookupError:
        pass


def _checks(content: bytes, reported: list[dict]) -> list[Check]:
    """The graded checks, each tied to the TODOs in the cells since the previous check."""
    nb = nbformat.reads(content.decode("utf-8", "replace"), as_version=4)
    todos_of: dict[int, list[int]] = {}
    pending: list[int] = []
    for index, cell in enumerate(nb.cells):
        if is_self_check(cell):
            todos_of[index], pending = sorted(set(pending)), []
        elif cell.cell_type == "code":
            pending += todo_numbers(cell.source)
    return [Check(r["check"] or self_check_label(nb.cells[r["cell"]]),
                  todos_of.get(r["cell"], []), r["passed"], r["message"]) for r in reported]


def write_reports(results: list[Result], out: Path) -> None:
    labels = _check_labels(results)
    (out / "class-report.json").write_text(json.dumps(
        [{**asdict(r), "passed": r.passed, "total": len(r.checks)} for r in results], indent=2))
    with (out / "class-report.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["learner", "notebook", "status", "passed", "total", "seconds",
                         "first_failing_check", "hint", *labels])
        for r in results:
            by_label = {c.label: c for c in r.checks}
            first = r.first_failure
            writer.writerow([
                r.learner, r.notebook, r.status, r.passed, len(r.checks), f"{r.seconds:.0f}",
                first.label if first else r.problem, first.hint if first else "",
                *[("PASS" if by_label[k].passed else "FAIL") if k in by_label else ""
                  for k in labels]])
    (out / "class-report.html").write_text(render_html(results, labels))


def _check_labels(results: list[Result]) -> list[str]:
    labels: list[str] = []
    for r in results:
        labels += [c.label for c in r.checks if c.label not in labels]
    return labels


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / total:.0f}%)" if total else "-"


def render_html(results: list[Result], labels: list[str]) -> str:
    e = html.escape  # learner names, messages and labels come from submissions
    graded = [r for r in results if r.status == GRADED]
    rows = []
    for r in results:
        first = r.first_failure
        rows.append(
            f"<tr class='{'ok' if r.status == GRADED and not first else 'bad'}'>"
            f"<td>{e(r.learner)}</td><td>{e(r.status)}</td>"
            f"<td>{_rate(r.passed, len(r.checks)) if r.status == GRADED else '-'}</td>"
            f"<td>{r.seconds:.0f} s</td>"
            f"<td>{e(first.label) if first else e(r.problem)}</td>"
            f"<td>{e(first.hint) if first else ''}</td></tr>")
    check_rows = []
    for label in labels:
        outcomes = [c.passed for r in graded for c in r.checks if c.label == label]
        check_rows.append(f"<tr><td>{e(label)}</td><td>{_rate(sum(outcomes), len(outcomes))}"
                          "</td></tr>")
    todo_rows = []
    for todo in sorted({t for r in graded for c in r.checks for t in c.todos}):
        done = [all(c.passed for c in r.checks if todo in c.todos) for r in graded
                if any(todo in c.todos for c in r.checks)]
        todo_rows.append(f"<tr><td>TODO {todo}</td><td>{_rate(sum(done), len(done))}</td></tr>")
    not_run = len(results) - len(graded)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Class report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
tr.bad td:first-child {{ border-left: 4px solid #c62828; }}
tr.ok td:first-child {{ border-left: 4px solid #2e7d32; }}
</style></head><body>
<h1>Class report</h1>
<p>{len(results)} submission(s); {len(graded)} graded, {not_run} could not be executed.</p>
<h2>Learners</h2>
<table><tr><th>Learner</th><th>Status</th><th>Self-checks passed</th><th>Time</th>
<th>First failing check</th><th>Hint</th></tr>
{''.join(rows)}</table>
<h2>Pass rate per self-check</h2>
<table><tr><th>Self-check</th><th>Learners passing</th></tr>{''.join(check_rows)}</table>
<h2>Pass rate per TODO</h2>
<p>A TODO counts as done when every self-check after it, up to the next one, passes.</p>
<table><tr><th>TODO</th><th>Learners passing</th></tr>{''.join(todo_rows)}</table>
</body></html>
"""
