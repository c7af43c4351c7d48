"""Machine types and accelerators Vertex AI custom training accepts, and their validation.

The check follows Vertex's rules for training worker pools: a machine family takes only
its own accelerators, in the counts its machine shapes carry. Locally every replica runs
on this machine; the validated spec is recorded on the job so the learner sees what the
job would get on Google Cloud. TPUs cannot be reproduced here and fail loudly.
"""

from __future__ import annotations

import re

from labkit.vertex import errors
from labkit.vertex.machines import accelerator_name

MACHINES = (r"n1-standard-(4|8|16|32|64|96)|n1-highmem-(2|4|8|16|32|64|96)"
            r"|n1-highcpu-(16|32|64|96)"
            r"|n2-(standard|highmem|highcpu)-(4|8|16|32|48|64|80)"
            r"|n2d-(standard|highmem|highcpu)-(4|8|16|32|48|64|80|96|128|224)"
            r"|e2-standard-(4|8|16|32)|e2-highmem-(2|4|8|16)|e2-highcpu-(16|32)"
            r"|c2-standard-(4|8|16|30|60)"
            r"|a2-highgpu-(1|2|4|8)g|a2-megagpu-16g|a2-ultragpu-(1|2|4|8)g"
            r"|a3-highgpu-(1|2|4|8)g|a3-megagpu-8g|g2-standard-(4|8|12|16|24|32|48|96)")
TPU_MACHINES = r"cloud-tpu|ct5lp-hightpu-(1|4|8)t|ct6e-standard-(1|4|8)t"

# accelerator -> (machine family pattern, allowed counts or None: fixed by the shape)
GPUS = {
    "NVIDIA_TESLA_T4": (r"n1-.*", (1, 2, 4)),
    "NVIDIA_TESLA_P4": (r"n1-.*", (1, 2, 4)),
    "NVIDIA_TESLA_P100": (r"n1-.*", (1, 2, 4)),
    "NVIDIA_TESLA_V100": (r"n1-.*", (1, 2, 4, 8)),
    "NVIDIA_TESLA_A100": (r"a2-(highgpu|megagpu)-.*", None),
    "NVIDIA_A100_80GB": (r"a2-ultragpu-.*", None),
    "NVIDIA_H100_80GB": (r"a3-(highgpu|megagpu)-.*", None),
    "NVIDIA_L4": (r"g2-standard-.*", None),
}
G2_GPUS = {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}
TPUS = {"TPU_V2", "TPU_V3", "TPU_V4_POD", "TPU_V5_LITEPOD"}


def _shape_count(machine: str) -> int:
    """GPUs built into an accelerator-optimized shape (a2-highgpu-4g -> 4)."""
    if machine.startswith("g2-standard-"):
        return G2_GPUS[machine.rsplit("-", 1)[1]]
    return int(re.search(r"-(\d+)g$", machine)[1])


def validate_machine_spec(spec: dict, pool: int) -> dict:
    """Checks one worker pool's machineSpec; returns it with enum names and int counts."""
    spec = dict(spec or {})
    machine = spec.get("machineType") or ""
    accelerator = accelerator_name(spec.get("acceleratorType"))
    count = int(spec.get("acceleratorCount") or 0)
    if not machine:
        raise errors.invalid(f"worker_pool_specs[{pool}].machine_spec.machine_type is required.")
    if accelerator in TPUS or re.fullmatch(TPU_MACHINES, machine):
        raise errors.gcp_only(f"Training on TPUs (machine type {machine!r}, accelerator "
                              f"{accelerator})")
    if not re.fullmatch(MACHINES, machine):
        raise errors.invalid(f'Machine type "{machine}" is not supported.')
    if accelerator == "ACCELERATOR_TYPE_UNSPECIFIED":
        if re.match(r"a2-|a3-|g2-", machine):
            raise errors.invalid(f'Machine type "{machine}" requires accelerator type '
                                 f'{_gpu_for(machine)} with accelerator_count '
                                 f'{_shape_count(machine)}.')
        spec.pop("acceleratorType", None)
        spec.pop("acceleratorCount", None)
        return spec
    family, counts = GPUS.get(accelerator, (None, None))
    if family is None or not re.fullmatch(family, machine):
        raise errors.invalid(f'Accelerator "{accelerator}" is not supported for machine type '
                             f'"{machine}".')
    allowed = counts or (_shape_count(machine),)
    if count not in allowed:
        raise errors.invalid(f'The number of accelerators ({count}) is not valid for accelerator '
                             f'type "{accelerator}" and machine type "{machine}"; allowed: '
                             f'{", ".join(map(str, allowed))}.')
    spec["acceleratorType"], spec["acceleratorCount"] = accelerator, count
    return spec


def _gpu_for(machine: str) -> str:
    return next(name for name, (family, _) in GPUS.items()
                if family != r"n1-.*" and re.fullmatch(family, machine))
