"""A prebuilt prediction container's model server, one child process per loaded model.

    python -m labkit.vertex.serving.host ENGINE

It imports the framework (so a started spare deploys quickly), reads one request
{"load": {"folder": ..., "file": ...}}, loads that artifact once, then answers requests
over its stdin/stdout (nothing listens on the network). The services process starts it
through `labkit.vertex.serving.process` and never unpickles the learner's file itself.

Requests come in as a length line then that many bytes of a pickle from the services
process, the child's trusted parent (writing floats as JSON text costs more than a small
model's prediction). Replies go out as JSON lines: the services process never unpickles
anything from a child that runs the learner's code. The replies:
- once, after loading: {"ready": true, "pid": N}; or, if the model cannot be loaded,
  {"error": "load", "type": ..., "message": ...} (or {"error": "container", "status": ...,
  "message": ...} for what the container itself refuses, or {"error": "incompatible",
  "message": ...} for an artifact written by a newer framework than the container's) and it
  exits;
- one per request {"instances": [...], "parameters": {...}}: {"predictions": [...]}
  or {"error": "predict", "message": <the framework's message>};
- per {"op": "gradients", "points": [[...]], "names": [...] | null, "key": ..., "index": ...}
  (TensorFlow): {"gradients": [[...]], "values": [...]}.
The protocol has private copies of stdin/stdout: what the model prints goes to stderr.
It exits when its stdin closes or when the services process (its parent) is gone.
This module imports nothing of the services.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import sys
import threading
import time
from pathlib import Path

from labkit.vertex.serving import prebuilt


def _exit_with_parent() -> None:
    """Stop when the parent dies, even while a prediction keeps the main loop busy.

    (PR_SET_PDEATHSIG would fire when the parent *thread* that started the child ends, and
    the services process starts children from short-lived request threads.)"""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


PRELOAD = {  # what the prebuilt images import before any model; the pickles need them
    "sklearn": ["numpy", "joblib", "sklearn.base", "sklearn.linear_model", "sklearn.ensemble",
                "sklearn.pipeline", "sklearn.preprocessing", "sklearn.tree"],
    "xgboost": ["numpy", "joblib", "sklearn.base", "xgboost"],
    "tensorflow": ["numpy", "tensorflow"],
}


def _preload(engine: str) -> None:
    for name in PRELOAD[engine]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - loading the model says what is missing
            continue


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _answer(predictor, request: dict) -> dict:
    try:
        if request.get("op") == "gradients":
            if not hasattr(predictor, "gradients"):
                raise ValueError("gradients are only computed for TensorFlow SavedModels")
            grads, values = predictor.gradients(request["points"], request.get("names"),
                                                request.get("key"), request.get("index"))
            return {"gradients": grads, "values": values}
        return {"predictions": predictor.predict(request["instances"],
                                                 request.get("parameters"))}
    except Exception as exc:  # noqa: BLE001 - any framework error is the caller's input
        return {"error": "predict", "message": str(exc)}


def _read(stream) -> dict | None:
    """The next request, or None once the services close the pipe."""
    header = stream.readline()
    if not header.strip():
        return None
    size = int(header)
    body = stream.read(size)
    if len(body) != size:
        return None
    return pickle.loads(body)  # noqa: S301 - from the services process, our parent


def main(argv: list[str]) -> int:
    [engine] = argv
    _exit_with_parent()
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # the model's prints must not corrupt the replies

    def send(message: dict) -> None:
        try:
            line = json.dumps(message, default=_plain)
        except (TypeError, ValueError) as exc:
            line = json.dumps({"error": "predict",
                               "message": f"the prediction is not JSON serializable: {exc}"})
        replies.write(line.encode() + b"\n")
        replies.flush()

    _preload(engine)
    load = _read(requests)
    if not isinstance(load, dict) or "load" not in load:
        return 2  # stdin closed (an unused spare) or not the services
    try:
        predictor = prebuilt.open_predictor(engine, Path(load["load"]["folder"]),
                                            Path(load["load"]["file"]),
                                            load["load"].get("framework_version"))
    except prebuilt.IncompatibleArtifact as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)  # the container's log line
        send({"error": "incompatible", "message": str(exc)})
        return 1
    except prebuilt.ContainerError as exc:
        send({"error": "container", "status": exc.status, "message": str(exc)})
        return 1
    except BaseException as exc:  # noqa: BLE001 - a pickle may even raise SystemExit
        send({"error": "load", "type": type(exc).__name__, "message": str(exc)})
        return 1
    send({"ready": True, "pid": os.getpid()})
    while (request := _read(requests)) is not None:
        send(_answer(predictor, request))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
