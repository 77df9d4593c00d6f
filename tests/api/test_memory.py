"""What bounds the server's memory and work: a request's place is decided before its body is
read, a batch holds one decoded image at a time, workers share a decoded-pixel budget, and
work for a request that has had its 504 stops. Units of work are counted; no wall-clock
assertion can fail on a busy machine."""

from __future__ import annotations

import asyncio
import threading
import weakref

import httpx
import numpy as np
import pytest
from conftest import BlockingClassifier, ToneClassifier, png_bytes
from fastapi.testclient import TestClient

from mien.deadline import Deadline
from mien.errors import DeadlineExceeded

JPEG = {"Content-Type": "image/jpeg"}


def wait_until(condition, what: str, tries: int = 500) -> None:
    for _ in range(tries):
        if condition():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def counting_haar(monkeypatch):
    """HaarDetector.detect recording a weak reference to every image it is given; `before`
    (if set) runs first with the call's number."""
    from mien.detection.haar import HaarDetector

    real = HaarDetector.detect
    seen: list[weakref.ref] = []
    hooks = {"before": None}

    def detect(self, image):
        seen.append(weakref.ref(image))
        if hooks["before"]:
            hooks["before"](len(seen))
        return real(self, image)

    monkeypatch.setattr(HaarDetector, "detect", detect)
    return seen, hooks


def test_a_full_queue_answers_503_without_reading_the_body(make_app, face_photo):
    blocker = BlockingClassifier()
    app = make_app({"tone": blocker}, workers=1, queue_size=0)
    read = []

    async def never_arrives():  # a client whose body would take for ever
        read.append(1)
        await asyncio.Event().wait()

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = asyncio.create_task(c.post("/v1/analyze", content=face_photo, headers=JPEG))
            while not blocker.entered.is_set():
                await asyncio.sleep(0.01)
            sent = []

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "POST", "scheme": "http", "path": "/v1/analyze/batch",
                     "raw_path": b"/v1/analyze/batch", "query_string": b"", "root_path": "",
                     "server": ("t", 80), "client": ("t", 1),
                     "headers": [(b"content-type", b"multipart/form-data; boundary=x")]}
            try:
                await asyncio.wait_for(app(scope, never_arrives, send), 10)
            finally:
                blocker.release.set()
            return await first, sent

    first, sent = asyncio.run(go())
    assert first.status_code == 200
    assert next(m for m in sent if m["type"] == "http.response.start")["status"] == 503
    assert read == []  # refused on its headers alone


def test_the_queue_place_is_given_back_when_the_upload_fails(make_app, face_photo):
    app = make_app(workers=1, queue_size=0)
    client = TestClient(app)
    r = client.post("/v1/analyze", content=b"not an image", headers=JPEG)
    assert r.status_code == 415
    assert app.state.service.pool.in_flight == 0
    assert client.post("/v1/analyze", content=face_photo, headers=JPEG).status_code == 200


def test_a_batch_holds_one_decoded_image_at_a_time(make_app, counting_haar, face_photo,
                                                   two_faces):
    seen, hooks = counting_haar

    def earlier_images_are_gone(n):
        assert [ref() is None for ref in seen[:-1]] == [True] * (n - 1)

    hooks["before"] = earlier_images_are_gone
    tone = ToneClassifier()
    client = TestClient(make_app({"tone": tone}))
    files = [("files", (f"{i}.jpg", photo, "image/jpeg"))
             for i, photo in enumerate([face_photo, two_faces, face_photo])]
    r = client.post("/v1/analyze/batch", files=files)
    assert r.status_code == 200, r.text
    assert [len(i["result"]["faces"]) for i in r.json()] == [1, 2, 1]
    assert len(seen) == 3 and tone.calls == [4]  # all faces still in one classifier call
    # annotated: each image is labelled and drawn before the next one is decoded
    r = client.post("/v1/analyze/batch?annotate=1", files=files)
    assert r.status_code == 200 and all(i["result"]["annotated"] for i in r.json())
    assert len(seen) == 6


def test_work_for_a_request_past_its_deadline_stops(make_app, counting_haar, face_photo):
    seen, hooks = counting_haar
    answered = threading.Event()
    hooks["before"] = lambda n: answered.wait(30)  # the first image outlasts the request
    app = make_app(workers=1, timeout_s=0.3)
    client = TestClient(app)
    files = [("files", (f"{i}.jpg", face_photo, "image/jpeg")) for i in range(6)]
    try:
        r = client.post("/v1/analyze/batch", files=files)
    finally:
        answered.set()
    assert r.status_code == 504 and r.json()["error"] == "timeout"
    pool = app.state.service.pool
    wait_until(lambda: pool.in_flight == 0, "the worker finished")
    assert len(seen) == 1  # the other five images were never decoded


def test_deadline_exceeded_from_the_library_is_504():
    from mien.api.errors import mien_error_status

    assert mien_error_status(DeadlineExceeded("stopped")) == (504, "timeout")


def test_workers_share_the_pixel_budget():
    from mien.api.service import PixelBudget

    budget = PixelBudget(100)
    first_in, second_in, let_go = threading.Event(), threading.Event(), threading.Event()

    def hold(event, pixels):
        with budget.hold(pixels, Deadline(30)):
            event.set()
            let_go.wait(30)

    threads = [threading.Thread(target=hold, args=(first_in, 60))]
    threads[0].start()
    assert first_in.wait(10)
    threads.append(threading.Thread(target=hold, args=(second_in, 60)))
    threads[1].start()
    assert not second_in.wait(0.3)  # 60 + 60 > 100: waits for the first
    assert budget.held == 60
    let_go.set()
    assert second_in.wait(10)
    for t in threads:
        t.join(10)
    assert budget.held == 0
    with budget.hold(10**9, Deadline(30)):  # larger than the budget: runs alone
        assert budget.held == 100


def test_waiting_for_pixels_ends_with_the_deadline():
    from mien.api.service import PixelBudget

    budget = PixelBudget(100)
    with budget.hold(100, Deadline(30)):
        late = Deadline(30)
        late.cancel()
        with pytest.raises(DeadlineExceeded, match="waiting for memory"):
            with budget.hold(1, late):
                pass
    assert budget.held == 0


def test_a_request_takes_its_images_pixels_from_the_budget(make_app, counting_haar):
    seen, hooks = counting_haar
    app = make_app()
    held = []
    hooks["before"] = lambda n: held.append(app.state.service.pixels.held)
    image = png_bytes(np.full((30, 50, 3), 128, np.uint8))
    r = TestClient(app).post("/v1/analyze", content=image, headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    assert held == [30 * 50] and app.state.service.pixels.held == 0


def test_pixel_budget_setting():
    from mien.api import Settings
    from mien.errors import MienError

    assert Settings().pixel_budget == 2 * Settings().max_pixels
    assert Settings().max_request_pixels == 4 * Settings().max_pixels
    assert Settings(max_pixels=10, pixel_budget=15).pixel_budget == 15
    with pytest.raises(MienError, match="pixel_budget=0: use a positive value"):
        Settings(pixel_budget=0)


def test_a_request_over_its_pixel_total_is_413_before_any_work(make_app, counting_haar):
    seen, _ = counting_haar
    client = TestClient(make_app(max_pixels=3000, max_request_pixels=5000))
    image = png_bytes(np.full((40, 50, 3), 128, np.uint8))  # 2,000 pixels
    files = [("files", (f"{i}.png", image, "image/png")) for i in range(3)]
    r = client.post("/v1/analyze/batch", files=files)
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"
    assert r.json()["detail"] == ("3 images of 6,000 pixels in all exceed the limit of 5,000 "
                                  "for one request; send fewer or smaller images")
    assert seen == []
    r = client.post("/v1/analyze/batch", files=files[:2])
    assert r.status_code == 200 and len(seen) == 2


def test_an_image_over_the_pixel_limit_is_413_without_waiting_for_a_worker(make_app,
                                                                          face_photo):
    blocker = BlockingClassifier()
    app = make_app({"tone": blocker}, workers=1, queue_size=1, max_pixels=179 * 192)
    big = png_bytes(np.full((200, 200, 3), 128, np.uint8))

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = asyncio.create_task(c.post("/v1/analyze", content=face_photo, headers=JPEG))
            while not blocker.entered.is_set():
                await asyncio.sleep(0.01)
            try:  # the only worker is busy: the answer must not wait for it
                single = await asyncio.wait_for(c.post(
                    "/v1/analyze", content=big, headers={"Content-Type": "image/png"}), 10)
                batch = await asyncio.wait_for(c.post("/v1/analyze/batch", files=[
                    ("files", ("big.png", big, "image/png"))]), 10)
            finally:
                blocker.release.set()
            return await first, single, batch

    first, single, batch = asyncio.run(go())
    assert first.status_code == 200
    assert single.status_code == 413 and single.json()["error"] == "image_too_large"
    assert batch.status_code == 200 and batch.json()[0]["status"] == 413  # inline, as before
    assert blocker.calls == [1]


def test_memory_is_given_back_once_no_request_came_for_a_while(monkeypatch):
    """The pool calls `on_idle` when the last request's work ends and none came for IDLE_S,
    not while one is in flight, and once per quiet spell."""
    from mien.api import service

    monkeypatch.setattr(service, "IDLE_S", 0.05)
    calls: list[int] = []
    pool = service.WorkerPool(1, 2, on_idle=lambda: calls.append(pool.in_flight))
    try:
        pool.admit().release(object())  # as a worker's done-callback gives it back
        second = pool.admit()  # arrives before the quiet spell is over
        threading.Event().wait(0.3)
        assert calls == []
        second.release(object())
        wait_until(lambda: calls == [0], "on_idle after the last request")
        threading.Event().wait(0.2)
        assert calls == [0]
    finally:
        pool.close()


def test_release_memory_shrinks_every_network_and_keeps_its_answers(shared_models):
    """Service.release_memory runs each classifier's arena shrink and YuNet's; the networks
    answer as before afterwards."""
    from mien.api.service import Service
    from mien.api.settings import Settings
    from mien.detection.yunet import YuNetDetector
    from mien.models.loading import bundled_models, load_classifier

    if "smile" not in bundled_models():
        pytest.skip("the bundled smile model is not installed")
    smile = load_classifier("smile")
    faces = [np.random.default_rng(i).integers(0, 256, (64, 64, 3), np.uint8) for i in range(40)]
    before = smile.predict_proba(faces)
    detector = YuNetDetector()
    photo = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)
    found = detector.detect(photo)
    calls = []
    real = smile.release_memory
    smile.release_memory = lambda: calls.append("smile") or real()
    svc = Service(Settings(), classifiers={"smile": smile})
    svc.classifiers = {"smile": smile}
    svc.release_memory()
    assert calls == ["smile"]
    np.testing.assert_array_equal(smile.predict_proba(faces), before)
    assert detector.detect(photo) == found
