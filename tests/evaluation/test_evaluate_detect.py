"""`evaluate(..., detector=)` and `mien evaluate --detect`: whole photos, the largest face cut
with the model's framing, and photos without a face counted as wrong."""

import json
import shutil

import numpy as np
import pytest
from eval_fakes import BrightnessClassifier, write_gray
from typer.testing import CliRunner

from mien.cli.main import app
from mien.data.datasets import open_dataset
from mien.data.io import read_image
from mien.data.preprocess import Framing
from mien.detection import create_detector
from mien.errors import DatasetError, MienError
from mien.evaluation.calibration import reliability
from mien.evaluation.evaluate import NO_FACE, evaluate
from mien.inference.align import crop_face


@pytest.fixture(scope="module")
def photos(shared_data, tmp_path_factory):
    """Eight GENKI portraits (Haar finds two faces in file0006, none in file0008) and two
    blank pictures, in class folders."""
    root = tmp_path_factory.mktemp("photos")
    files = sorted((shared_data / "detection" / "genki_szsl" / "files").glob("*.jpg"))[:8]
    for i, src in enumerate(files):
        (root / ("dark" if i < 4 else "bright")).mkdir(exist_ok=True)
        shutil.copy(src, root / ("dark" if i < 4 else "bright") / src.name)
    write_gray(root / "dark" / "blank.png", 40, size=120)
    write_gray(root / "bright" / "blank.png", 215, size=120)
    return root


def test_each_photo_is_scored_on_its_largest_face_cut_with_the_models_framing(photos):
    clf = BrightnessClassifier()  # dark, mid, bright
    clf.framing = Framing(margin=0.0, align=False)
    result = evaluate(clf, open_dataset(photos)["all"], detector="haar", batch_size=4)
    assert result.labels == ("dark", "mid", "bright", NO_FACE)
    detector, missed = create_detector("haar"), []
    for row, source in enumerate(result.sources):
        photo = read_image(source)
        faces = detector.detect(photo)
        if not faces:
            missed.append(row)
            assert result.proba[row].tolist() == [0, 0, 0, 1]  # a certain no_face
            continue
        largest = max(faces, key=lambda f: f.box.area)
        want = clf.predict_proba([crop_face(photo, largest, 0.0, align=False)])[0]
        assert result.proba[row, :3] == pytest.approx(want, abs=1e-6)
        assert result.proba[row, 3] == 0
    assert len(missed) >= 2  # the blank pictures at least
    assert result.detect.to_json() == {"detector": "haar",
                                       "framing": {"margin": 0.0, "align": False},
                                       "no_face": len(missed), "photos": 10}
    assert result.to_json()["detect"] == result.detect.to_json()


def test_photos_without_a_face_are_wrong_answers_of_no_class(photos):
    result = evaluate(BrightnessClassifier(), open_dataset(photos)["all"], detector="haar")
    m, y, pred = result.metrics, result.y_true, result.y_pred
    found = result.face_found
    assert m.n == 10 and (~found).sum() == result.detect.no_face >= 2
    assert (pred[~found] == 3).all()
    assert m.accuracy == pytest.approx(np.mean(pred == y))  # every missed photo is a miss
    no_face = m.by_label(NO_FACE)
    assert (no_face.support, no_face.recall, no_face.predicted) == (0, None, (~found).sum())
    for label in ("dark", "bright"):
        c, k = m.by_label(label), ("dark", "mid", "bright").index(label)
        assert c.support == (y == k).sum() == 5  # its missed photos stay in its recall
        assert c.recall == pytest.approx(np.mean(pred[y == k] == k))
        hits = ((pred == k) & (y == k)).sum()  # precision: the classifier's answers only
        assert c.precision == (hits / (pred == k).sum() if (pred == k).any() else 0.0)
    recalls = [m.by_label(c).recall for c in ("dark", "bright")]  # mid and no_face: no samples
    assert m.balanced_accuracy == pytest.approx(np.mean(recalls))
    top2 = np.argsort(-result.proba[found, :3], axis=1, kind="stable")[:, :2]
    assert dict(m.top_k)[2] == pytest.approx((top2 == y[found, None]).any(axis=1).sum() / 10)
    assert result.ece == pytest.approx(reliability(result.proba[found], y[found]).ece)
    assert found[result.mistakes()].all()  # the missed photos are listed apart, not as mistakes


def test_no_face_in_any_photo_is_an_error(tmp_path):
    for cls, level in (("dark", 40), ("bright", 215)):
        write_gray(tmp_path / cls / "blank.png", level, size=120)
    with pytest.raises(DatasetError, match="found no face in any of the 2 photos"):
        evaluate(BrightnessClassifier(), open_dataset(tmp_path)["all"], detector="haar")


def test_cli_detect_says_which_crop_and_how_many_photos_had_no_face(photos, fake_loader,
                                                                   tmp_path):
    runner = CliRunner()
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["evaluate", "m", str(photos), "--detect", "--detector", "haar",
                                 "--json", str(out), "--report", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    d = record["detect"]
    assert (d["detector"], d["framing"], d["photos"]) == ("haar", Framing().to_dict(), 10)
    assert "face crop: the largest face, haar, margin 0.2, align on" in result.output
    assert f"no face found: {d['no_face']} of 10 photos" in result.output
    page = (tmp_path / "report" / "report.html").read_text()
    assert "haar, margin 0.2, align on" in page and f"{d['no_face']} of 10 photos" in page
    rows = (tmp_path / "report" / "predictions.csv").read_text().splitlines()
    assert rows[0].endswith("p_no_face")
    assert sum(",no_face," in r for r in rows) == d["no_face"]

    plain = runner.invoke(app, ["evaluate", "m", str(photos), "--json", str(out)])
    assert plain.exit_code == 0 and "face crop" not in plain.output
    assert "detect" not in json.loads(out.read_text())
    alone = runner.invoke(app, ["evaluate", "m", str(photos), "--detector", "haar"])
    assert isinstance(alone.exception, MienError) and "add --detect" in str(alone.exception)


def test_cli_detect_runs_the_bundled_yunet_by_default(photos, fake_loader, tmp_path):
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", "m", str(photos), "--detect", "--json",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["detect"]["detector"] == "yunet"
