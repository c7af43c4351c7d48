"""Prebuilt model servers run the learner's artifact in a child process of their own, never
in the services process: unpickling, crashes, hangs, concurrency and clean-up."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import requests
from google.api_core import exceptions
from google.cloud import aiplatform

from labkit.vertex import errors

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


class Planted:
    """A pickle that runs code when it is loaded, as a tampered model.pkl would: it records
    the loading process's pid in `marker`, then becomes `model`."""

    def __init__(self, marker: str, model):
        self.marker, self.model = marker, model

    def __reduce__(self):
        code = ("(__import__('pathlib').Path(marker).write_text(str(__import__('os').getpid()))"
                ", __import__('pickle').loads(model))[1]")
        return eval, (code, {"marker": self.marker, "model": pickle.dumps(self.model)})


class Scripted:
    """A pickle that becomes an object whose predict runs `body` (an expression of X, the
    instances as an array), e.g. to crash or hang the model server."""

    def __init__(self, body: str):
        self.body = body

    def __reduce__(self):
        code = (f"type('Scripted', (), {{'predict': lambda self, X: ({self.body})}})()")
        return eval, (code, {})


def _health_pid(local_env) -> int:
    token = (local_env.workspace / "token").read_text().strip()
    answer = requests.get(f"{local_env.endpoint}/labkit/health",
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return answer.json()["pid"]


def _upload(bucket, obj, name="model.pkl"):
    prefix = f"tests/vertex/servers-{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    if name == "model.joblib":
        joblib.dump(obj, buffer)
    else:
        pickle.dump(obj, buffer)
    bucket.blob(f"{prefix}/{name}").upload_from_string(buffer.getvalue())
    return aiplatform.Model.upload(display_name=f"s-{uuid.uuid4().hex[:6]}",
                                   artifact_uri=f"gs://{bucket.name}/{prefix}",
                                   serving_container_image_uri=SKLEARN_IMAGE)


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_the_pickle_is_loaded_outside_the_services_process(endpoint, bucket, sklearn_uri,
                                                           data, local_env, tmp_path):
    marker = tmp_path / "loaded-by"
    model = _upload(bucket, Planted(str(marker), sklearn_uri[1]))
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    server_pid = int(marker.read_text())
    services_pid = _health_pid(local_env)
    assert server_pid != services_pid
    assert os.getppid() != server_pid  # a child of the services, not of this test
    assert endpoint.predict(instances=data[0][:4].tolist()).predictions == \
        sklearn_uri[1].predict(data[0][:4]).tolist()
    endpoint.undeploy_all()
    assert _gone(server_pid), "the model server outlived its undeploy"
    model.delete()


def test_a_crash_mid_request_is_an_error_and_the_next_request_restarts(endpoint, bucket):
    model = _upload(bucket, Scripted("__import__('os')._exit(3) if X[0][0] == 99 else "
                                     "X[:, 0] * 2"))
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    assert endpoint.predict(instances=[[1.0, 0.0]]).predictions == [2.0]
    with pytest.raises(exceptions.GoogleAPICallError, match=r"exited \(exit code 3\)"):
        endpoint.predict(instances=[[99.0, 0.0]])
    assert endpoint.predict(instances=[[2.0, 0.0]]).predictions == [4.0]
    endpoint.undeploy_all()
    model.delete()


def test_concurrent_requests_get_their_own_answers(endpoint, sklearn_model, sklearn_uri,
                                                   data):
    sklearn_model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    rows = data[0][:40]
    want = sklearn_uri[1].predict(rows).tolist()

    def ask(i):
        return endpoint.predict(instances=rows[i:i + 1 + i % 3].tolist()).predictions

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(len(rows) - 3)))
    for i, got in enumerate(answers):
        assert got == want[i:i + 1 + i % 3]


def test_framework_errors_keep_the_prebuilt_message(endpoint, sklearn_model):
    sklearn_model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    with pytest.raises(exceptions.BadRequest,
                       match="Prediction failed: Exception during sklearn prediction: .*features"):
        endpoint.predict(instances=[[1.0, 2.0]])


def test_a_pickle_that_exits_while_loading_fails_the_deploy(endpoint, bucket):
    model = _upload(bucket, _Exit())
    with pytest.raises(exceptions.GoogleAPICallError,
                       match="never became ready: the sklearn prediction container exited"):
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    model.delete()


class _Exit:
    def __reduce__(self):
        return os._exit, (5,)


# ---- the handle itself, in this test process
@pytest.fixture()
def folder(tmp_path):
    return tmp_path


def _server(folder, obj):
    from labkit.vertex.serving.process import ModelServer

    joblib.dump(obj, folder / "model.joblib")
    return ModelServer("sklearn", folder, folder / "model.joblib", "gs://b/m")


def test_a_hang_times_out_and_the_server_recovers(folder, monkeypatch):
    from labkit.vertex.serving import process

    server = _server(folder, Scripted("__import__('time').sleep(60) if X[0][0] < 0 else X[:, 0]"))
    try:
        monkeypatch.setattr(process, "PREDICT_TIMEOUT_S", 1)
        first = server.pid
        with pytest.raises(errors.VertexError, match="did not answer within 1 s") as caught:
            server.predict([[-1.0]])
        assert caught.value.rpc_status == "INTERNAL"
        assert _gone(first)
        assert server.predict([[3.0]]) == [3.0]
        assert server.pid != first
    finally:
        server.close()


def test_unloadable_model_reports_the_framework_reason(folder):
    (folder / "model.joblib").write_bytes(b"not a pickle")
    from labkit.vertex.serving.process import ModelServer

    with pytest.raises(errors.VertexError, match="never became ready: failed to load "
                                                 "gs://b/m/model.joblib with the sklearn "
                                                 "prediction container: .*Error"):
        ModelServer("sklearn", folder, folder / "model.joblib", "gs://b/m")


def test_model_prints_do_not_break_the_protocol(folder):
    server = _server(folder, Scripted("(print('noise', flush=True), X[:, 0] + 1)[1]"))
    try:
        assert server.predict([[1.0], [2.0]]) == [2.0, 3.0]
    finally:
        server.close()
    assert _gone(server.pid)


def test_model_server_exits_with_its_parent(folder):
    joblib.dump(Scripted("X[:, 0]"), folder / "model.joblib")
    parent = subprocess.run(
        [sys.executable, "-c",
         "import os, sys; from pathlib import Path\n"
         "from labkit.vertex.serving.process import ModelServer\n"
         "f = Path(sys.argv[1]); s = ModelServer('sklearn', f, f / 'model.joblib', 'gs://b')\n"
         "print(s.pid, flush=True); os._exit(0)  # no atexit, no close: as if killed",
         str(folder)], capture_output=True, text=True, timeout=120, check=True)
    assert _gone(int(parent.stdout.split()[0]))


def test_the_model_server_imports_nothing_of_the_services():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, labkit.vertex.serving.host\n"
                               "print([m for m in sys.modules if m.startswith('labkit.')])"],
        capture_output=True, text=True, check=True).stdout
    for server_side in ("labkit.services.http", "labkit.services.wiring",
                        "labkit.services.daemon", "labkit.vertex.errors",
                        "labkit.vertex.service"):
        assert f"'{server_side}'" not in loaded


def test_array_of_numpy_values_from_a_caller_in_the_services(folder):
    server = _server(folder, Scripted("X.sum(axis=1)"))
    try:
        assert server.predict([[np.float64(1.5), np.int64(2)]]) == [3.5]
    finally:
        server.close()
