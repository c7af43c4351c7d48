"""Small notebooks built in code, for testing the authoring tools on good and bad labs."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

INTRO = """# Lab 99: A tiny lab

Teaches one thing.

## What you will learn
1. Add two numbers.
2. Check the result.

**Exam guide sections:** 3.1, 3.2
**Estimated time:** 5 minutes

## Cost on real Google Cloud
Nothing."""

START = """import labkit

env = labkit.start()  # local by default; LAB_BACKEND=gcp uses your project
PROJECT_ID, REGION, BUCKET = env.project, env.region, env.bucket"""


def good_lab(work: str = "total = 1 + 2  # TODO 1: add the numbers",
             check: str = "# Self-check: the sum\nfrom labkit import checks\n"
                          "checks.expect_equal(total, 3, 'total')") -> dict:
    """A lab that satisfies every lint rule; parts can be swapped to break one rule."""
    return new_notebook(cells=[
        new_markdown_cell(INTRO),
        new_code_cell(START),
        new_code_cell(work),
        new_code_cell(check),
        new_markdown_cell("## Clean up"),
        new_code_cell("del total"),
    ])
