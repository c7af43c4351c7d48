"""python -m labkit.authoring check|lint|exercises|catalog|environment|run LAB|grade NB|FOLDER"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labkit.authoring import catalog, classroom, environment, exercises, lint, runner
from labkit.authoring.notebook import (
    EXERCISE,
    LABS,
    REPO,
    SOLUTION,
    dumps,
    find_lab,
    lab_dirs,
    read,
)


def generated_files() -> dict[Path, str]:
    """Every file derived from the solutions and pyproject, with its expected text."""
    files = {lab / EXERCISE: dumps(exercises.make_exercise(read(lab / SOLUTION)))
             for lab in lab_dirs()}
    files[LABS / "README.md"] = catalog.render()
    readme = REPO / "README.md"
    files[readme] = catalog.render_into_readme(readme.read_text())
    files[REPO / "environment.yml"] = environment.render()
    return files


def stale_files() -> list[Path]:
    return [p for p, text in generated_files().items()
            if not p.exists() or p.read_text() != text]


def regenerate(kind: str) -> None:
    for path, text in generated_files().items():
        wanted = {"exercises": path.name == EXERCISE, "catalog": path.name == "README.md",
                  "environment": path.name == "environment.yml"}[kind]
        if wanted and (not path.exists() or path.read_text() != text):
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")


def check() -> int:
    status = 0
    for lab in lab_dirs():
        for problem in lint.lint_file(lab / SOLUTION):
            print(f"{lab.name}/{SOLUTION}: {problem}")
            status = 1
    for path in stale_files():
        print(f"{path.relative_to(REPO)} is out of date: run `make exercises catalog environment`")
        status = 1
    print("notebook lint and generated files: " + ("FAILED" if status else "ok"))
    return status


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.authoring")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="lint every lab and check generated files are in sync")
    for kind in ("exercises", "catalog", "environment"):
        sub.add_parser(kind, help=f"regenerate {kind}")
    run_p = sub.add_parser("run", help="execute one lab headless into build/")
    run_p.add_argument("lab", help="00, 00_ml_foundations or a lab folder")
    grade_p = sub.add_parser("grade", help="execute a notebook and report its self-checks; "
                                           "a folder or a glob grades a class")
    grade_p.add_argument("notebook", help="a notebook, a folder of them, or a glob")
    grade_p.add_argument("--json", type=Path, help="one notebook: also write the report here")
    grade_p.add_argument("--out", type=Path, default=REPO / "build" / "class-report",
                         help="a class: the folder for the CSV, JSON and HTML reports")
    grade_p.add_argument("--jobs", type=int, help="a class: notebooks at once (default: cores)")
    grade_p.add_argument("--timeout", type=float, default=classroom.DEFAULT_TIMEOUT_S,
                         help="a class: seconds one notebook may take")
    grade_p.add_argument("--quiz", action="store_true",
                         help="count the exam practice answers as checks too")
    args = parser.parse_args()
    if args.command == "check":
        sys.exit(check())
    if args.command in ("exercises", "catalog", "environment"):
        regenerate(args.command)
    elif args.command == "run":
        sys.exit(runner.run(find_lab(args.lab)))
    elif args.command == "grade":
        if classroom.is_class(args.notebook):
            sys.exit(classroom.grade_class(args.notebook, args.out, args.jobs, args.timeout,
                                           args.quiz))
        notebook = Path(args.notebook)
        if not notebook.exists():
            sys.exit(f"No notebook at {notebook}")
        sys.exit(runner.grade(notebook, args.json, args.quiz))


if __name__ == "__main__":
    main()
