"""A trainer that uses Google's clients as a trainer on Vertex does: the Vertex AI SDK with
no endpoint settings (Experiments), and TensorFlow's own gs:// file system."""

import argparse
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--experiment", required=True)
parser.add_argument("--tensorflow", default="yes")
args = parser.parse_args()

started = time.perf_counter()
from google.cloud import aiplatform  # noqa: E402 - timed

aiplatform.init(experiment=args.experiment)
aiplatform.start_run("in-job")
aiplatform.log_params({"learning_rate": 0.05})
aiplatform.log_metrics({"accuracy": 0.75})
aiplatform.end_run()
print(f"sdk import+init+log: {time.perf_counter() - started:.2f}s")

if args.tensorflow == "yes":
    import tensorflow as tf

    model_dir = os.environ["AIP_MODEL_DIR"]  # gs://...
    with tf.io.gfile.GFile(model_dir + "from_tf.txt", "w") as f:
        f.write("written by tf.io.gfile")
    assert tf.io.gfile.exists(model_dir + "from_tf.txt")
    tf.saved_model.save(tf.Module(), model_dir + "saved")
    assert "saved_model.pb" in tf.io.gfile.listdir(model_dir + "saved")
