"""Code inside a CustomJob reaches the local services the way it reaches Google: the Vertex
AI SDK without endpoint settings, TensorFlow's gs:// file system; and requirements the
environment cannot satisfy fail the job loudly instead of being dropped."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, storage

# Every TensorFlow training image in labkit.vertex.containers is past end of availability
# today; this machine's Python carries TensorFlow for any prebuilt image.
TF_IMAGE = "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest"


def test_trainer_logs_to_experiments_and_writes_gs_with_tensorflow(trainers):
    name = f"injob-{uuid.uuid4().hex[:8]}"
    job = aiplatform.CustomJob.from_local_script(
        display_name="google-clients", script_path=str(trainers / "google_clients.py"),
        container_uri=TF_IMAGE, args=["--experiment", name])
    job.run()
    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    df = aiplatform.get_experiment_df(name)
    assert list(df["run_name"]) == ["in-job"]
    assert list(df["metric.accuracy"]) == [0.75]
    base = job.job_spec.base_output_directory.output_uri_prefix.rstrip("/")
    bucket, _, prefix = base.removeprefix("gs://").partition("/")
    blobs = storage.Client().bucket(bucket)
    assert blobs.blob(f"{prefix}/model/from_tf.txt").download_as_text() == \
        "written by tf.io.gfile"
    assert blobs.blob(f"{prefix}/model/saved/saved_model.pb").exists()


def test_unmet_requirements_fail_the_job_loudly(trainers):
    job = aiplatform.CustomJob.from_local_script(
        display_name="pinned", script_path=str(trainers / "env_dump.py"),
        container_uri=TF_IMAGE, requirements=["scikit-learn==0.20.4", "no-such-package-xyz",
                                               "numpy"])
    with pytest.raises(RuntimeError, match="cannot install packages"):
        job.run()
    assert job.state.name == "JOB_STATE_FAILED"
    message = job.error.message
    assert "scikit-learn==0.20.4: scikit-learn " in message and " is installed" in message
    assert "no-such-package-xyz: not installed" in message
    assert "  numpy" not in message  # satisfied: not named
    assert "LAB_BACKEND=gcp" in message


def test_satisfied_requirements_run(trainers, read_json):
    job = aiplatform.CustomJob.from_local_script(
        display_name="unpinned", script_path=str(trainers / "env_dump.py"),
        container_uri=TF_IMAGE, requirements=["numpy>=1", "scikit-learn"])
    job.run()
    assert job.state.name == "JOB_STATE_SUCCEEDED"


def test_proxy_refuses_other_hosts_and_foreign_tokens(local_env, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    from urllib.parse import urlsplit

    proxy = urlsplit(os.environ["https_proxy"])
    with socket.create_connection((proxy.hostname, proxy.port), timeout=10) as s:
        s.sendall(b"CONNECT pubsub.googleapis.com:443 HTTP/1.1\r\n\r\n")
        assert s.recv(400).startswith(b"HTTP/1.1 403")  # a Google API we do not stand in for
    # any other host is tunnelled untouched (pip and friends keep working online)
    echo = socket.create_server(("127.0.0.1", 0))
    port = echo.getsockname()[1]
    with socket.create_connection((proxy.hostname, proxy.port), timeout=10) as s:
        s.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        assert s.recv(200).startswith(b"HTTP/1.1 200")
        peer, _ = echo.accept()
        s.sendall(b"ping")
        assert peer.recv(4) == b"ping"
        peer.close()
    echo.close()
    # TensorFlow with another token than this workspace's is refused by the local routes
    script = tmp_path / "foreign.py"
    script.write_text(
        "import tensorflow as tf\n"
        f"with tf.io.gfile.GFile('gs://{local_env.bucket}/foreign.txt', 'w') as f:\n"
        "    f.write('x')\n")
    env = {**os.environ, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "not-the-workspace-token",
           "GCS_RETRY_CONFIG_MAX_RETRIES": "0"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "401" in result.stderr or "token" in result.stderr.lower(), result.stderr[-2000:]
    with pytest.raises(exceptions.NotFound):
        storage.Client().bucket(local_env.bucket).blob("foreign.txt").reload()


KERNEL = """
import labkit
env = labkit.start()
import tensorflow as tf
from google.cloud import storage

bucket = storage.Client().bucket(env.bucket)
prefix = "kernel-tf/" + PREFIX
uri = f"gs://{env.bucket}/{prefix}"
with tf.io.gfile.GFile(f"{uri}/a.txt", "w") as f:
    f.write("from the kernel")
assert bucket.blob(prefix + "/a.txt").download_as_text() == "from the kernel"
bucket.blob(prefix + "/b.txt").upload_from_string("from storage")
assert tf.io.gfile.GFile(f"{uri}/b.txt").read() == "from storage"
# an object's own bytes come back as stored, even when they name the local endpoint
bucket.blob(prefix + "/links.txt").upload_from_string(env.endpoint + "/storage/v1/b")
assert tf.io.gfile.GFile(f"{uri}/links.txt").read() == env.endpoint + "/storage/v1/b"
tf.io.gfile.remove(f"{uri}/links.txt")
assert sorted(tf.io.gfile.listdir(uri)) == ["a.txt", "b.txt"]
with tf.io.TFRecordWriter(f"{uri}/data.tfrecord") as writer:
    for i in range(3):
        writer.write(f"record {i}".encode())
records = [r.numpy() for r in tf.data.TFRecordDataset(f"{uri}/data.tfrecord")]
assert records == [b"record 0", b"record 1", b"record 2"], records
tf.io.gfile.rename(f"{uri}/a.txt", f"{uri}/c.txt")
tf.io.gfile.remove(f"{uri}/b.txt")
assert sorted(tf.io.gfile.listdir(uri)) == ["c.txt", "data.tfrecord"]
print("KERNEL OK")
"""


def test_tensorflow_gs_in_the_kernel(local_env, tmp_path):
    """A kernel is its own process beside the services (tests serve them in-process, and
    TensorFlow's file calls hold the GIL: they would wait on a server in their own
    process), so the learner's notebook runs as a subprocess."""
    import os
    import subprocess
    import sys

    script = tmp_path / "kernel.py"
    script.write_text(f"PREFIX = {uuid.uuid4().hex[:6]!r}\n" + KERNEL)
    result = subprocess.run([sys.executable, str(script)], env=dict(os.environ),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "KERNEL OK" in result.stdout, result.stderr[-3000:]
