"""POST /v1/analyze and /v1/analyze/batch on real photos, compared with the library."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from conftest import ToneClassifier, png_bytes, write_mean_onnx

from mien.data.io import decode_image
from mien.inference.pipeline import Pipeline


def library_faces(photo: bytes):
    """What the library says for the same bytes, detector and classifier."""
    return Pipeline("haar", {"tone": ToneClassifier()}).analyze(photo)


def assert_same_faces(got: list[dict], expected) -> None:
    assert len(got) == len(expected) >= 1
    for face, want in zip(got, expected, strict=True):
        b = want.box
        assert [face["box"][k] for k in ("x1", "y1", "x2", "y2")] == pytest.approx(
            [b.x1, b.y1, b.x2, b.y2])
        assert face["score"] == pytest.approx(want.score)
        tone, want_tone = face["attributes"]["tone"], want.attributes["tone"]
        assert tone["label"] == want_tone.label
        assert tone["probabilities"] == pytest.approx(want_tone.probabilities, abs=1e-6)
        assert sum(tone["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert tone["score"] == pytest.approx(max(tone["probabilities"].values()))


def test_multipart_photo_matches_the_library(client, two_faces):
    r = client.post("/v1/analyze", files={"file": ("group.jpg", two_faces, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filename"] == "group.jpg"
    assert body["image"] == {"width": 360, "height": 480}
    assert body["detector"] == "haar" and body["attributes"] == ["tone"]
    assert body["annotated"] is None
    assert_same_faces(body["faces"], library_faces(two_faces))
    for face in body["faces"]:
        box = face["box"]
        assert 0 <= box["x1"] < box["x2"] <= 360 and 0 <= box["y1"] < box["y2"] <= 480


def test_raw_body_gives_the_same_answer(client, face_photo):
    multipart = client.post("/v1/analyze", files={"file": ("a.jpg", face_photo, "image/jpeg")})
    raw = client.post("/v1/analyze", content=face_photo, headers={"Content-Type": "image/jpeg"})
    assert raw.status_code == multipart.status_code == 200
    assert raw.json()["faces"] == multipart.json()["faces"]
    assert raw.json()["filename"] == "request body"
    assert_same_faces(raw.json()["faces"], library_faces(face_photo))


def test_octet_stream_and_missing_type_are_sniffed(client, face_photo):
    for headers in ({"Content-Type": "application/octet-stream"}, {}):
        r = client.post("/v1/analyze", content=face_photo, headers=headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["faces"]) == 1


@pytest.mark.parametrize("fmt,media_type", [("jpeg", "image/jpeg"), ("png", "image/png")])
def test_annotate_returns_the_drawn_picture(client, face_photo, fmt, media_type):
    r = client.post(f"/v1/analyze?annotate=1&annotate_format={fmt}", content=face_photo,
                    headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["annotated"]["media_type"] == media_type
    drawn = decode_image(base64.b64decode(body["annotated"]["base64"]), "rgb")
    original = decode_image(face_photo, "rgb")
    assert drawn.shape == original.shape
    box = body["faces"][0]["box"]
    x1, y1, y2 = int(box["x1"]), int(box["y1"]), int(box["y2"])
    # The box's left edge is painted green (exactly in PNG, smeared by JPEG's chroma
    # subsampling); the middle of the face is left alone.
    from mien.inference.draw import BOX_COLOR

    edge, before = (im[y1 + 5:y2 - 5, x1].astype(int) for im in (drawn, original))
    if fmt == "png":
        assert (edge == BOX_COLOR).all()
    else:
        greener = (edge[:, 1] - edge[:, 0]) - (before[:, 1] - before[:, 0])
        assert greener.mean() > 40
    cy, cx = (y1 + y2) // 2, (x1 + int(box["x2"])) // 2
    assert np.abs(drawn[cy, cx].astype(int) - original[cy, cx].astype(int)).max() < 30


def test_zero_face_upload_is_an_empty_list(client):
    flat = np.full((120, 160, 3), 128, np.uint8)
    r = client.post("/v1/analyze", files={"file": ("flat.png", png_bytes(flat), "image/png")})
    assert r.status_code == 200
    assert r.json()["faces"] == [] and r.json()["image"] == {"width": 160, "height": 120}


def test_options_choose_attributes_and_detector_settings(client, two_faces):
    send = dict(content=two_faces, headers={"Content-Type": "image/jpeg"})
    none = client.post("/v1/analyze?attributes=", **send).json()
    assert none["attributes"] == [] and len(none["faces"]) == 2
    assert all(f["attributes"] == {} for f in none["faces"])
    big_only = client.post("/v1/analyze?min_face=200", **send).json()
    assert big_only["faces"] == []  # both faces are under 100 px
    strict = client.post("/v1/analyze?threshold=1.0", **send).json()
    assert strict["faces"] == []


@pytest.mark.parametrize("query,where", [
    ("attributes=tone,smile", "smile"), ("detector=nonesuch", "nonesuch"),
    ("min_face=0", "min_face"), ("threshold=2", "threshold"), ("annotate_format=gif", "gif"),
    ("threshold=0.01", "threshold"), ("threshold=0", "threshold"), ("max_faces=0", "max_faces"),
    ("min_confidence=1.5", "min_confidence"), ("min_confidence=-0.1", "min_confidence"),
])
def test_bad_options_are_422_with_a_reason(client, face_photo, query, where):
    r = client.post(f"/v1/analyze?{query}", content=face_photo,
                    headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 422
    assert set(r.json()) == {"error", "detail"} and where in r.json()["detail"]


def test_max_faces_keeps_the_best_and_the_answer_names_the_detector(client, two_faces):
    send = dict(content=two_faces, headers={"Content-Type": "image/jpeg"})
    both = client.post("/v1/analyze", **send).json()
    best = client.post("/v1/analyze?max_faces=1", **send).json()
    assert len(both["faces"]) == 2 and best["faces"] == both["faces"][:1]
    assert both["detector"] == "haar"  # the server's setting
    assert client.post("/v1/analyze?detector=yunet", **send).json()["detector"] == "yunet"


def test_a_detector_that_cannot_run_is_replaced_and_named(make_app, two_faces, tmp_path,
                                                           monkeypatch):
    from fastapi.testclient import TestClient

    from mien.detection import DetectorFallbackWarning, files

    monkeypatch.setattr(files, "bundled_model_file", lambda name: tmp_path / "gone.onnx")
    client = TestClient(make_app())  # Haar by default
    with pytest.warns(DetectorFallbackWarning, match="'yunet' is not available"):
        r = client.post("/v1/analyze?detector=yunet", content=two_faces,
                        headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["detector"] == "haar"
    assert len(r.json()["faces"]) == 2


def test_server_detector_settings_are_bounded_like_the_library():
    from mien.api import Settings
    from mien.errors import MienError

    for bad, message in ((dict(threshold=0.01), "score threshold 0.01"),
                         (dict(max_faces=0), "max_faces=0"), (dict(min_face=0), "min_face=0")):
        with pytest.raises(MienError, match=message):
            Settings(**bad)


def test_min_confidence_labels_low_answers_uncertain(client, face_photo):
    send = dict(content=face_photo, headers={"Content-Type": "image/jpeg"})
    [plain] = client.post("/v1/analyze", **send).json()["faces"]
    before = plain["attributes"]["tone"]
    assert 0.55 < before["score"] < 0.95  # a middling answer
    for cut in (before["score"] - 0.05, before["score"] + 0.05):
        one = client.post(f"/v1/analyze?min_confidence={cut}", **send)
        batch = client.post(f"/v1/analyze/batch?min_confidence={cut}",
                            files=[("files", ("a.jpg", face_photo, "image/jpeg"))])
        assert one.status_code == batch.status_code == 200, (one.text, batch.text)
        library = Pipeline("haar", {"tone": ToneClassifier()}, min_confidence=cut)
        [want] = library.analyze(face_photo)
        assert want.attributes["tone"].uncertain == (cut > before["score"])
        for body in (one.json(), batch.json()[0]["result"]):
            tone = body["faces"][0]["attributes"]["tone"]
            assert tone["label"] == want.attributes["tone"].label
            # the score and every probability stay, so the answer can still be read
            assert (tone["score"], tone["probabilities"]) == (before["score"],
                                                              before["probabilities"])


def test_batch_reports_each_image_inline(make_app, face_photo, two_faces):
    from fastapi.testclient import TestClient

    tone = ToneClassifier()
    client = TestClient(make_app({"tone": tone}))
    files = [
        ("files", ("one.jpg", face_photo, "image/jpeg")),
        ("files", ("notes.txt", b"just text", "text/plain")),
        ("files", ("cut.jpg", two_faces[: len(two_faces) // 2], "image/jpeg")),
        ("files", ("two.jpg", two_faces, "image/jpeg")),
    ]
    r = client.post("/v1/analyze/batch", files=files)
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["filename"] for i in items] == ["one.jpg", "notes.txt", "cut.jpg", "two.jpg"]
    assert [i["status"] for i in items] == [200, 415, 422, 200]
    assert items[1]["error"] == "unsupported_media_type" and items[1]["result"] is None
    assert "cut.jpg" in items[2]["detail"]
    assert_same_faces(items[0]["result"]["faces"], library_faces(face_photo))
    assert_same_faces(items[3]["result"]["faces"], library_faces(two_faces))
    assert tone.calls == [3]  # every face of the batch in one classifier call


def test_batch_detector_failure_fails_only_that_photo(make_app, face_photo, two_faces,
                                                     monkeypatch):
    from fastapi.testclient import TestClient

    from mien.detection.haar import HaarDetector
    from mien.errors import MienError

    real = HaarDetector.detect

    def detect(self, image):
        if image.shape[:2] == (480, 360):  # two_faces
            raise MienError("detector failed on this photo")
        return real(self, image)

    monkeypatch.setattr(HaarDetector, "detect", detect)
    tone = ToneClassifier()
    client = TestClient(make_app({"tone": tone}))
    files = [("files", ("two.jpg", two_faces, "image/jpeg")),
             ("files", ("one.jpg", face_photo, "image/jpeg"))]
    r = client.post("/v1/analyze/batch", files=files)
    assert r.status_code == 200, r.text
    items = r.json()
    assert items[0]["status"] >= 400 and "detector failed" in items[0]["detail"]
    assert items[1]["status"] == 200
    assert_same_faces(items[1]["result"]["faces"], library_faces(face_photo))


@pytest.mark.parametrize("count", [2, 3, 4, 10])
def test_batch_over_the_file_limit_is_413(make_app, face_photo, count):
    from fastapi.testclient import TestClient

    client = TestClient(make_app(max_batch_images=2))
    files = [("files", (f"{i}.jpg", face_photo, "image/jpeg")) for i in range(count)]
    r = client.post("/v1/analyze/batch", files=files)
    if count == 2:
        assert r.status_code == 200 and len(r.json()) == 2
        return
    assert r.status_code == 413, r.text
    assert r.json() == {"error": "too_many_files",
                        "detail": "more than 2 files in one request; send at most 2"}


def test_models_lists_what_was_loaded(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["detector"]["default"] == "haar" and "haar" in body["detector"]["available"]
    [model] = body["attributes"]
    assert model["name"] == "tone" and model["labels"] == ["dark", "light"]
    assert model["input_size"] == [24, 24]


def test_models_shows_the_card_inside_an_onnx_file(make_app, tmp_path):
    pytest.importorskip("onnx")
    from fastapi.testclient import TestClient

    from mien.models.loading import load_classifier

    path = tmp_path / "gray.onnx"
    write_mean_onnx(path)
    client = TestClient(make_app({"mean": load_classifier(path)}))
    [model] = client.get("/v1/models").json()["attributes"]
    assert model["card"]["arch"] == "mean-test" and model["card"]["labels"] == ["low", "high"]


def test_models_shows_bundled_cards():
    """The server's default: every installed bundled model, each with its card."""
    from fastapi.testclient import TestClient

    from mien.api import Settings, create_app
    from mien.models.loading import bundled_models

    installed = [n for n in ("expression", "smile", "glasses") if n in bundled_models()]
    if not installed:
        pytest.skip("no bundled classifier is installed yet")
    app = create_app(Settings(detector="haar", workers=1))
    try:
        body = TestClient(app).get("/v1/models").json()
    finally:
        app.state.service.close()
    assert [m["name"] for m in body["attributes"]] == installed
    for model in body["attributes"]:
        assert model["card"]["sha256"] and model["labels"]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "loading"  # nothing loaded yet
    client.get("/v1/models")
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready" and r.json()["attributes"] == ["tone"]


def test_lifespan_loads_models_at_startup(make_app):
    from fastapi.testclient import TestClient

    with TestClient(make_app()) as client:
        assert client.get("/readyz").status_code == 200


def test_unknown_route_is_json_404(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/v1/analyze")
    assert r.status_code == 405 and "see /docs" in r.json()["detail"]


def test_loads_bundled_or_given_models_without_injection(tmp_path, face_photo):
    """No injected classifiers: attributes come from specs, as in `mien analyze`."""
    from fastapi.testclient import TestClient

    from mien.api import Settings, create_app

    pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    write_mean_onnx(path)
    app = create_app(Settings(detector="haar", attributes=(f"gray={path}",), workers=1))
    try:
        r = TestClient(app).post("/v1/analyze", content=face_photo,
                                 headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200
        [face] = r.json()["faces"]
        assert set(face["attributes"]["gray"]["probabilities"]) == {"low", "high"}
    finally:
        app.state.service.close()




def test_the_api_crops_each_model_as_it_was_trained(make_app, two_faces):
    """A model's framing reaches the API through the library's pipeline, in single and batch."""
    from fastapi.testclient import TestClient

    from mien.data.preprocess import Framing, Preprocess

    tight, plain = ToneClassifier(), ToneClassifier()
    for tone in (tight, plain):  # mean gray level in [0, 1]: probabilities that do not saturate
        tone.preprocess = Preprocess(input_size=(24, 24), color="gray", mean=(0.0,), std=(1.0,))
    tight.framing = Framing(margin=0.0, align=False)
    client = TestClient(make_app({"tone": tight}))
    want = Pipeline("haar", {"tone": tight}).analyze(two_faces)
    one = client.post("/v1/analyze", content=two_faces, headers={"Content-Type": "image/jpeg"})
    batch = client.post("/v1/analyze/batch", files=[("files", ("a.jpg", two_faces, "image/jpeg"))])
    assert one.status_code == batch.status_code == 200, (one.text, batch.text)
    assert_same_faces(one.json()["faces"], want)
    assert_same_faces(batch.json()[0]["result"]["faces"], want)
    default = Pipeline("haar", {"tone": plain}).analyze(two_faces)  # the default framing
    assert [f.attributes["tone"].score for f in want] != pytest.approx(
        [f.attributes["tone"].score for f in default])
