"""The services-side handle of a prebuilt model server: one child process per loaded model.

ModelServer takes a started `python -m labkit.vertex.serving.host ENGINE` (see host.py for
the protocol), tells it which artifact to load, waits until it has, and forwards predict
calls to it (requests pickled, replies as JSON lines); a lock keeps one request
at a time on the pipe, so server threads may share it. Importing scikit-learn or
TensorFlow takes seconds, so one spare child per engine already used waits with its
framework imported: the next deploy of that engine only loads its model.
- A model the child cannot load fails with Vertex's "Model server never became ready: ..."
  failed precondition, carrying the framework's reason; so does a pickle written by a newer
  scikit-learn or XGBoost than the container's (the child reads the version before it
  unpickles anything, and the services log a warning that says why).
- A prediction the framework rejects is the prebuilt container's 400 ("Prediction failed:
  Exception during sklearn prediction: ...").
- A child that exits or stops answering mid-request (timeouts everywhere, never a hang) is
  an INTERNAL error that says so; the next request starts a fresh child.
- close() ends the child; a child also exits when its stdin closes or its parent is gone.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import pickle
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from labkit.vertex import errors
from labkit.vertex.serving.prebuilt import LABELS

HOST = "labkit.vertex.serving.host"
log = logging.getLogger("labkit.vertex.serving")
LOAD_TIMEOUT_S = 180      # TensorFlow's import alone takes seconds on a busy laptop
PREDICT_TIMEOUT_S = 300
LOG_LIMIT = 1 << 20       # the child's stderr is kept for error messages, trimmed past this


def _frame(request: dict) -> bytes:
    # pickle only travels services -> child (the child trusts its parent); the child's
    # replies are JSON, since the child runs the learner's code.
    data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    return b"%d\n" % len(data) + data


class _Gone(Exception):
    """The child exited, or did not answer in time (then it has been killed)."""


_spares: dict[str, tuple[subprocess.Popen, object]] = {}  # engine -> (child, its log)
_spares_lock = threading.Lock()


def _spawn(engine: str) -> tuple[subprocess.Popen, object]:
    log = tempfile.TemporaryFile(mode="a+b", prefix="labkit-model-server-")
    process = subprocess.Popen([sys.executable, "-m", HOST, engine], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=log, close_fds=True)
    return process, log


def _take(engine: str) -> tuple[subprocess.Popen, object]:
    """A started model server child for engine (the spare, if one waits), not yet loaded."""
    with _spares_lock:
        spare = _spares.pop(engine, None)
    if spare is not None and spare[0].poll() is None:
        return spare
    if spare is not None:
        _discard(spare)
    return _spawn(engine)


def _replenish(engine: str) -> None:
    with _spares_lock:
        if engine not in _spares:
            _spares[engine] = _spawn(engine)


def _discard(spare: tuple[subprocess.Popen, object]) -> None:
    process, log = spare
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()  # a spare exits when its stdin closes
        except OSError:
            pass
    if process.poll() is None:
        process.terminate()
    log.close()


@atexit.register
def close_spares() -> None:
    with _spares_lock:
        spares = list(_spares.values())
        _spares.clear()
    for spare in spares:
        _discard(spare)


class ModelServer:
    def __init__(self, engine: str, folder: Path, model_file: Path, uri: str,
                 framework_version: str | None = None):
        self.engine = engine
        self.framework_version = framework_version  # the image's, e.g. "1.6"
        self.label = LABELS[engine]
        self.folder, self.model_file, self.uri = folder, model_file, uri
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.closed = False
        self.pid: int | None = None  # the child's, for tests and diagnostics
        with self.lock:
            self._start()

    # ---- the child
    def _start(self) -> None:
        self.process, self.log = _take(self.engine)
        self.buffer = bytearray()
        os.set_blocking(self.process.stdin.fileno(), False)
        where = f"{self.uri}/{self.model_file.name}"
        load = {"load": {"folder": str(self.folder), "file": str(self.model_file),
                         "framework_version": self.framework_version}}
        try:
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            self._send(_frame(load), deadline)
            ready = self._receive(deadline - time.monotonic())
        except _Gone as exc:
            tail = self._tail()
            self._stop()
            raise errors.failed_precondition(
                f"Model server never became ready: the {self.label} prediction container "
                f"{exc} while loading {where}.{tail}") from None
        finally:
            _replenish(self.engine)
        if ready.get("ready"):
            self.pid = ready.get("pid")
            return
        self._stop()
        if ready.get("error") == "container":
            raise errors.VertexError(ready["status"], ready["message"])
        if ready.get("error") == "incompatible":
            log.warning("Model server never became ready: %s", ready.get("message"))
            raise errors.failed_precondition(
                f"Model server never became ready. Please validate that your model file or "
                f"container configuration are valid. {ready.get('message')}")
        raise errors.failed_precondition(
            f"Model server never became ready: failed to load {where} with the {self.label} "
            f"prediction container: {ready.get('type')}: {ready.get('message')}")

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=2)  # it exits when its stdin closes
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.log.close()

    def _tail(self) -> str:
        try:
            self.log.seek(0, os.SEEK_END)
            self.log.seek(max(0, self.log.tell() - 2000))
            lines = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
        except (OSError, ValueError):
            return ""
        return (" Its last output: " + " | ".join(lines)) if lines else ""

    def _send(self, line: bytes, deadline: float) -> None:
        fd = self.process.stdin.fileno()
        view = memoryview(line)
        while view:
            try:
                view = view[os.write(fd, view):]  # non-blocking: a full pipe waits below
                continue
            except BlockingIOError:
                pass
            except BrokenPipeError:
                raise _Gone(self._exited()) from None
            left = deadline - time.monotonic()
            if left <= 0:
                self.process.kill()
                raise _Gone("did not read the request in time (it was stopped)")
            select.select([], [fd], [], left)

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        end = self.buffer.find(b"\n")
        while end < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                self.process.kill()
                raise _Gone(f"did not answer within {timeout:.0f} s (it was stopped)")
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise _Gone(self._exited())
            start = len(self.buffer)
            self.buffer += chunk
            end = self.buffer.find(b"\n", start)
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        return json.loads(line)

    def _exited(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return f"exited (exit code {code})"

    # ---- requests
    def _call(self, request: dict) -> dict:
        line = _frame(request)
        with self.lock:
            if self.closed:
                raise errors.failed_precondition("The model server has been shut down (the "
                                                 "model was undeployed).")
            if self.process is None or self.process.poll() is not None:
                self._stop()
                self._start()  # a crashed child is started again for the next request
            try:
                self._send(line, time.monotonic() + PREDICT_TIMEOUT_S)
                answer = self._receive(PREDICT_TIMEOUT_S)
            except _Gone as exc:
                tail = self._tail()
                self._stop()
                if self.closed:
                    raise errors.failed_precondition(
                        "The model server was shut down while predicting (the model was "
                        "undeployed).") from None
                raise errors.VertexError(
                    "INTERNAL", f"The {self.label} model server {exc} while predicting; the "
                                f"next request starts it again.{tail}") from None
            finally:
                self._trim_log()
        if answer.get("error"):
            raise errors.failed_precondition(
                f'{{"error": "Prediction failed: Exception during {self.label} prediction: '
                f'{answer.get("message")}"}}')
        return answer

    def _trim_log(self) -> None:
        try:
            if os.fstat(self.log.fileno()).st_size > LOG_LIMIT:
                self.log.truncate(0)  # opened for appending: the child keeps writing at the end
        except (OSError, ValueError):
            pass

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        request: dict = {"instances": instances}
        if parameters:
            request["parameters"] = parameters
        return self._call(request)["predictions"]

    def gradients(self, points: list, names: list | None, key: str | None,
                  index: int | None) -> tuple[list, list]:
        """TensorFlow only: (gradients, values) of output key[:, index] at points."""
        answer = self._call({"op": "gradients", "points": points, "names": names,
                             "key": key, "index": index})
        return answer["gradients"], answer["values"]

    def close(self) -> None:
        self.closed = True
        if not self.lock.acquire(blocking=False):
            process = self.process  # busy in a prediction: stop the child, which ends it
            if process is not None:
                process.terminate()
            if not self.lock.acquire(timeout=10):
                if process is not None:
                    process.kill()
                return
        try:
            self._stop()
        finally:
            self.lock.release()
