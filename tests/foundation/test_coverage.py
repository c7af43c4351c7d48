"""The exam guide coverage map: every subsection of the guide has a lab (the one known gap is
named in labkit.authoring.coverage.NO_LAB_YET), and labs claim only real subsections."""

from __future__ import annotations

import pytest

from labkit.authoring import coverage, metadata
from labkit.authoring.notebook import LABS, SOLUTION, lab_dirs, read


def test_every_subsection_of_the_guide_has_a_lab_but_the_named_gap():
    assert coverage.uncovered() == sorted(coverage.NO_LAB_YET), (
        "a subsection lost its last lab, or a named gap now has one (remove it from NO_LAB_YET)")


@pytest.mark.parametrize("lab", lab_dirs(), ids=lambda p: p.name)
def test_labs_claim_only_subsections_of_the_guide(lab):
    claimed = metadata.parse(read(lab / SOLUTION)).exam_sections
    assert claimed and set(claimed) <= set(coverage.EXAM_GUIDE), claimed


def test_the_map_lists_every_subsection_with_its_labs_and_questions():
    text = (LABS / "README.md").read_text()
    assert "## Exam guide coverage" in text
    for section, title in coverage.EXAM_GUIDE.items():
        assert f"| {section} {title} |" in text
    row = next(line for line in text.splitlines() if line.startswith("| 3.2 "))
    assert "00_ml_foundations" in row and "00 Q" in row
