import json

import numpy as np
import pytest
from PIL import Image

from mien.data.preprocess import Framing
from mien.heads.anomaly import (
    AnomalyDetector,
    anomaly_labels,
    anomaly_proba,
    mse_scores,
    threshold_at_quantile,
    wasserstein_scores,
)
from mien.models.loading import load_classifier

from .conftest import cli_error, run_cli


def _faces(n: int = 6, seed: int = 0) -> np.ndarray:
    """Smooth [0.25, 0.75] images (no clipping when noise is added)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    return np.stack([0.25 + 0.5 * (a * xx + (1 - a) * yy) for a in rng.random(n)])[:, None]


@pytest.mark.parametrize("score", [mse_scores, wasserstein_scores])
def test_scores_are_zero_for_identical_images_and_grow_with_noise(score):
    x = _faces()
    np.testing.assert_array_equal(score(x, x.copy()), 0.0)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, x.shape)
    means = [score(x, x + s * noise).mean() for s in (0.01, 0.03, 0.1, 0.2)]
    assert all(a < b for a, b in zip(means, means[1:], strict=False)), means
    assert means[0] > 0


def test_wasserstein_is_the_1d_earth_movers_distance_of_pixel_values():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(2)
    a, b = rng.random((3, 1, 8, 8)), rng.random((3, 1, 8, 8)) ** 2
    expected = [wasserstein_distance(a[i].ravel(), b[i].ravel()) for i in range(3)]
    np.testing.assert_allclose(wasserstein_scores(a, b), expected, rtol=1e-12)
    # it sees intensities, not places: shuffled pixels cost nothing, unlike MSE
    shuffled = rng.permutation(a[0].ravel()).reshape(a[:1].shape)
    assert wasserstein_scores(a[:1], shuffled)[0] == pytest.approx(0.0, abs=1e-15)
    assert mse_scores(a[:1], shuffled)[0] > 0.01


def test_threshold_at_quantile_and_probabilities():
    scores = np.arange(100, dtype=float)
    t = threshold_at_quantile(scores, 0.9)
    assert t == pytest.approx(89.1) and (scores <= t).mean() == 0.9
    p = anomaly_proba(np.array([0.0, t / 2, t, 2 * t]), t)
    assert p[0] == 0 and p[1] < 0.5 and p[2] == 0.5 and p[3] > 0.5


def test_labels_keep_two_classes_and_fold_more():
    assert anomaly_labels(("no_smile", "smile"), "smile") == (("no_smile", "smile"), 1)
    assert anomaly_labels(("a", "b", "c"), "b") == (("b", "not_b"), 0)
    with pytest.raises(Exception, match="'x' is not a class.*a, b"):
        anomaly_labels(("a", "b"), "x")


@pytest.fixture(scope="module")
def anomaly_data(tmp_path_factory):
    """'smooth' gradients (normal) vs 'noise' images, 16x16 gray."""
    root = tmp_path_factory.mktemp("anomaly") / "data"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    for name in ("noise", "smooth"):
        (root / name).mkdir(parents=True)
        for i in range(30):
            if name == "smooth":
                a, lo = rng.random(), rng.uniform(40, 120)
                img = lo + 100 * (a * xx + (1 - a) * yy)
            else:
                img = rng.uniform(0, 255, (16, 16))
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def anomaly_run(anomaly_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("anomaly-runs") / "ae"
    run_cli("train", anomaly_data, "--model", "smile-autoencoder", "--anomaly",
            "--normal-class", "smooth", "--score", "mse", "--quantile", "0.8",
            "--input-size", "16x16", "--color", "gray", "--epochs", "4", "--batch-size", "8",
            "--lr", "0.003", "--val", "0.3", "--device", "cpu", "--quiet", "--out", out)
    return out


def test_anomaly_run_thresholds_the_training_scores(anomaly_run, anomaly_data):
    for name in ("config.yaml", "split.json", "model.safetensors", "metrics.json",
                 "confusion.png", "curves.png", "scores.png"):
        assert (anomaly_run / name).stat().st_size > 0, name
    m = json.loads((anomaly_run / "metrics.json").read_text())
    assert m["classes"] == ["noise", "smooth"] and m["normal_class"] == "smooth"
    assert m["num_train"] == 21 and m["num_val"] == 18  # normal training images only
    val = set(json.loads((anomaly_run / "split.json").read_text())["val_sources"])
    train_smooth = [np.asarray(Image.open(p)) for p in sorted((anomaly_data / "smooth").glob("*"))
                    if str(p) not in val]
    det = load_classifier(anomaly_run)
    assert isinstance(det, AnomalyDetector) and det.labels == ("noise", "smooth")
    scores = det.scores(train_smooth)
    assert det.threshold == pytest.approx(m["threshold"])
    assert det.threshold == pytest.approx(np.quantile(scores, 0.8), rel=1e-5)
    # noise cannot be reconstructed by a network that only saw smooth gradients
    assert m["per_class_recall"]["noise"] >= 0.9 and m["per_class_recall"]["smooth"] > 0
    cm = np.array(m["confusion"])
    assert m["best_val_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]


def test_detector_predicts_by_threshold(anomaly_run, anomaly_data):
    det = load_classifier(anomaly_run)
    assert det.framing == Framing() and det.record["framing"] == Framing().to_dict()
    images = [np.asarray(Image.open(p)) for c in ("noise", "smooth")
              for p in sorted((anomaly_data / c).glob("*"))[:5]]
    p = det.predict_proba(images)
    s = det.scores(images)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(p.argmax(axis=1) == 0, s > det.threshold)  # 0: noise
    assert (s[:5] > s[5:].max()).all()


def test_evaluate_report_shows_scores_and_reconstructions(anomaly_run, anomaly_data, tmp_path):
    run_cli("evaluate", anomaly_run, anomaly_data, "--split", "all", "--json", tmp_path / "e.json",
            "--report", tmp_path / "report")
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["labels"] == ["noise", "smooth"] and ev["n"] == 60
    assert ev["per_class"]["noise"]["recall"] >= 0.9
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Anomaly scores per true class" in html and "reconstructions (bottom)" in html
    for png in ("anomaly_scores.png", "reconstructions.png"):
        assert Image.open(tmp_path / "report" / png).size[0] > 300


def test_anomaly_option_errors(anomaly_data, tmp_path):
    assert "--normal-class" in cli_error("train", anomaly_data, "--model", "smile-autoencoder",
                                         "--anomaly", "--out", tmp_path / "a")
    assert "needs an autoencoder" in cli_error(
        "train", anomaly_data, "--model", "fer-a", "--anomaly", "--normal-class", "smooth",
        "--out", tmp_path / "b")
    assert "'grin' is not a class" in cli_error(
        "train", anomaly_data, "--model", "smile-autoencoder", "--anomaly", "--normal-class",
        "grin", "--input-size", "16x16", "--out", tmp_path / "c")
