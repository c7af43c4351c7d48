"""The HTTP layer's streamed responses (chunked encoding), on an in-process server: each
chunk leaves as it is made, an error before the first chunk is an ordinary JSON error, a
failure later cuts the stream, and a client that hangs up stops the generator."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from labkit.services import http

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server():
    router = http.Router()
    closed = threading.Event()

    def slow(r):
        def chunks():
            try:
                for i in range(3):
                    yield f"data: {i}\n\n".encode()
                    time.sleep(0.3)
            finally:
                closed.set()
        return http.StreamedResponse(chunks(), {"Content-Type": "text/event-stream"})

    def refused(r):
        def chunks():
            raise http.HttpError(400, http.error_body(400, "INVALID_ARGUMENT", "no"))
            yield b""
        return http.StreamedResponse(chunks())

    def broken_later(r):
        def chunks():
            yield b"first"
            raise KeyError("a bug")
        return http.StreamedResponse(chunks())

    router.add("GET", "/slow", slow)
    router.add("GET", "/refused", refused)
    router.add("GET", "/broken", broken_later)
    srv = http.LocalServer(router, TOKEN)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.closed = closed
    yield srv
    srv.shutdown()
    srv.server_close()


def test_chunks_arrive_as_they_are_made(server):
    start = time.perf_counter()
    with requests.get(f"http://127.0.0.1:{server.port}/slow", headers=AUTH, stream=True,
                      timeout=10) as r:
        assert r.headers["Transfer-Encoding"] == "chunked"
        lines = r.iter_lines()
        assert next(lines) == b"data: 0"
        first = time.perf_counter() - start
        rest = [line for line in lines if line]
    assert first < 0.25 and rest == [b"data: 1", b"data: 2"]
    # the connection stays usable after the last chunk
    with requests.Session() as s:
        for _ in range(2):
            assert s.get(f"http://127.0.0.1:{server.port}/slow", headers=AUTH,
                         timeout=10).content.count(b"data:") == 3


def test_an_error_before_the_first_chunk_is_a_json_error(server):
    r = requests.get(f"http://127.0.0.1:{server.port}/refused", headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["message"] == "no"


def test_a_failure_after_the_first_chunk_cuts_the_stream(server):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = requests.get(f"http://127.0.0.1:{server.port}/broken", headers=AUTH,
                         timeout=10).content


def test_a_client_that_hangs_up_closes_the_generator(server):
    server.closed.clear()
    with requests.get(f"http://127.0.0.1:{server.port}/slow", headers=AUTH, stream=True,
                      timeout=10) as r:
        next(r.iter_content(4))
    assert server.closed.wait(5)
