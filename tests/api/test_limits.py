"""Every bad upload or overload gets a 4xx/5xx JSON error {"error", "detail"}, never a 500."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import numpy as np
import pytest
from conftest import BlockingClassifier, png_bytes
from fastapi.testclient import TestClient
from synthetic import bomb_png

JPEG = {"Content-Type": "image/jpeg"}


def assert_error(r, status: int, error: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == error
    assert body["detail"]
    return body["detail"]


def test_oversized_upload_is_413_whichever_way_it_comes(make_app, face_photo):
    client = TestClient(make_app(max_upload_bytes=len(face_photo) - 1))
    # Raw body with Content-Length: refused before the body is read.
    assert_error(client.post("/v1/analyze", content=face_photo, headers=JPEG),
                 413, "payload_too_large")
    # Multipart: the file part alone is over the limit though the request fits.
    detail = assert_error(client.post("/v1/analyze", files={
        "file": ("big.jpg", face_photo, "image/jpeg")}), 413, "payload_too_large")
    assert "big.jpg" in detail
    # Streamed without Content-Length (chunked): refused as the bytes pass the limit.
    client = TestClient(make_app(max_upload_bytes=1000))

    def chunks():
        for _ in range(200):
            yield b"\xff" * 1000

    assert_error(client.post("/v1/analyze", content=chunks(), headers=JPEG),
                 413, "payload_too_large")


def test_413_names_the_size_of_the_file(make_app, face_photo):
    client = TestClient(make_app(max_upload_bytes=1000))
    for path in ("/v1/analyze", "/v1/analyze/batch"):
        r = client.post(path, files=[("files" if "batch" in path else "file",
                                      ("big.jpg", face_photo, "image/jpeg"))])
        detail = r.json()[0]["detail"] if "batch" in path else assert_error(
            r, 413, "payload_too_large")
        assert detail.startswith(f"big.jpg: {len(face_photo):,} bytes exceeds the limit of 1,000")


def test_truncated_image_is_422(client, two_faces):
    detail = assert_error(client.post("/v1/analyze", files={
        "file": ("cut.jpg", two_faces[:3000], "image/jpeg")}), 422, "unreadable_image")
    assert "cut.jpg" in detail and "truncated" in detail


@pytest.mark.parametrize("data", [
    b"just some text, not a picture",
    b"%PDF-1.7\n" + bytes(200),
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
])
def test_non_image_bytes_are_415_even_when_declared_as_jpeg(client, data):
    assert_error(client.post("/v1/analyze", content=data, headers=JPEG),
                 415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["text/plain", "application/json",
                                          "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client, face_photo, content_type):
    detail = assert_error(client.post("/v1/analyze", content=face_photo,
                                      headers={"Content-Type": content_type}),
                          415, "unsupported_media_type")
    assert content_type in detail


def test_wrong_content_type_on_a_file_part_is_415(client, face_photo):
    assert_error(client.post("/v1/analyze", files={
        "file": ("a.jpg", face_photo, "text/html")}), 415, "unsupported_media_type")


@pytest.mark.parametrize("data", [
    b"\xff\xd8\xff" + bytes(50),  # JPEG magic, then nothing sensible
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
    b"GIF89a\x01\x00",
    b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    b"BM" + bytes(10),
    b"II*\x00" + bytes(4),
])
def test_garbage_behind_image_magic_is_422_never_500(client, data):
    r = client.post("/v1/analyze", content=data, headers=JPEG)
    detail = assert_error(r, 422, "unreadable_image")
    (item,) = client.post("/v1/analyze/batch", files={"files": ("x.jpg", data)}).json()
    assert item["status"] == 422 and item["detail"].startswith("x.jpg: ")
    for text in (detail, item["detail"]):
        assert " object at 0x" not in text, text  # no Python reprs (of the BytesIO) for clients


def test_empty_upload_and_form_without_file_are_422(client):
    assert_error(client.post("/v1/analyze", content=b"", headers=JPEG), 422, "empty_upload")
    assert_error(client.post("/v1/analyze", files={"x": ("empty.png", b"", "image/png")}),
                 422, "empty_upload")
    only_text = client.post("/v1/analyze", data={"note": "hi"}, files={"x": ("", b"", "")})
    assert_error(only_text, 422, "no_file")
    r = client.post("/v1/analyze", data={"note": "hi"},
                    headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert_error(r, 400, "bad_request")


@pytest.mark.parametrize("side", [12_000, 60_000])  # under and over Pillow's own cap
def test_decompression_bomb_is_413_before_decoding(client, side):
    bomb = bomb_png(side, side)
    assert len(bomb) < 2000
    detail = assert_error(client.post("/v1/analyze", files={
        "file": ("bomb.png", bomb, "image/png")}), 413, "image_too_large")
    assert "bomb.png" in detail and (f"{side}x{side}" in detail or f"{side * side}" in detail)


def test_pixel_limit_applies_to_real_images(make_app):
    client = TestClient(make_app(max_pixels=99 * 100))
    ok, over = png_bytes(np.zeros((99, 100, 3), np.uint8)), png_bytes(
        np.zeros((100, 100, 3), np.uint8))
    assert client.post("/v1/analyze", content=ok, headers=JPEG).status_code == 200
    assert_error(client.post("/v1/analyze", content=over, headers=JPEG), 413, "image_too_large")


def test_api_key(make_app, face_photo, monkeypatch):
    from mien.api import Settings

    monkeypatch.setenv("MIEN_API_KEY", "s3cret")
    assert Settings.from_env().api_key == "s3cret"
    client = TestClient(make_app(api_key="s3cret"))
    for path in ("/v1/models",):
        assert_error(client.get(path), 401, "unauthorized")
    r = client.post("/v1/analyze", content=face_photo, headers=JPEG)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "X-API-Key"
    assert_error(client.post("/v1/analyze", content=face_photo,
                             headers={**JPEG, "X-API-Key": "guess"}), 401, "unauthorized")
    r = client.post("/v1/analyze", content=face_photo, headers={**JPEG, "X-API-Key": "s3cret"})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    assert client.get("/v1/models", headers={"X-API-Key": "s3cret"}).status_code == 200
    # Liveness, the page and the docs stay open: the page asks for the key itself.
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200


def _concurrently(app, blocker, first, second):
    """Start `first` (blocked inside the classifier), then send `second`."""

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            task = asyncio.create_task(first(c))
            while not blocker.entered.is_set():
                await asyncio.sleep(0.01)
            try:
                later = await second(c)
            finally:
                blocker.release.set()
            return await task, later

    return asyncio.run(go())


def test_queue_full_is_503(make_app, face_photo):
    blocker = BlockingClassifier()
    app = make_app({"tone": blocker}, workers=1, queue_size=0)

    def post(c):
        return c.post("/v1/analyze", content=face_photo, headers=JPEG)

    first, second = _concurrently(app, blocker, post, post)
    assert first.status_code == 200 and len(first.json()["faces"]) == 1
    assert_error(second, 503, "busy")
    # The slot is free again once the first request is done.
    assert TestClient(app).post("/v1/analyze", content=face_photo,
                                headers=JPEG).status_code == 200


def test_waiting_requests_queue_up_to_the_limit(make_app, face_photo):
    blocker = BlockingClassifier()
    app = make_app({"tone": blocker}, workers=1, queue_size=1)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            send = [asyncio.create_task(c.post("/v1/analyze", content=face_photo,
                                               headers=JPEG)) for _ in range(2)]
            while app.state.service.pool.in_flight < 2 or not blocker.entered.is_set():
                await asyncio.sleep(0.01)
            third = await c.post("/v1/analyze", content=face_photo, headers=JPEG)
            blocker.release.set()
            return [await t for t in send], third

    queued, third = asyncio.run(go())
    assert [r.status_code for r in queued] == [200, 200]
    assert_error(third, 503, "busy")


def test_slow_analysis_is_504_and_frees_its_slot(make_app, face_photo):
    blocker = BlockingClassifier()
    app = make_app({"tone": blocker}, workers=1, queue_size=0, timeout_s=0.3)
    client = TestClient(app)
    try:
        assert_error(client.post("/v1/analyze", content=face_photo, headers=JPEG),
                     504, "timeout")
    finally:
        blocker.release.set()
    pool = app.state.service.pool
    for _ in range(100):
        if pool.in_flight == 0:
            break
        threading.Event().wait(0.02)
    assert pool.in_flight == 0
    assert client.post("/v1/analyze", content=face_photo, headers=JPEG).status_code == 200


def test_cors_is_off_by_default_and_can_be_enabled(make_app):
    origin = {"Origin": "http://elsewhere.example"}
    closed = TestClient(make_app()).get("/healthz", headers=origin)
    assert "access-control-allow-origin" not in closed.headers
    app = make_app(cors_origins=("http://elsewhere.example",))
    opened = TestClient(app).options("/v1/analyze", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key"})
    assert opened.status_code == 200
    assert opened.headers["access-control-allow-origin"] == "http://elsewhere.example"
    other = TestClient(app).get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_unexpected_errors_are_logged_json_500(make_app, face_photo, caplog):
    class Broken:
        name, labels = "broken", ("a", "b")

        def __init__(self):
            from mien.data.preprocess import Preprocess

            self.preprocess = Preprocess(input_size=(8, 8), color="gray")

        def predict_proba(self, images):
            raise RuntimeError("bug in a classifier")

    client = TestClient(make_app({"broken": Broken()}), raise_server_exceptions=False)
    r = client.post("/v1/analyze", content=face_photo, headers=JPEG)
    assert_error(r, 500, "internal_error")
    assert "bug in a classifier" not in r.text  # internals stay in the log
    assert any("bug in a classifier" in rec.exc_text for rec in caplog.records if rec.exc_text)


def _call(app, receive, headers=(), events=None) -> tuple[int, dict]:
    """One POST /v1/analyze straight through the ASGI app, with the client's `receive` (and
    more `headers`); the type of each message sent is appended to `events`."""
    sent = []

    async def send(message):
        sent.append(message)
        if events is not None:
            events.append(message["type"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/analyze", "raw_path": b"/v1/analyze",
             "query_string": b"", "root_path": "", "server": ("test", 80),
             "client": ("test", 1), "headers": [(b"content-type", b"image/jpeg"), *headers]}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


@pytest.mark.parametrize("how", ["stalled", "trickling"])
def test_an_upload_that_does_not_arrive_in_time_is_408(make_app, face_photo, how):
    app = make_app(upload_timeout_s=0.3)
    chunks = [face_photo[:100]] if how == "stalled" else [face_photo[i:i + 10]
                                                         for i in range(0, 2000, 10)]

    async def receive():
        if chunks:
            await asyncio.sleep(0 if how == "stalled" else 0.01)
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        await asyncio.sleep(3600)  # the client sends nothing more

    with TestClient(app):  # the lifespan loads the models
        status, body = _call(app, receive)  # fails after 10 s if the upload is never cut
    assert status == 408 and body["error"] == "request_timeout" and "0.3 s" in body["detail"]


def test_a_slow_upload_within_the_limit_is_analysed(make_app, face_photo):
    app = make_app(upload_timeout_s=2.0)
    parts = [face_photo[i:i + 4096] for i in range(0, len(face_photo), 4096)]
    step = 0.5 / len(parts)  # half a second in all

    async def receive():
        if parts:
            await asyncio.sleep(step)
            return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}
        await asyncio.sleep(3600)  # a client that stays connected
        return {"type": "http.disconnect"}

    with TestClient(app):
        status, body = _call(app, receive)
    assert status == 200 and body["faces"], body


@pytest.mark.parametrize("path", ["/v1/analyze", "/v1/analyze/batch"])
def test_a_client_leaving_mid_upload_is_one_log_line(make_app, face_photo, path, caplog):
    app = make_app()
    boundary = b"zz"
    start = (b"--zz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
             b"Content-Type: image/jpeg\r\n\r\n")
    chunks = [start + face_photo[:1000]]

    async def receive():  # part of the body, then the client is gone
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("test", 80),
             "client": ("10.0.0.7", 4711),
             "headers": [(b"content-type", b"multipart/form-data; boundary=" + boundary)]}
    with TestClient(app), caplog.at_level("INFO", logger="mien.api"):
        asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))  # raises nothing
    (record,) = [r for r in caplog.records if r.name.startswith("mien")]
    assert record.getMessage() == (f"POST {path}: the client 10.0.0.7:4711 left before its "
                                   "request had arrived")
    assert record.exc_info is None and record.exc_text is None
    assert sent[0]["status"] == 499


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_refused_body_is_read_to_its_end_before_the_413(make_app, declared):
    """Closing a connection with unread bytes resets it, and a client still sending never
    reads its 413 (httpx got ReadError under load): the rest of the body is read first."""
    app = make_app(max_upload_bytes=1000)
    events = []
    chunks = [b"\xff\xd8\xff" + bytes(997)] * 100  # over the limit with multipart overhead

    async def receive():  # as uvicorn: once the answer has begun, the body is gone
        if "http.response.start" in events:
            return {"type": "http.disconnect"}
        i = events.count("chunk")
        events.append("chunk")
        return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

    headers = [(b"content-length", str(sum(map(len, chunks))).encode())] if declared else []
    status, body = _call(app, receive, headers, events)
    assert status == 413 and body["error"] == "payload_too_large"
    assert events.count("chunk") == len(chunks)
    assert events[-3:] == ["chunk", "http.response.start", "http.response.body"]


def test_a_body_declared_far_too_large_is_refused_unread(make_app):
    from mien.api.uploads import DRAIN_BYTES

    app = make_app(max_upload_bytes=1000)
    status, body = _call(app, _no_body_expected, [(b"content-length", b"%d" % (DRAIN_BYTES + 1))])
    assert status == 413 and body["error"] == "payload_too_large"


async def _no_body_expected():
    raise AssertionError("the body was read")
