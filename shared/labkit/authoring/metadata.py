"""A lab's metadata, read from its first markdown cell (the one the learner reads too,
so the catalog and the notebook can never disagree):

    # Lab 00: Title
    ## What you will learn
    1. objective ...
    **Exam guide sections:** 3.1, 3.2
    **Estimated time:** 45 minutes
    **Wall time on Google Cloud:** about 3 hours (jobs that run on Google's machines)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TITLE = re.compile(r"^#\s+(?P<title>.+)$", re.M)
OBJECTIVES_HEADING = re.compile(r"^##\s+What you will learn\s*$", re.M | re.I)
OBJECTIVE = re.compile(r"^\s*(?P<n>\d+)\.\s+(?P<text>.+)$")
SECTIONS = re.compile(r"\*\*Exam guide sections?:\*\*\s*(?P<sections>[^\n]+)", re.I)
MINUTES = re.compile(r"\*\*Estimated time:\*\*\s*(?P<minutes>\d+)\s*min", re.I)
CLOUD_TIME = re.compile(r"\*\*Wall time on Google Cloud:\*\*\s*(?P<text>[^\n]+)", re.I)
SECTION_ID = re.compile(r"\b[1-6]\.[1-3]\b")


@dataclass
class LabMeta:
    title: str | None = None
    objectives: list[str] = field(default_factory=list)
    exam_sections: list[str] = field(default_factory=list)
    minutes: int | None = None
    cloud_time: str | None = None  # free text: jobs on Google Cloud take far longer than locally


def parse(nb) -> LabMeta:
    markdown = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    meta = LabMeta()
    if m := TITLE.search(markdown):
        meta.title = m["title"].strip()
    if m := OBJECTIVES_HEADING.search(markdown):
        for line in markdown[m.end():].lstrip("\n").splitlines():
            item = OBJECTIVE.match(line)
            if not item:
                break
            meta.objectives.append(item["text"].strip())
    if m := SECTIONS.search(markdown):
        meta.exam_sections = SECTION_ID.findall(m["sections"])
    if m := MINUTES.search(markdown):
        meta.minutes = int(m["minutes"])
    if m := CLOUD_TIME.search(markdown):
        meta.cloud_time = m["text"].strip()
    return meta
