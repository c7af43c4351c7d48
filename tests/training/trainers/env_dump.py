"""Writes the environment Vertex gave this replica to the model directory, as JSON."""

import json
import os
import sys

KEYS = ("AIP_", "CLOUD_ML_", "CLUSTER_SPEC", "TF_CONFIG", "MY_", "CUDA_VISIBLE_DEVICES")

model_dir = os.environ["AIP_MODEL_DIR"].replace("gs://", "/gcs/", 1)  # Cloud Storage FUSE
os.makedirs(model_dir, exist_ok=True)
with open(os.path.join(model_dir, "env.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(),
               "env": {k: v for k, v in os.environ.items() if k.startswith(KEYS)}}, f)
