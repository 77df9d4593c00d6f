import json
import shutil
import zipfile

import numpy as np
import pytest
import yaml
from PIL import Image

from mien.data.preprocess import Framing
from mien.errors import ModelFileError
from mien.heads.saved import HeadClassifier
from mien.models.loading import load_classifier

from .conftest import cli_error, run_cli


def _images(folder, n=5):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))[:n]]


@pytest.fixture(scope="module")
def knn_run(cnn_run, stripes, tmp_path_factory):
    out = tmp_path_factory.mktemp("heads") / "knn"
    cache = tmp_path_factory.mktemp("cache")
    run_cli("train", stripes, "--from", cnn_run, "--head", "knn", "--param", "k=3",
            "--param", "weights=distance", "--layer", "dense1", "--mirror",
            "--cache-dir", cache, "--out", out)
    return out


def test_head_run_folder(knn_run, cnn_run):
    for name in ("config.yaml", "head.skops", "head.json", "metrics.json", "confusion.png"):
        assert (knn_run / name).stat().st_size > 0, name
    # the CNN's own train/val split is replayed: the head is scored on images the CNN never saw
    assert json.loads((knn_run / "split.json").read_text()) == \
        json.loads((cnn_run / "split.json").read_text())
    m = json.loads((knn_run / "metrics.json").read_text())
    assert m["head"] == "knn" and m["params"] == {"k": 3, "weights": "distance"}
    split = json.loads((cnn_run / "split.json").read_text())
    assert m["mirror"] and m["num_train"] == 2 * (32 - len(split["val_sources"]))
    assert m["num_train_images_available"] == 32 - len(split["val_sources"])
    assert m["best_val_accuracy"] >= 0.75 and np.array(m["confusion"]).sum() == m["num_val"]
    assert m["fit_seconds"] > 0 and m["predict_seconds"] > 0
    record = json.loads((knn_run / "head.json").read_text())
    assert record["backbone"]["layer"] == "dense1" and len(record["backbone"]["sha256"]) == 64
    assert record["labels"] == ["horizontal", "vertical"] and record["arch"] == "head:knn"
    cfg = yaml.safe_load((knn_run / "config.yaml").read_text())
    assert cfg["head"] == "knn" and cfg["layer"] == "dense1" and cfg["mirror_double"]
    # nothing pickled anywhere in the run folder
    assert not list(knn_run.glob("*.pkl")) and not list(knn_run.glob("*.joblib"))
    assert zipfile.is_zipfile(knn_run / "head.skops")


def test_load_classifier_composes_cnn_and_head(knn_run, stripes):
    clf = load_classifier(knn_run)
    assert isinstance(clf, HeadClassifier) and clf.labels == ("horizontal", "vertical")
    assert clf.framing == Framing() and clf.record["framing"] == Framing().to_dict()
    images = _images(stripes / "horizontal") + _images(stripes / "vertical")
    images.append(np.full((70, 50, 3), 128, np.uint8))  # any size and colour
    p = clf.predict_proba(images)
    assert p.shape == (11, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    direct = clf.head.estimator.predict_proba(clf.embedder.embed(images))
    np.testing.assert_allclose(p, direct, atol=1e-6)
    again = load_classifier(knn_run)  # a second load predicts identically
    np.testing.assert_array_equal(again.predict_proba(images), p)
    assert (p[:10].argmax(axis=1) == [0] * 5 + [1] * 5).mean() >= 0.8


def test_mien_evaluate_scores_a_head_run(knn_run, stripes, tmp_path):
    out = tmp_path / "eval.json"
    # every image, the run's training images too (the default would be its validation split)
    run_cli("evaluate", knn_run, stripes, "--split", "all", "--json", out)
    ev = json.loads(out.read_text())
    clf = load_classifier(knn_run)
    images = [np.asarray(Image.open(p)) for c in ("horizontal", "vertical")
              for p in sorted((stripes / c).glob("*.png"))]
    truth = np.repeat([0, 1], len(images) // 2)
    expected = (clf.predict_proba(images).argmax(axis=1) == truth).mean()
    assert ev["n"] == len(images) and ev["accuracy"] == pytest.approx(expected)


def test_changed_backbone_is_refused(cnn_run, stripes, tmp_path):
    cnn = tmp_path / "cnn"
    shutil.copytree(cnn_run, cnn)
    out = tmp_path / "logreg"
    run_cli("train", stripes, "--from", cnn, "--head", "logreg", "--cache-dir", "",
            "--out", out)
    assert load_classifier(out).labels == ("horizontal", "vertical")
    with open(cnn / "model.safetensors", "ab") as fh:
        fh.write(b"\0")  # same weights, different bytes: the checksum must notice
    with pytest.raises(ModelFileError, match="SHA-256 differs.*retrain the head"):
        load_classifier(out)
    assert "SHA-256 differs" in cli_error("evaluate", out, stripes)
    (cnn / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="network this head was trained on is missing"):
        load_classifier(out)


def test_grid_search_from_config(cnn_run, stripes, tmp_path, cache):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({"head": "svm", "grid": {"C": [0.5, 5.0]},
                                      "cv": 2, "n_jobs": 1}))
    out = tmp_path / "svm"
    run_cli("train", stripes, "--from", cnn_run, "--config", config, "--out", out)
    m = json.loads((out / "metrics.json").read_text())
    assert [row["params"]["C"] for row in m["grid"]] in ([0.5, 5.0], [5.0, 0.5])
    assert m["params"]["C"] == m["grid"][0]["params"]["C"]  # the best row is refitted
    assert all(row["mean_fit_seconds"] > 0 for row in m["grid"])
    assert load_classifier(out).head.estimator.get_params()["svc__C"] == m["params"]["C"]
    assert len(list(cache.glob("*.npz"))) == 2  # train and val, in the default cache folder


def test_bad_head_options_fail_with_one_line(cnn_run, stripes, tmp_path):
    assert "--head needs --from" in cli_error("train", stripes, "--head", "svm",
                                              "--out", tmp_path / "a")
    assert "no parameter trees" in cli_error("train", stripes, "--from", cnn_run, "--head",
                                             "svm", "--param", "trees=3", "--out", tmp_path / "b")
    assert "unknown head 'nope'" in cli_error("train", stripes, "--from", cnn_run,
                                              "--head", "nope")
    assert "--param 'C'" in cli_error("train", stripes, "--from", cnn_run, "--head", "svm",
                                      "--param", "C")
    assert not (tmp_path / "b").exists()  # nothing is written before the options check out
    assert "add --head NAME or --anomaly" in cli_error("train", stripes, "--model", "fer-a",
                                                       "--grid", "--out", tmp_path / "c")
