"""Committed exercises, the catalog and environment.yml match what the tools generate."""

from __future__ import annotations

import tomllib

from labkit.authoring import __main__ as cli
from labkit.authoring import catalog, environment, metadata
from labkit.authoring.notebook import REPO, SOLUTION, lab_dirs, read


def test_every_lab_has_a_current_exercise_and_catalog_entry():
    stale = [str(p.relative_to(REPO)) for p in cli.stale_files()]
    assert stale == [], f"out of date, run `make exercises catalog environment`: {stale}"


def test_catalog_lists_every_lab_with_its_metadata():
    text = catalog.render()
    for lab in lab_dirs():
        meta = metadata.parse(read(lab / SOLUTION))
        assert meta.title in text and f"{lab.name}/exercise.ipynb" in text
        assert all(o in text for o in meta.objectives)


def test_environment_yml_pins_every_pyproject_requirement_at_its_locked_version():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = project["project"]["dependencies"] + project["dependency-groups"]["dev"]
    text = (REPO / "environment.yml").read_text()
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions = {p["name"]: p["version"] for p in lock["package"] if "version" in p}
    for requirement in wanted:
        name = environment.NAME.match(requirement).group(0)
        assert f"{name}" in text
        assert f"=={versions[name.lower()]}" in text, f"{name} not pinned to the lock"
    assert len(environment.requirements()) == len(wanted)


def test_every_lab_passes_the_lint():
    from labkit.authoring.lint import lint_file

    problems = {lab.name: [str(p) for p in lint_file(lab / SOLUTION)] for lab in lab_dirs()}
    assert all(not p for p in problems.values()), problems


def test_the_catalog_shows_each_labs_wall_time_on_google_cloud():
    from .notebooks import INTRO, good_lab

    nb = good_lab()
    nb.cells[0].source = INTRO + "\n**Wall time on Google Cloud:** about 2 hours (one AutoML job)"
    assert metadata.parse(nb).cloud_time == "about 2 hours (one AutoML job)"
    assert metadata.parse(good_lab()).cloud_time is None
    text = catalog.render()
    for lab in lab_dirs():
        meta = metadata.parse(read(lab / SOLUTION))
        assert (meta.cloud_time or "not stated yet") in text
