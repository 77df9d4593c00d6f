"""End to end: `mien serve` in a subprocess, the page in headless Chromium, a real photo
uploaded, and the drawn boxes, bars and table read back from the page."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import write_mean_onnx

CHROMIUM = next((p for p in (os.environ.get("MIEN_CHROMIUM"), shutil.which("chromium"),
                             "/usr/bin/chromium") if p and os.path.isfile(p)), None)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run"]
BOX_RGB = [40, 220, 90]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed "
                                                         "(apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(folder: Path, api_key: str | None = None):
    """`mien serve` on a free loopback port with a small ONNX attribute model; yields its URL."""
    pytest.importorskip("onnx")
    model = folder / "gray.onnx"
    write_mean_onnx(model)
    port = free_port()
    env = dict(os.environ)
    env.pop("MIEN_API_KEY", None)
    if api_key:
        env["MIEN_API_KEY"] = api_key
    log = folder / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mien.cli.main", "serve", "--port", str(port), "--workers",
             "1", "--attributes", f"gray={model}", "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"mien serve exited with {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mien serve did not become ready within 60 s: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_data):
    with serving(tmp_path_factory.mktemp("serve")) as url:
        yield url


@pytest.fixture(scope="module")
def playwright():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright, *extra_args):
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=[*LAUNCH_ARGS, *extra_args])
    except Exception as exc:  # a Chromium too old or too new for this Playwright
        pytest.skip(f"cannot drive {CHROMIUM}: {str(exc).splitlines()[0]}")


@pytest.fixture(scope="module")
def browser(playwright):
    launched = launch(playwright)
    yield launched
    launched.close()


def test_page_draws_faces_of_an_uploaded_photo(server, browser, shared_data, tmp_path):
    photo = shared_data / "detection" / "voc_faces" / "2008_001009.jpg"
    expected = httpx.post(f"{server}/v1/analyze", files={
        "file": (photo.name, photo.read_bytes(), "image/jpeg")}, timeout=30).json()
    faces = expected["faces"]
    assert len(faces) == 2

    page = browser.new_page(accept_downloads=True)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(server + "/")
    page.wait_for_selector("#models:has-text('gray')")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached",
                           timeout=30_000)
    assert page.get_attribute("body", "data-state") == "done", page.inner_text("#status")
    assert "2 faces" in page.inner_text("#status")

    # The canvas holds the photo at its own size with a green box per face.
    canvas = page.evaluate("""() => {
        const c = document.getElementById('canvas');
        return {w: c.width, h: c.height, faces: Number(c.dataset.faces)};
    }""")
    assert canvas == {"w": 360, "h": 480, "faces": 2}
    for face in faces:
        b = face["box"]
        left, mid_y = int(b["x1"]), int((b["y1"] + b["y2"]) / 2)
        centre_x = int((b["x1"] + b["x2"]) / 2)
        edge, centre = page.evaluate("""([x, y, cx]) => {
            const ctx = document.getElementById('canvas').getContext('2d');
            const px = (u, v) => Array.from(ctx.getImageData(u, v, 1, 1).data.slice(0, 3));
            return [px(x, y), px(cx, y)];
        }""", [left, mid_y, centre_x])
        assert edge == BOX_RGB
        assert centre != BOX_RGB  # the face itself is not painted over

    # One table row and one card of bars per face, with the attribute's probabilities.
    rows = page.eval_on_selector_all("#table tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    assert len(rows) == 2
    for row, face in zip(rows, faces, strict=True):
        b = face["box"]
        box = [round(b["x1"]), round(b["y1"]), round(b["x2"] - b["x1"]),
               round(b["y2"] - b["y1"])]
        assert row[1] == ", ".join(map(str, box))
        gray = face["attributes"]["gray"]
        assert row[3] == f"{gray['label']} ({gray['score']:.2f})"
    widths = page.eval_on_selector_all(".face .fill", "bars => bars.map(b => b.style.width)")
    assert len(widths) == 4  # two faces x (low, high)
    shown = sorted(float(w.rstrip("%")) for w in widths)
    wanted = sorted(100 * p for f in faces for p in f["attributes"]["gray"]["probabilities"]
                    .values())
    assert shown == pytest.approx(wanted, abs=0.06)

    # CSV download: a header and one line per face with the same boxes.
    with page.expect_download() as info:
        page.click("#download-csv")
    text = Path(info.value.path()).read_text()
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [float(r["x1"]) for r in lines] == pytest.approx([f["box"]["x1"] for f in faces])
    assert {r["gray"] for r in lines} <= {"low", "high"}
    with page.expect_download() as info:
        page.click("#download-json")
    assert '"faces"' in Path(info.value.path()).read_text()

    # Nothing came from anywhere but this server (no CDN).
    assert requested and all(u.startswith((server, "data:", "blob:")) for u in requested)
    page.close()


def test_docs_page_works_offline(server, browser):
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(server + "/docs")
    page.wait_for_selector("section.route")
    routes = page.eval_on_selector_all("section.route h3", "hs => hs.map(h => h.innerText)")
    assert {"POST /v1/analyze", "POST /v1/analyze/batch", "GET /v1/models"} <= set(routes)
    assert all(u.startswith((server, "data:")) for u in requested)
    page.close()


def write_y4m(path: Path, rgb, frames: int = 10) -> None:
    """A still photo as a short Y4M video, which Chromium can play as its fake camera."""
    import cv2

    h, w = (side // 2 * 2 for side in rgb.shape[:2])  # 4:2:0 needs even sides
    yuv = cv2.cvtColor(rgb[:h, :w], cv2.COLOR_RGB2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv)


def test_camera_draws_live_boxes_over_the_video(server, playwright, shared_data, tmp_path):
    """Chromium's fake camera plays a real photo; the page sends frames and draws the faces
    on the canvas over the video."""
    from mien.data.io import read_image

    video = tmp_path / "camera.y4m"
    write_y4m(video, read_image(shared_data / "detection" / "voc_faces" / "2008_001009.jpg"))
    browser = launch(playwright, "--use-fake-ui-for-media-stream",
                     "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-video-capture={video}")
    try:
        page = browser.new_page()
        page.goto(server + "/")
        page.click("#camera")
        page.wait_for_selector("#status:has-text('frames/s')", timeout=30_000)
        state = page.evaluate("""() => {
            const c = document.getElementById('canvas'), v = document.getElementById('video');
            const ctx = c.getContext('2d');
            const alpha = ctx.getImageData(0, 0, c.width, c.height).data.filter(
                (_, i) => i % 4 === 3 && _ > 0).length;
            const rect = (e) => { const r = e.getBoundingClientRect();
                                  return [r.x, r.y, r.width, r.height]; };
            return {faces: Number(c.dataset.faces), w: c.width, h: c.height,
                    overlay: rect(c), screen: rect(v),
                    video: [v.videoWidth, v.videoHeight], hidden: v.hidden,
                    painted: alpha, rows: document.querySelectorAll('#table tbody tr').length};
        }""")
        assert state["video"] == [360, 480] and not state["hidden"]
        assert state["faces"] == 2 and state["rows"] == 2
        assert (state["w"], state["h"]) == (360, 480)
        assert state["overlay"] == pytest.approx(state["screen"], abs=1)  # boxes sit on faces
        # Only boxes and captions are painted: some pixels, far from the whole overlay.
        assert 500 < state["painted"] < 0.2 * 360 * 480
        page.click("#camera")  # stop
        assert page.get_attribute("#video", "hidden") is not None
    finally:
        browser.close()


def test_dropped_photo_is_analyzed(server, browser, shared_data):
    photo = shared_data / "detection" / "voc_faces" / "2008_001322.jpg"
    page = browser.new_page()
    page.goto(server + "/")
    data = list(photo.read_bytes())
    transfer = page.evaluate_handle("""([bytes, name]) => {
        const t = new DataTransfer();
        t.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/jpeg'}));
        return t;
    }""", [data, photo.name])
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached",
                           timeout=30_000)
    expected = httpx.post(f"{server}/v1/analyze", content=photo.read_bytes(),
                          headers={"Content-Type": "image/jpeg"}).json()["faces"]
    assert len(expected) >= 2
    assert page.get_attribute("#canvas", "data-faces") == str(len(expected))
    assert page.locator("#table tbody tr").count() == len(expected)
    assert photo.name in page.inner_text("#status")
    # The group's captions stay on the canvas and off each other (labels.js places them).
    labels, (w, h) = page.evaluate("""() => { const c = document.getElementById('canvas');
                                             return [window.mien.labels, [c.width, c.height]]; }""")
    assert len(labels) == len(expected)
    for k, a in enumerate(labels):
        assert 0 <= a["x1"] < a["x2"] <= w and 0 <= a["y1"] < a["y2"] <= h
        for b in labels[k + 1:]:
            assert min(a["x2"], b["x2"]) <= max(a["x1"], b["x1"]) or \
                min(a["y2"], b["y2"]) <= max(a["y1"], b["y1"])
    page.close()


def test_page_asks_for_the_api_key(tmp_path, shared_data, browser):
    photo = shared_data / "detection" / "genki_szsl" / "files" / "file0001.jpg"
    with serving(tmp_path, api_key="letmein") as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#key-box:not([hidden])")
        assert "API key" in page.inner_text("#models")
        page.fill("#key", "wrong")
        page.press("#key", "Enter")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("body[data-state=error]", state="attached", timeout=30_000)
        assert "401" in page.inner_text("#status")
        page.fill("#key", "letmein")
        page.press("#key", "Enter")
        page.wait_for_selector("#models:has-text('gray')")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("body[data-state=done]", state="attached", timeout=30_000)
        assert page.get_attribute("#canvas", "data-faces") == "1"
        page.close()


@contextlib.contextmanager
def serving_folder(folder: Path):
    """A plain static file server on a free loopback port; yields its URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_annotated_video_plays_in_the_browser(browser, shared_data, tmp_path):
    """`mien analyze clip --annotate` writes an MP4 that Chromium decodes and plays, boxes
    drawn (mp4v gave MEDIA_ERR_SRC_NOT_SUPPORTED)."""
    pytest.importorskip("av")
    import cv2

    from mien.cli.main import main
    from mien.data.io import read_image

    image = cv2.cvtColor(read_image(shared_data / "detection" / "voc_faces" / "2008_001009.jpg"),
                         cv2.COLOR_RGB2BGR)
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (image.shape[1], image.shape[0]))
    for _ in range(20):
        writer.write(image)
    writer.release()
    with pytest.raises(SystemExit) as exit_code:
        main(["analyze", str(clip), "--attributes", "", "--detector", "yunet", "--annotate",
              "--out", str(tmp_path / "out")])
    assert exit_code.value.code == 0
    folder = tmp_path / "out" / "annotated"
    (folder / "index.html").write_text('<video id="v" src="clip.mp4" muted></video>')
    with serving_folder(folder) as url:
        page = browser.new_page()
        page.goto(url + "/index.html")
        state = page.evaluate("""async () => {
            const v = document.getElementById('v');
            try { await v.play(); } catch (e) { return {error: String(e),
                                                       code: v.error && v.error.code}; }
            await new Promise(done => v.addEventListener('ended', done, {once: true}));
            const c = document.createElement('canvas');
            c.width = v.videoWidth; c.height = v.videoHeight;
            const ctx = c.getContext('2d');
            ctx.drawImage(v, 0, 0);
            const px = ctx.getImageData(0, 0, c.width, c.height).data;
            let box = 0;
            for (let i = 0; i < px.length; i += 4)
                if (Math.abs(px[i] - 40) < 30 && px[i + 1] > 180 && Math.abs(px[i + 2] - 90) < 30)
                    box++;
            return {error: null, size: [v.videoWidth, v.videoHeight], duration: v.duration,
                    played: v.currentTime, box};
        }""")
        page.close()
    assert state["error"] is None, state
    assert state["size"] == [360, 480]
    assert state["duration"] == pytest.approx(2.0, abs=0.15)
    assert state["played"] == pytest.approx(state["duration"], abs=0.15)
    assert state["box"] > 300  # the green face boxes are in the picture
