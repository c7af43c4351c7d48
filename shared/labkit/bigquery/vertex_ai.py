"""How BigQuery reaches Vertex AI for remote models: this services process's own Vertex AI
routes (labkit.genai), called over HTTP with the workspace token, the way vertex/bq.py calls
the local BigQuery. Standard library only: the BigQuery room builds it at start-up."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def vertex_region(location: str) -> str:
    """BigQuery's multi-regions call Vertex AI in one of their regions."""
    return {"us": "us-central1", "eu": "europe-west4"}.get(location.lower(), location.lower())


class VertexCaller:
    """POSTs to this services process's Vertex AI routes with the workspace token."""

    def __init__(self, endpoint: str, token: str):
        self.endpoint, self.token = endpoint.rstrip("/"), token

    def call(self, model, project: str, method: str, body: dict) -> dict:
        """`model`: a remote model (its options name the Vertex AI model and location). The
        JSON answer; a Vertex AI error raises VertexCallError with its message."""
        region = vertex_region(model.options["location"])
        url = (f"{self.endpoint}/v1/projects/{project}/locations/{region}/publishers/google/"
               f"models/{model.options['model_id']}:{method}")
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read()).get("error", {})
            except ValueError:
                error = {}
            raise VertexCallError(error.get("code", exc.code),
                                  error.get("message") or str(exc)) from None
        except (urllib.error.URLError, OSError) as exc:  # the services process is going away
            raise VertexCallError(503, f"Vertex AI is unavailable: {exc}") from None


class VertexCallError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message
