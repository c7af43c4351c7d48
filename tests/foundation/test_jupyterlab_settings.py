"""`make lab` installs jupyter/overrides.json: every setting in it must exist in the installed
JupyterLab's schemas with a valid value, or JupyterLab ignores it and the pop-ups return."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"


def test_every_override_is_a_valid_setting_of_the_installed_jupyterlab():
    overrides = json.loads((REPO / "jupyter" / "overrides.json").read_text())
    assert {"@jupyterlab/apputils-extension:notification",
            "@jupyterlab/docmanager-extension:plugin"} <= set(overrides)
    for plugin, settings in overrides.items():
        package, name = plugin.split(":")
        schema = json.loads((SCHEMAS / package / f"{name}.json").read_text())
        for key in settings:
            assert key in schema["properties"], f"{plugin} has no setting {key!r}"
        jsonschema.validate(settings, {**schema, "required": []})
    news = overrides["@jupyterlab/apputils-extension:notification"]
    assert news == {"fetchNews": "false", "checkForUpdates": False}  # no prompt, no calls out
