"""Training benchmarks, 2 cores:

- submission overhead: the same small pure-Python trainer script run as a CustomJob through
  the SDK (package upload, job creation, replica start with the Vertex contract, polling)
  vs running it directly with python (wall seconds; ratio = job / direct);
- tf.data: lab 03's own input pipeline (the %%writefile trainer/inputs.py cell of its
  solution notebook), 3 epochs over the lab's CSV shards, optimized (parallel reads,
  vectorised parallel map, cache, prefetch) vs naive (ratio = optimized / naive seconds;
  below 1 is faster).

Smoke mode: a trainer with 200 points x 20 steps, one run each way; one tf.data epoch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "labs" / "03_custom_training" / "solution.ipynb"
SCRIPT = '''
import importlib.util
import json
import os
import random

# A small trainer without heavy imports, so the job's own overhead shows: least squares
# for y = a*x + b by gradient descent, written to AIP_MODEL_DIR.
rng = random.Random(0)
data = [(x, 3 * x + 1 + rng.gauss(0, 0.1)) for x in (rng.random() for _ in range({points}))]
a = b = 0.0
for _ in range({steps}):
    grad_a = sum((a * x + b - y) * x for x, y in data) / len(data)
    grad_b = sum(a * x + b - y for x, y in data) / len(data)
    a, b = a - 0.5 * grad_a, b - 0.5 * grad_b
out = os.environ["AIP_MODEL_DIR"].replace("gs://", "/gcs/", 1)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.json"), "w") as f:
    json.dump({"a": a, "b": b}, f)
'''
IMAGE = "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest"


def _submission(folder: Path, smoke: bool) -> dict:
    from google.cloud import aiplatform

    script = folder / "train.py"
    script.write_text(SCRIPT.replace("{points}", "200" if smoke else "2000")
                      .replace("{steps}", "20" if smoke else "200"))
    repeats = 1 if smoke else 2
    direct = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(script)], check=True,
                       env={**os.environ, "AIP_MODEL_DIR": str(folder / "direct-model")})
        direct.append(time.perf_counter() - start)
    jobs = []
    for _ in range(repeats):
        start = time.perf_counter()
        job = aiplatform.CustomJob.from_local_script(display_name="bench-training",
                                                     script_path=str(script),
                                                     container_uri=IMAGE)
        job.run()
        jobs.append(time.perf_counter() - start)
        job.delete()
    return {"name": "CustomJob.from_local_script(...).run() vs python train.py",
            "value": min(jobs), "baseline": min(direct), "unit": "s",
            "target": "< direct + 2 s"}


def _lab_inputs(folder: Path):
    """Writes the lab's trainer/inputs.py (from its notebook) and imports it."""
    cells = json.loads(LAB.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code"
                  and "".join(c["source"]).startswith("%%writefile {TRAINER_DIR}/trainer/inputs"))
    path = folder / "lab03_inputs.py"
    path.write_text(source.split("\n", 1)[1])
    # Loaded by path: no sys.path entry left behind, no stale `trainer` from elsewhere.
    spec = importlib.util.spec_from_file_location("bench_lab03_inputs", path)
    inputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inputs)
    return inputs


def _tf_data(folder: Path, smoke: bool) -> dict:
    from sklearn.datasets import load_digits

    inputs = _lab_inputs(folder)
    digits = load_digits()
    data = folder / "data"
    data.mkdir()
    header = ",".join([f"pixel{i}" for i in range(64)] + ["label"])
    for i, rows in enumerate(np.array_split(np.arange(len(digits.target)), 4)):
        np.savetxt(data / f"train-{i:05d}.csv",
                   np.column_stack([digits.data[rows], digits.target[rows]]),
                   delimiter=",", header=header, comments="", fmt="%g")
    files = inputs.list_files(str(data), "train")
    seconds = {}
    epochs = 1 if smoke else 3
    for optimized in (False, True):
        if not smoke:
            for _ in inputs.make_dataset(files, 64, optimized=optimized):  # warm-up
                pass
        dataset = inputs.make_dataset(files, 64, optimized=optimized)
        start = time.perf_counter()
        for _ in range(epochs):
            for _ in dataset:
                pass
        seconds[optimized] = time.perf_counter() - start
    return {"name": f"lab 03 tf.data pipeline, {epochs} epochs: optimized vs naive",
            "value": seconds[True], "baseline": seconds[False], "unit": "s",
            "target": "ratio < 0.5"}


def run(smoke: bool = False) -> list[dict]:
    import labkit

    labkit.start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        return [_submission(folder, smoke), _tf_data(folder, smoke)]
