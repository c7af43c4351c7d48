"""The exam guide coverage map in labs/README.md: every subsection of the guide, the labs
that claim it (their `**Exam guide sections:**` line) and the practice questions on it
(labkit/questions). Generated with the catalog (`make catalog`)."""

from __future__ import annotations

from pathlib import Path

from labkit import quiz
from labkit.authoring import metadata
from labkit.authoring.notebook import LABS, SOLUTION, lab_dirs, read

# The guide of October 2024, whose numbering the June 2026 version keeps (../shared/DESIGN.md;
# https://cloud.google.com/learn/certification/guides/machine-learning-engineer).
EXAM_GUIDE = {
    "1.1": "Developing ML models by using BigQuery ML",
    "1.2": "Building AI solutions by using ML APIs or foundation models",
    "1.3": "Training models by using AutoML",
    "2.1": "Exploring and preprocessing organization-wide data",
    "2.2": "Model prototyping using Jupyter notebooks",
    "2.3": "Tracking and running ML experiments",
    "3.1": "Building models",
    "3.2": "Training models",
    "3.3": "Choosing appropriate hardware for training",
    "4.1": "Serving models",
    "4.2": "Scaling online model serving",
    "5.1": "Developing end-to-end ML pipelines",
    "5.2": "Automating model retraining",
    "5.3": "Tracking and auditing metadata",
    "6.1": "Identifying risks to AI solutions",
    "6.2": "Monitoring, testing, and troubleshooting AI solutions",
}


# A subsection no lab exercises yet, and what will: the coverage test fails on any other gap,
# and on this one once a lab claims it (then delete the entry).
NO_LAB_YET: dict[str, str] = {}


def coverage(labs: Path = LABS) -> dict[str, dict[str, list[str]]]:
    """section -> {"labs": [lab folder names], "questions": ["07 Q3", ...]}."""
    table = {section: {"labs": [], "questions": []} for section in EXAM_GUIDE}
    for lab in lab_dirs(labs):
        for section in metadata.parse(read(lab / SOLUTION)).exam_sections:
            if section in table and lab.name not in table[section]["labs"]:
                table[section]["labs"].append(lab.name)
        try:
            questions = quiz.questions(lab.name)
        except ValueError:
            continue  # a lab without questions yet: the quiz test names it
        for q in questions:
            for section in q.sections:
                if section in table:
                    table[section]["questions"].append(f"{quiz.lab_key(lab.name)} Q{q.number}")
    return table


def uncovered(labs: Path = LABS) -> list[str]:
    return [section for section, row in coverage(labs).items() if not row["labs"]]


def render(labs: Path = LABS) -> str:
    rows = []
    for section, row in coverage(labs).items():
        links = ", ".join(f"[{name[:2]}]({name}/{SOLUTION})" for name in row["labs"])
        missing = f"**none yet** ({NO_LAB_YET[section]})" if section in NO_LAB_YET else "**none**"
        rows.append(f"| {section} {EXAM_GUIDE[section]} | {links or missing} | "
                    f"{', '.join(row['questions']) or '-'} |")
    return ("\n## Exam guide coverage\n\n"
            "Generated from each lab's exam guide sections and its practice questions "
            "(`labkit.quiz`).\n\n"
            "| Exam guide subsection | Labs | Practice questions |\n|---|---|---|\n"
            + "\n".join(rows) + "\n")
