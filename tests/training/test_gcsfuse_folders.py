"""Cloud Storage FUSE folders: a folder a job makes under /gcs (os.makedirs) is a zero-byte
object 'folder/' in listings, as on Vertex AI; folders the services make to hold objects are
not. Through the real Vertex AI SDK and Cloud Storage client."""

from __future__ import annotations

import textwrap
import uuid

from google.cloud import aiplatform, storage

IMAGE = "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest"


def test_folders_made_through_gcs_are_folder_objects(local_env):
    bucket = storage.Client().bucket(local_env.bucket)
    prefix = f"tests/fuse-{uuid.uuid4().hex[:8]}"
    bucket.blob(f"{prefix}/data/x.csv").upload_from_string("a\n1\n")  # folders via the API
    script = textwrap.dedent(f"""
        import os
        root = "/gcs/{bucket.name}/{prefix}"
        os.makedirs(root + "/ckpt/epoch", exist_ok=True)
        with open(root + "/ckpt/epoch/w.h5", "w") as f:
            f.write("1")
        os.makedirs(root + "/empty")
        os.makedirs(root + "/data", exist_ok=True)  # already there: no new object
    """)
    job = aiplatform.CustomJob(
        display_name="fuse-folders",
        worker_pool_specs=[{"machine_spec": {"machine_type": "n1-standard-4"},
                            "replica_count": 1, "container_spec": {
                                "image_uri": IMAGE, "command": ["python", "-c", script],
                                "args": [f"gs://{bucket.name}/{prefix}"]}}])
    job.run()
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    client = storage.Client()
    names = [b.name for b in client.list_blobs(bucket.name, prefix=f"{prefix}/")]
    assert names == [f"{prefix}/ckpt/", f"{prefix}/ckpt/epoch/", f"{prefix}/ckpt/epoch/w.h5",
                     f"{prefix}/data/x.csv", f"{prefix}/empty/"]
    folder = bucket.get_blob(f"{prefix}/ckpt/")
    assert folder.size == 0 and folder.download_as_bytes() == b""
    page = client.list_blobs(bucket.name, prefix=f"{prefix}/", delimiter="/")
    items = [b.name for b in page]
    assert items == [] and sorted(page.prefixes) == [
        f"{prefix}/ckpt/", f"{prefix}/data/", f"{prefix}/empty/"]
    inside = [b.name for b in client.list_blobs(bucket.name, prefix=f"{prefix}/empty/",
                                                delimiter="/")]
    assert inside == [f"{prefix}/empty/"]  # a folder object lists under its own prefix
    bucket.blob(f"{prefix}/empty/").delete()
    assert bucket.get_blob(f"{prefix}/empty/") is None
    bucket.blob(f"{prefix}/ckpt/").delete()  # the folder object only; its files stay
    assert [b.name for b in client.list_blobs(bucket.name, prefix=f"{prefix}/ckpt/")] == [
        f"{prefix}/ckpt/epoch/", f"{prefix}/ckpt/epoch/w.h5"]
