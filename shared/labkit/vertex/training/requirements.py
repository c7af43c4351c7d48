"""What a training job asks to have installed, against what this environment has.

On Vertex a python package's dependencies (the SDK's `requirements=[...]`, which it writes
into the package's setup.py install_requires; a wheel's Requires-Dist) are pip-installed
in the container before the trainer starts. Offline nothing can be installed: the trainer
runs on the lab environment's packages. A requirement the environment does not satisfy
(missing, or another version) would silently change what the job computes, so the job
fails before any replica starts, with a message that names each one.
"""

from __future__ import annotations

import ast
import email.parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement


def declared(roots: list[str]) -> list[str]:
    """Requirement strings declared by the staged packages (folders on PYTHONPATH)."""
    found: list[str] = []
    for root in map(Path, roots):
        for base in (root, root.parent):  # a src/ layout's metadata sits one level up
            found += _from_metadata(base) or _from_setup_py(base / "setup.py")
    return list(dict.fromkeys(found))


def _from_metadata(base: Path) -> list[str]:
    for requires in sorted(base.glob("*.egg-info/requires.txt")):
        lines = []
        for line in requires.read_text(errors="replace").splitlines():
            if line.startswith("["):  # extras and marker sections follow
                break
            if line.strip():
                lines.append(line.strip())
        return lines
    for info in sorted(base.glob("*.dist-info/METADATA")) + sorted(base.glob("PKG-INFO")):
        message = email.parser.Parser().parsestr(info.read_text(errors="replace"))
        return [r for r in message.get_all("Requires-Dist") or [] if "extra ==" not in r]
    return []


def _from_setup_py(path: Path) -> list[str]:
    """install_requires=[...] written as a literal (as the Vertex SDK writes it)."""
    if not path.is_file():
        return []
    try:
        tree = ast.parse(path.read_text(errors="replace"))
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else [str(v) for v in value]
    return []


# pip install options that take a value (the rest are flags): KFP writes pip_index_urls as
# --index-url / --trusted-host before the packages.
_PIP_VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "--trusted-host", "-c",
                      "--constraint", "-r", "--requirement", "-f", "--find-links"}


def pip_installs(script: str) -> list[str]:
    """The requirements a KFP lightweight component's shell command pip-installs: its
    packages_to_install and the kfp it was compiled with, the words after each
    `pip install` up to `&&`, less pip's options."""
    import shlex

    try:
        words = shlex.split(script)
    except ValueError:
        return []
    found: list[str] = []
    for i in range(len(words) - 1):
        if words[i] != "pip" or words[i + 1] != "install":
            continue
        skip = False
        for word in words[i + 2:]:
            if word in ("&&", ";", "||"):
                break
            if skip:
                skip = False
            elif word.startswith("-"):
                skip = word in _PIP_VALUE_OPTIONS
            else:
                found.append(word)
    return found


def unmet(requirements: list[str]) -> list[str]:
    """One line for each requirement this environment does not satisfy."""
    problems = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            problems.append(f"{text!r} is not a valid requirement: {exc}")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{text}: not installed")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed,
                                                                         prereleases=True):
            problems.append(f"{text}: {requirement.name} {installed} is installed")
    return problems


def refusal(problems: list[str], who: str = "The job's Python package requires") -> str:
    return (f"{who} packages this environment does not have, and "
            "the local services cannot install packages (offline, a job runs on the lab "
            "environment's packages; Vertex AI would pip-install them in the container):\n  "
            + "\n  ".join(problems) + "\nAsk for the installed versions (or drop the pins), or "
            "run with LAB_BACKEND=gcp.")


# The distributions that provide each prebuilt image's framework (labkit.vertex.containers).
FRAMEWORK_PACKAGES = {"sklearn": ("scikit-learn",), "xgboost": ("xgboost",),
                      "tf": ("tensorflow", "tensorflow-cpu"),
                      "tf2": ("tensorflow", "tensorflow-cpu"), "pytorch": ("torch",)}


def _installed(names: tuple[str, ...]) -> tuple[str, str | None]:
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return names[0], None


def image_difference(uri: str | None) -> str | None:
    """A note for the job log when a prebuilt training image's framework (or Python) differs
    from what runs here: the trainer runs on the lab environment's packages, not the image's."""
    import platform

    from labkit.vertex import containers, errors

    try:
        image = containers.lookup(uri or "")
    except errors.VertexError:  # refused when the job was created
        return None
    if image is None or image.kind != "training" or image.framework not in FRAMEWORK_PACKAGES:
        return None
    package, installed = _installed(FRAMEWORK_PACKAGES[image.framework])
    python = ".".join(platform.python_version_tuple()[:2])
    differences = []
    if installed is None:
        differences.append(f"{package} {image.version} is not installed here")
    elif ".".join(installed.split(".")[:2]) != image.version:
        differences.append(f"{package} {image.version} in the image, {installed} here")
    if image.python and image.python != python:
        differences.append(f"Python {image.python} in the image, {python} here")
    if not differences:
        return None
    return (f"labkit: the trainer runs on this lab environment's packages, not those of the "
            f"image {uri}: {'; '.join(differences)}. Code or saved models that depend on the "
            f"image's versions may behave differently on Vertex AI.\n")
