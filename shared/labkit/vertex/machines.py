"""Machine types and accelerators Vertex AI prediction accepts, and their validation.

Requests arrive with enums as integers ($alt=json;enum-encoding=int); the SDK's own enum
types translate them. Nothing here changes how the local model runs: the choice is
validated as Vertex validates it and recorded on the deployed model.
"""

from __future__ import annotations

import re

from google.cloud.aiplatform_v1.types import AcceleratorType

from labkit.vertex import errors

# Families Vertex AI online prediction offers, and which accept which accelerators.
FAMILIES = {
    "n1": r"n1-(standard|highmem)-(2|4|8|16|32|64|96)|n1-highcpu-(4|8|16|32|64|96)",
    "n2": r"n2-(standard|highmem|highcpu)-(2|4|8|16|32|48|64|80)",
    "n2d": r"n2d-(standard|highmem|highcpu)-(2|4|8|16|32|48|64|80|96|128|224)",
    "e2": r"e2-(standard|highmem|highcpu)-(2|4|8|16|32)",
    "c2": r"c2-standard-(4|8|16|30|60)",
    "c2d": r"c2d-(standard|highmem|highcpu)-(2|4|8|16|32|56|112)",
    "a2": r"a2-(highgpu-(1|2|4|8)g|megagpu-16g|ultragpu-(1|2|4|8)g)",
    "a3": r"a3-(highgpu-(1|2|4|8)g|megagpu-8g)",
    "g2": r"g2-standard-(4|8|12|16|24|32|48|96)",
    "ct5lp": r"ct5lp-hightpu-(1|4|8)t",
}
ACCELERATORS = {
    "n1": {"NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_P100"},
    "a2": {"NVIDIA_TESLA_A100", "NVIDIA_A100_80GB"},
    "a3": {"NVIDIA_H100_80GB"},
    "g2": {"NVIDIA_L4"},
    "ct5lp": {"TPU_V5_LITEPOD"},
}


def accelerator_name(value) -> str:
    """'NVIDIA_TESLA_T4' from 5 or 'NVIDIA_TESLA_T4'."""
    if value in (None, "", 0, "0"):
        return "ACCELERATOR_TYPE_UNSPECIFIED"
    try:
        return AcceleratorType(int(value)).name
    except (TypeError, ValueError):
        return str(value)


def validate_dedicated(resources: dict) -> dict:
    """Checks dedicatedResources as Vertex does; returns it with enum names and ints."""
    spec = dict(resources.get("machineSpec") or {})
    machine = spec.get("machineType") or ""
    family = next((f for f, pattern in FAMILIES.items() if re.fullmatch(pattern, machine)), None)
    if family is None:
        raise errors.invalid(f'Machine type "{machine}" is not supported.')
    accelerator = accelerator_name(spec.get("acceleratorType"))
    count = int(spec.get("acceleratorCount") or 0)
    if accelerator != "ACCELERATOR_TYPE_UNSPECIFIED":
        if accelerator not in ACCELERATORS.get(family, set()):
            raise errors.invalid(f'Accelerator "{accelerator}" is not supported for machine '
                                 f'type "{machine}".')
        if count < 1:
            raise errors.invalid("accelerator_count must be at least 1 when an accelerator "
                                 "type is set.")
        spec["acceleratorType"] = accelerator
        spec["acceleratorCount"] = count
    else:
        spec.pop("acceleratorType", None)
        spec.pop("acceleratorCount", None)
    low = int(resources.get("minReplicaCount") or 1)
    high = int(resources.get("maxReplicaCount") or low)
    if low < 1:
        raise errors.invalid("min_replica_count must be greater than or equal to 1.")
    if high < low:
        raise errors.invalid("max_replica_count must be greater than or equal to "
                             "min_replica_count.")
    checked = {**resources, "machineSpec": spec, "minReplicaCount": low,
               "maxReplicaCount": high}
    return checked
