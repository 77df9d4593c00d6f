"""The server under `mien serve` drops clients that trickle their request headers: a real
uvicorn on a local socket, raw TCP clients."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

pytest.importorskip("uvicorn")

from mien.api.server import header_timeout_protocol  # noqa: E402

TIMEOUT_S = 0.5
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


async def hello(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def address():
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(hello, http=header_timeout_protocol(TIMEOUT_S), lifespan="off",
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield sock.getsockname()
    server.should_exit = True
    thread.join(10)


def read_all(conn: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed."""
    conn.settimeout(10)
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data, time.perf_counter()


def test_trickled_headers_get_408_at_the_deadline(address):
    import select

    with socket.create_connection(address) as conn:
        start = time.perf_counter()
        sent = 0
        # A byte every 0.1 s, for up to 3 s: a clock that each byte reset would never run out.
        while sent < 30 and not select.select([conn], [], [], 0.1)[0]:
            conn.send(REQUEST[sent % 10:sent % 10 + 1])
            sent += 1
        data, closed = read_all(conn)
    assert sent < 30 and TIMEOUT_S <= closed - start
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body) == {"error": "request_timeout", "detail": (
        "the request headers did not arrive within 0.5 s; send them at once")}


def test_a_silent_connection_is_closed_without_a_reply(address):
    with socket.create_connection(address) as conn:
        start = time.perf_counter()
        data, closed = read_all(conn)  # fails if the server keeps it open 10 s
    assert data == b"" and TIMEOUT_S <= closed - start


def test_prompt_requests_are_served_and_the_next_one_is_timed_too(address):
    with socket.create_connection(address) as conn:
        conn.sendall(REQUEST + b"GET / HTTP/1.1\r\n")  # the second one's headers never end
        data, _ = read_all(conn)
    first, _, rest = data.partition(b"ok")
    assert first.startswith(b"HTTP/1.1 200 ") and rest.startswith(b"HTTP/1.1 408 ")
