"""One Dataflow job's workers: the submitted pipeline graph run by Beam's FnApiRunner.

`python -m labkit.dataflow.worker JOB_FOLDER` (or `--spare`: imports first, then waits
for its job folder on stdin) runs in a child process of the services (a
pipeline that hangs or crashes cannot take them down; cancelling kills it), with the
environment that points Google's clients at the local services. It reads spec.json (what
the engine took from the job: the staged pipeline's URL, the pipeline options, the staged
packages), fetches the pipeline proto from Cloud Storage as Dataflow's workers do, swaps
the Beam SDK container for the in-process Python environment it stands for, runs it and
writes outcome.json: the terminal state, the error, and the metrics in Dataflow's shape.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from labkit.services.files import write_atomic

# Staged files a worker reads itself (pickled_main_session) or that only describe the
# submitting environment (the pip freeze Beam stages for Dataflow's support tooling).
KNOWN_PACKAGES = ("pickled_main_session", "submission_environment_dependencies.txt")
REQUIREMENTS = "requirements.txt"


class NotLocal(Exception):
    """What the local workers cannot do; the message names it and LAB_BACKEND=gcp."""


def _read(url: str) -> bytes:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(url, compression_type="uncompressed") as f:
        return f.read()


def _gcs_url(location: str) -> str:
    """A package location as Beam writes it (storage.googleapis.com/BUCKET/NAME)."""
    for prefix in ("https://storage.googleapis.com/", "storage.googleapis.com/", "gs://"):
        if location.startswith(prefix):
            return "gs://" + location[len(prefix):]
    raise NotLocal(f"The staged package location {location!r} is not in Cloud Storage.")


def sdk_image_suffix() -> str:
    """The Beam Python SDK container this environment stands in for."""
    import apache_beam

    return f"beam_python{sys.version_info[0]}.{sys.version_info[1]}_sdk:{apache_beam.__version__}"


def embed_environments(pipeline) -> None:
    """Dataflow runs each environment's container; here the Beam SDK container of this very
    Python and Beam runs in-process. Any other container (a custom image, another SDK's
    cross-language transforms) needs Docker: refused, not run on something else."""
    from apache_beam.portability import common_urns, python_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    for env in pipeline.components.environments.values():
        if env.urn != common_urns.environments.DOCKER.urn:
            raise NotLocal(f"Environment {env.urn} is not available on the local Dataflow; "
                           f"it runs with LAB_BACKEND=gcp.")
        image = beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
        if not image.endswith("/" + sdk_image_suffix()):
            raise NotLocal(
                f"The SDK container image {image} is not available on the local Dataflow: "
                f"its workers run this environment's Python and Beam "
                f"({sdk_image_suffix()}), not other containers; it runs with "
                f"LAB_BACKEND=gcp.")
        env.urn = python_urns.EMBEDDED_PYTHON
        env.payload = b""
        del env.dependencies[:]  # the staged files are handled by prepare()


def prepare(packages: list[dict], folder: Path) -> None:
    """What Dataflow's worker does with the staged files before running: the main session
    is loaded; a requirements file must already be met by this environment (no installs
    offline); anything else to install is refused."""
    from apache_beam.internal import pickler

    from labkit.vertex.training import requirements

    for package in packages:
        name = package["name"]
        if name == "pickled_main_session":
            path = folder / name
            path.write_bytes(_read(_gcs_url(package["location"])))
            pickler.load_session(str(path))
        elif name == REQUIREMENTS:
            lines = [line.split("#")[0].strip() for line in
                     _read(_gcs_url(package["location"])).decode().splitlines()]
            problems = requirements.unmet([line for line in lines
                                           if line and not line.startswith("-")])
            if problems:
                raise NotLocal("The pipeline's requirements file asks for packages this "
                               "environment does not have, and the local Dataflow cannot "
                               "install packages on its workers (Dataflow's would):\n  "
                               + "\n  ".join(problems) + "\nIt runs with LAB_BACKEND=gcp.")
        elif name not in KNOWN_PACKAGES:
            raise NotLocal(f"Installing the staged package {name} on the workers is not "
                           f"available on the local Dataflow (its workers run this "
                           f"environment's packages); it runs with LAB_BACKEND=gcp.")


def _metric_updates(result, pipeline) -> list[dict]:
    """Dataflow's MetricUpdate list: user metrics (origin "user", the step as the
    transform's id in the pipeline proto, which Beam's DataflowMetrics translates back to
    the transform's name) and the service's element counts per PCollection."""
    from apache_beam.metrics.execution import MetricResult  # noqa: F401 - the query's type

    ids = {t.unique_name: tid for tid, t in pipeline.components.transforms.items()}
    updates = []
    query = result.metrics().query()
    for kind in ("counters", "distributions"):
        for metric in query[kind]:
            step = ids.get(metric.key.step, metric.key.step)
            for tentative, value in (("true", metric.attempted), (None, metric.committed)):
                name = {"origin": "user", "name": metric.key.metric.name,
                        "context": {"step": step, "namespace": metric.key.metric.namespace,
                                    **({"tentative": tentative} if tentative else {})}}
                if kind == "counters":
                    updates.append({"name": name, "kind": "Sum", "scalar": value})
                else:
                    updates.append({"name": name, "kind": "Distribution",
                                    "distribution": {"count": value.count, "sum": value.sum,
                                                     "min": value.min, "max": value.max}})
    for monitoring in result.monitoring_infos():
        if monitoring.urn != "beam:metric:element_count:v1":
            continue
        from apache_beam.metrics import monitoring_infos

        pcollection = monitoring.labels.get("PCOLLECTION", "")
        if pcollection not in pipeline.components.pcollections:
            continue  # the runner's own internal collections
        updates.append({"name": {"origin": "dataflow/v1b3", "name": "ElementCount",
                                 "context": {"output_user_name": _producer(pipeline,
                                                                           pcollection),
                                             "original_name": pcollection}},
                        "kind": "Sum",
                        "scalar": monitoring_infos.extract_counter_value(monitoring)})
    return updates


def _producer(pipeline, pcollection: str) -> str:
    """`Transform.out0`-style name Dataflow gives a PCollection in its element counts."""
    for transform in pipeline.components.transforms.values():
        if transform.subtransforms:
            continue
        for tag, pc in transform.outputs.items():
            if pc == pcollection:
                return f"{transform.unique_name}.{tag}"
    return pcollection


def run(folder: Path) -> dict:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    spec = json.loads((folder / "spec.json").read_text())
    options = PipelineOptions.from_dictionary(spec["options"])
    pipeline = beam_runner_api_pb2.Pipeline.FromString(_read(spec["pipeline_url"]))
    embed_environments(pipeline)
    prepare(spec["packages"], folder)
    result = FnApiRunner().run_via_runner_api(pipeline, options)
    result.wait_until_finish()
    return {"state": "JOB_STATE_DONE", "metrics": _metric_updates(result, pipeline)}


def _warm_up() -> None:
    """What every job imports: done before a job arrives, so a job does not wait for it."""
    import apache_beam  # noqa: F401
    import apache_beam.io.gcp.gcsfilesystem  # noqa: F401
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: F401
    from google.cloud import storage  # noqa: F401


def _job_from_stdin() -> Path | None:
    """A spare worker waits for its job: one JSON line with the job folder and the
    environment that points the job's Google clients at the services. Its output then goes
    to the job's log."""
    import os

    line = sys.stdin.readline()
    if not line.strip():
        return None  # the services stopped or dropped this spare
    job = json.loads(line)
    os.environ.update(job["environment"])
    folder = Path(job["folder"])
    log = os.open(folder / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for stream in (1, 2):
        os.dup2(log, stream)
    os.chdir(folder)
    return folder


def main(argv: list[str]) -> int:
    if argv[1:] == ["--spare"]:
        _warm_up()
        folder = _job_from_stdin()
        if folder is None:
            return 0
    else:
        folder = Path(argv[1])
    import time

    start = time.perf_counter()
    try:
        outcome = run(folder)
    except NotLocal as exc:
        outcome = {"state": "JOB_STATE_FAILED", "error": str(exc), "metrics": []}
    except BaseException:  # the user's code failed: Dataflow reports the worker traceback
        outcome = {"state": "JOB_STATE_FAILED", "metrics": [],
                   "error": "Error message from worker: " + traceback.format_exc()}
    write_atomic(folder / "outcome.json", json.dumps(outcome, default=str))
    print(outcome.get("error") or f"The pipeline finished in "
          f"{time.perf_counter() - start:.1f} s.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
