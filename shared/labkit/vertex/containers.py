"""Vertex AI's prebuilt training and prediction containers, and their support dates.

The data (containers.json, beside this file) is Google's lists as read on the date each
source names: framework and version, devices, Python version, end of patch and end of
availability. An image in Google's prebuilt repositories
(<region>-docker.pkg.dev/vertex-ai/{prediction,training}/... or the older
gcr.io/cloud-aiplatform/{prediction,training}/... names) is looked up there:
- not in the list: refused (INVALID_ARGUMENT), as Vertex refuses an image that does not exist;
- past its end of availability: refused (INVALID_ARGUMENT) with the date;
- past its end of patch: accepted with a warning in the services' log and in `warnings()`.
Any other image is a custom container: `check` returns None and the caller decides.

"Today" is the real date (`today()`), so an image retires here the day Google retires it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from labkit.vertex import errors

DATA = Path(__file__).with_name("containers.json")
REGIONS = ("us", "europe", "asia")
log = logging.getLogger("labkit.vertex.containers")

REPOSITORY = re.compile(
    r"(?:(?P<region>[a-z]+)-docker\.pkg\.dev/vertex-ai(?:-restricted)?|"
    r"(?:[a-z]+\.)?gcr\.io/cloud-aiplatform)/(?P<kind>prediction|training)/(?P<name>[^:@\s]+)"
    r"(?::(?P<tag>[\w.-]+))?")
NAME = re.compile(r"(?P<framework>tf2|tf|sklearn|scikit-learn|xgboost|pytorch)-"
                  r"(?P<device>cpu|gpu|tpu)\.(?P<version>\d+-\d+)(?:\.py(?P<python>\d+))?")
FAMILY = {"scikit-learn": "sklearn"}
_NAMES = {"sklearn": "scikit-learn", "xgboost": "XGBoost", "tf2": "TensorFlow",
          "tf": "TensorFlow", "pytorch": "PyTorch"}


@dataclass(frozen=True)
class Image:
    uri: str
    kind: str                 # "prediction" or "training"
    framework: str            # sklearn, xgboost, tf2, tf, pytorch
    version: str              # "1.6"
    device: str
    python: str | None
    end_of_patch: date | None
    end_of_availability: date | None
    retired: str | None       # why an undated row is known to be retired
    source: dict

    def past_patch(self, on: date) -> bool:
        return self.end_of_patch is not None and on > self.end_of_patch

    def unavailable(self, on: date) -> bool:
        return bool(self.retired) or (self.end_of_availability is not None
                                      and on > self.end_of_availability)


def today() -> date:
    return date.today()


@cache
def table() -> dict:
    return json.loads(DATA.read_text())


def _rows(kind: str):
    data = table()
    for row in data[kind]:
        versions = row["version"] if isinstance(row["version"], list) else [row["version"]]
        for version in versions:
            yield version, row, data["sources"][row["source"]]


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def newest(kind: str, framework: str, on: date | None = None) -> str | None:
    """The newest version of framework still available on `on`, e.g. '1.6'."""
    on = on or today()
    found = [v for v, row, _ in _rows(kind) if row["framework"] == framework
             and not row.get("retired") and not (row["end_of_availability"]
                                                 and on > _date(row["end_of_availability"]))]
    return max(found, key=lambda v: tuple(int(p) for p in v.split(".")), default=None)


def lookup(uri: str) -> Image | None:
    """The prebuilt image a URI names (None: not in Google's prebuilt repositories).
    Raises for a prebuilt repository path that names no listed image."""
    m = REPOSITORY.fullmatch(uri or "")
    if not m:
        return None
    kind = m["kind"]
    if m["region"] and m["region"] not in REGIONS:
        raise _unknown(uri, kind, f"prebuilt containers are published in the {', '.join(REGIONS)} "
                                  f"repositories (<region>-docker.pkg.dev/vertex-ai/{kind}/...)")
    if kind == "prediction" and m["tag"] not in (None, "latest"):
        raise _unknown(uri, kind, "prebuilt prediction images are used with the latest tag")
    n = NAME.fullmatch(m["name"])
    if not n:
        raise _unknown(uri, kind, "it is not one of the listed prebuilt images")
    framework = FAMILY.get(n["framework"], n["framework"])
    version = n["version"].replace("-", ".")
    python = f"{n['python'][0]}.{n['python'][1:]}" if n["python"] else None
    for listed, row, source in _rows(kind):
        if row["framework"] != framework or listed != version:
            continue
        if n["device"] not in row["devices"]:
            continue
        if python and row.get("python") and python != row["python"]:
            continue
        return Image(uri, kind, framework, version, n["device"], row.get("python") or python,
                     _date(row["end_of_patch"]), _date(row["end_of_availability"]),
                     row.get("retired"), source)
    raise _unknown(uri, kind, f"Google lists no {framework} {version} {n['device'].upper()} "
                              f"{kind} image" + (f" for Python {python}" if python else ""))


def _unknown(uri: str, kind: str, why: str) -> errors.VertexError:
    title = "prediction" if kind == "prediction" else "custom training"
    where = table()["sources"][f"{kind}-list"]["url"]
    return errors.invalid(
        f"The container image {uri!r} is not a Vertex AI prebuilt {kind} container: {why}. "
        f"See the list of prebuilt containers for {title} ({where}).")


def check(uri: str, kind: str, on: date | None = None) -> Image | None:
    """What Vertex checks of an image before using it (upload, deploy, batch prediction,
    custom job): None for a custom container, the Image for a prebuilt one still available;
    raises INVALID_ARGUMENT for one that is unknown or past its end of availability, and logs
    a warning for one past its end of patch."""
    on = on or today()
    image = lookup(uri)
    if image is None:
        return None
    if image.kind != kind:
        raise errors.invalid(f"The container image {uri!r} is a prebuilt {image.kind} image; "
                             f"use a prebuilt {kind} image here.")
    if image.unavailable(on):
        when = (f"on {image.end_of_availability.isoformat()}" if image.end_of_availability
                else f"({image.retired})")
        better = newest(kind, image.framework, on)
        if better is None and image.version == newest(kind, image.framework, date.min):
            # The newest image our copy of Google's list names for this framework is past
            # its end of availability, so the copy is likely older than Google's page: a
            # loud warning instead of a refusal we cannot back with a version to use.
            log.warning("The prebuilt %s container %s (%s) is past its end of availability "
                        "%s in labkit's copy of Google's list (%s, read %s), which names no "
                        "newer %s image: check Google's current list; on Vertex AI this "
                        "image is refused.", kind, uri, _label(image), when,
                        image.source["url"], image.source["read"], _NAMES[image.framework])
            return image
        raise errors.invalid(
            f"The prebuilt {kind} container {uri!r} ({_label(image)}) is past its end of "
            f"availability {when} and can no longer be used"
            + (f"; use a supported version such as {_NAMES[image.framework]} {better}"
               if better else "; use a newer version")
            + f". Source: {image.source['url']} (read {image.source['read']}).")
    if image.past_patch(on):
        log.warning("The prebuilt %s container %s (%s) is past its end of patch and support "
                    "on %s: it gets no more fixes, and it is refused after its end of "
                    "availability%s.", kind, uri, _label(image), image.end_of_patch.isoformat(),
                    f" on {image.end_of_availability.isoformat()}"
                    if image.end_of_availability else "")
    return image


def _label(image: Image) -> str:
    python = f", Python {image.python}" if image.python else ""
    return f"{_NAMES[image.framework]} {image.version}, {image.device.upper()}{python}"
