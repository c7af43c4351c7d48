"""The HTTP layer every service shares, on an in-process server with a small router.

Before: listen backlog 5, no idle timeout, the body read before the token check,
Content-Length -1 blocked, OPTIONS/TRACE answered with the standard library's HTML, a
handler's exception was a 500 that Google's clients retry for minutes, and a header
value outside Latin-1 dropped the connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from labkit.services import http

TOKEN = "t0ken"
KEY = "k" * 32


@pytest.fixture(scope="module")
def server():
    router = http.Router()
    seen = []

    def echo(r: http.Request):
        seen.append(len(r.body))
        return {"bytes": len(r.body), "base": r.base_url}

    def broken(r: http.Request):
        raise KeyError("a bug")

    router.add("POST", "/echo", echo)
    router.add("GET", "/echo", echo)
    router.add("GET", "/broken", broken)
    router.add("GET", "/header", lambda r: http.Response(200, b"x", {"Content-Type": "text/植物"}))
    router.add("GET", "/open", lambda r: {"ok": True}, needs_token=False)
    srv = http.LocalServer(router, TOKEN, KEY)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.seen = seen
    yield srv
    srv.shutdown()
    srv.server_close()


def _raw(server, data: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")]
                    if length and len(rest) >= length[0]:
                        break
        except TimeoutError:
            pass
    return b"".join(chunks)


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _json(reply: bytes) -> dict:
    return json.loads(reply.partition(b"\r\n\r\n")[2])


def test_token_or_path_key_is_checked_before_the_body_is_read(server):
    before = len(server.seen)
    head = (b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 52428800\r\n\r\n")
    reply = _raw(server, head + b"x" * 1000)  # 50 MB announced, never sent
    assert _status(reply) == 401
    assert b"Connection: close" in reply
    assert len(server.seen) == before  # the handler never ran
    good = requests.post(f"http://127.0.0.1:{server.port}/labkit-key/{KEY}/echo", data=b"abc")
    assert good.json() == {"bytes": 3, "base": f"http://127.0.0.1:{server.port}/labkit-key/{KEY}"}
    bearer = requests.post(f"http://127.0.0.1:{server.port}/echo", data=b"abcd",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.json()["bytes"] == 4


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"99999999999999999999"])
def test_bad_content_length_is_a_json_400(server, length):
    reply = _raw(server, b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                 + TOKEN.encode() + b"\r\nContent-Length: " + length + b"\r\n\r\nxyz")
    assert _status(reply) in (400, 413)
    assert "error" in _json(reply)


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "BREW", "CONNECT"])
def test_every_method_answers_json(server, method):
    reply = _raw(server, f"{method} /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert _status(reply) in (404, 405)
    assert _json(reply)["error"]["code"] == _status(reply)


def test_a_garbled_request_line_answers_json(server):
    reply = _raw(server, b"GET /echo HTTP/9.9 extra\r\n\r\n")
    assert 400 <= _status(reply) < 500
    assert "error" in _json(reply)


def test_a_bug_is_a_non_retryable_error_that_names_it(server):
    answer = requests.get(f"http://127.0.0.1:{server.port}/broken",
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 501  # Google's clients retry 500 and 503, not 501
    assert "KeyError" in answer.json()["error"]["message"]
    assert requests.get(f"http://127.0.0.1:{server.port}/open").json() == {"ok": True}


def test_header_values_outside_latin1_do_not_drop_the_connection(server):
    answer = requests.get(f"http://127.0.0.1:{server.port}/header",
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/%")


def test_a_burst_of_connections_is_accepted(server):
    """40 clients connect at once; with the standard library's backlog of 5 the surplus
    waited for SYN retransmits (p50 1 s)."""
    def one(_):
        started = time.monotonic()
        requests.get(f"http://127.0.0.1:{server.port}/open", timeout=10).raise_for_status()
        return time.monotonic() - started

    with ThreadPoolExecutor(40) as pool:
        durations = list(pool.map(one, range(40)))
    assert len(durations) == 40
    assert server.request_queue_size >= 64


def test_idle_connections_are_closed(server, monkeypatch):
    monkeypatch.setattr(http._Handler, "timeout", 0.5)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        assert sock.recv(1) == b""  # the server hung up on the idle socket
