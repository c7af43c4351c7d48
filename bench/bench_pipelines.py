"""Vertex AI Pipelines benchmarks, 2 cores, on the lab's train/evaluate steps:

- overhead: one run of a 3-step pipeline (penguins CSV -> train -> evaluate, the lab's
  lightweight components) submitted with aiplatform.PipelineJob to the local Vertex AI and
  waited for (wall seconds, as a learner sees run()), vs kfp.local's SubprocessRunner
  running the same pipeline in-process (ratio = local Vertex / kfp.local);
- caching: the same submission again (every step cached) vs the first run.

Smoke mode runs the same: the steps are already tiny, and the components are what rots.

(No `from __future__ import annotations`: KFP reads the component annotations as types.)
"""

import tempfile
import time
import uuid

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

BASE_IMAGE = "python:3.11"  # kfp.local runs the steps here; no pip step (uv venvs have no pip)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def penguins(data: Output[Dataset], seed: int):
    import palmerpenguins

    frame = palmerpenguins.load_penguins().dropna().sample(frac=1.0, random_state=seed)
    frame.to_csv(data.path, index=False)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train(data: Input[Dataset], model: Output[Model]):
    import os

    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data.path)
    features = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    fitted.fit(frame[features][:250], frame["species"][:250])
    os.makedirs(model.path, exist_ok=True)
    joblib.dump(fitted, os.path.join(model.path, "model.joblib"))


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate(data: Input[Dataset], model: Input[Model], metrics: Output[Metrics]) -> float:
    import os

    import joblib
    import pandas as pd

    frame = pd.read_csv(data.path)[250:]
    features = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    fitted = joblib.load(os.path.join(model.path, "model.joblib"))
    accuracy = float((fitted.predict(frame[features]) == frame["species"]).mean())
    metrics.log_metric("accuracy", accuracy)
    return accuracy


@dsl.pipeline(name="bench-penguins")
def bench_pipeline(seed: int = 0):
    data = penguins(seed=seed)
    model = train(data=data.outputs["data"])
    evaluate(data=data.outputs["data"], model=model.outputs["model"])


def _submit(aiplatform, template: str, root: str, seed: int) -> float:
    job = aiplatform.PipelineJob(display_name="bench-penguins", template_path=template,
                                 pipeline_root=root, parameter_values={"seed": seed},
                                 job_id=f"bench-{uuid.uuid4().hex[:12]}")
    started = time.perf_counter()
    job.submit()
    job.wait()
    seconds = time.perf_counter() - started
    job.delete()
    return seconds


def run(smoke: bool = False) -> list[dict]:  # smoke: the same, already tiny
    from google.cloud import aiplatform
    from kfp import local

    import labkit

    env = labkit.start()  # also routes submit()'s Resource Manager lookup to the stand-in
    seed = int(time.time()) % 100000  # fresh inputs: nothing cached from earlier benches
    with tempfile.TemporaryDirectory() as folder:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=folder,
                   raise_on_error=True)
        started = time.perf_counter()
        bench_pipeline(seed=seed)
        kfp_local_s = time.perf_counter() - started

        template = f"{folder}/bench.yaml"
        compiler.Compiler().compile(bench_pipeline, template)
        root = f"gs://{env.bucket}/bench-pipelines/root"
        first_s = _submit(aiplatform, template, root, seed)
        cached_s = _submit(aiplatform, template, root, seed)
    return [
        {"name": "pipelines: 3-step run, PipelineJob submit+wait vs kfp.local", "value": first_s,
         "unit": "s", "baseline": kfp_local_s, "target": "ratio <= 3"},
        {"name": "pipelines: cached rerun vs first run (submit+wait)", "value": cached_s,
         "unit": "s", "baseline": first_s, "target": "ratio < 0.5"},
    ]
