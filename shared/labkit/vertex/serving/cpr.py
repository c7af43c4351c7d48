"""Custom prediction routines, served by google-cloud-aiplatform's own model server.

CprModelServer (the server inside images that LocalModel.build_cpr_model builds) runs in
a subprocess without Docker, bound to 127.0.0.1 (its own __main__ binds 0.0.0.0). It gets
the prediction-container environment Vertex gives: AIP_HTTP_PORT, AIP_HEALTH_ROUTE,
AIP_PREDICT_ROUTE, AIP_STORAGE_URI (the artifact folder on disk), AIP_MODE, plus the
model's containerSpec env (PREDICTOR_MODULE / PREDICTOR_CLASS, HANDLER_*). The predictor's
module is imported from the artifact folder (upload predictor.py beside the model file),
then from any PYTHONPATH the containerSpec env sets.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from labkit.vertex import errors
from labkit.vertex.serving import container_env

STARTUP_TIMEOUT_S = 60
SERVE = ("import os, uvicorn\n"
         "from google.cloud.aiplatform.prediction.model_server import CprModelServer\n"
         "uvicorn.run(CprModelServer().app, host='127.0.0.1', "
         "port=int(os.environ['AIP_HTTP_PORT']), log_level='warning')\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CprServer:
    engine = "cpr"

    def __init__(self, model: dict, folder: Path):
        if not folder.is_dir():
            raise errors.invalid(f"Model directory {model.get('artifactUri')} does not exist.")
        self.port = _free_port()
        self.workdir = tempfile.TemporaryDirectory(prefix="labkit-cpr-")
        spec_env = container_env(model)
        paths = [str(folder), spec_env.get("PYTHONPATH", ""), os.environ.get("PYTHONPATH", "")]
        env = {
            **os.environ,
            "HANDLER_MODULE": "google.cloud.aiplatform.prediction.handler",
            "HANDLER_CLASS": "PredictionHandler",
            **spec_env,
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "AIP_HTTP_PORT": str(self.port), "AIP_HEALTH_ROUTE": "/health",
            "AIP_PREDICT_ROUTE": "/predict", "AIP_STORAGE_URI": str(folder),
            "AIP_MODE": "PREDICTION",
        }
        self.log = open(Path(self.workdir.name) / "server.log", "w+b")
        self.process = subprocess.Popen([sys.executable, "-c", SERVE], env=env,
                                        cwd=self.workdir.name, stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                tail = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
                self.close()
                raise errors.failed_precondition(
                    "Model server never became ready: the custom prediction routine exited: "
                    + " | ".join(tail))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise errors.failed_precondition("Model server never became ready within "
                                         f"{STARTUP_TIMEOUT_S} s.")

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        body = {"instances": instances}
        if parameters:
            body["parameters"] = parameters
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/predict", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise errors.failed_precondition(
                f'{{"error": "Prediction failed: {detail}"}}') from None
        except OSError as exc:
            raise errors.VertexError("INTERNAL", f"The model server did not answer: {exc}") \
                from None
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise errors.failed_precondition(
                "The custom prediction routine's postprocess must return a JSON object with "
                "a 'predictions' list.")
        return answer["predictions"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        self.workdir.cleanup()
