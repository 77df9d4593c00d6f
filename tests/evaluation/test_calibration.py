import numpy as np
import pytest

from mien.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    probabilities,
    reliability,
    view_probabilities,
)


def _sample(p: np.ndarray, rng) -> np.ndarray:
    """One label per row drawn from its probabilities: data these probabilities describe."""
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


def _logits(n=20_000, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, (n, k)), rng


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fitted_temperature_recovers_the_one_the_labels_were_drawn_with(true_t):
    z, rng = _logits()
    y = _sample(probabilities(z, temperature=true_t), rng)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.05)
    assert fit_temperature(z, y) == fit_temperature(z, y)  # deterministic


def test_sigmoid_and_probability_outputs_take_the_temperature_the_same_way():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (20_000, 1))  # one sigmoid output: P(class 1)
    y = _sample(probabilities(z, "sigmoid", 2.0), rng)
    assert fit_temperature(z, y, activation="sigmoid") == pytest.approx(2.0, rel=0.05)
    # outputs that are probabilities already: T acts on their logarithm
    q = probabilities(rng.normal(0, 3, (20_000, 4)))
    y = _sample(probabilities(q, "probabilities", 0.5), rng)
    assert fit_temperature(q, y, activation="probabilities") == pytest.approx(0.5, rel=0.05)
    np.testing.assert_allclose(probabilities(q, "probabilities"), q, atol=1e-9)


def test_temperature_one_changes_nothing_and_no_temperature_changes_the_winner():
    z, _ = _logits(100)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities(z, temperature=1.0), p, atol=1e-12)
    for t in (0.2, 3.0):
        assert (probabilities(z, temperature=t).argmax(1) == p.argmax(1)).all()


def test_views_are_averaged_after_the_temperature():
    z, _ = _logits(50)
    views = np.stack([z, z[:, ::-1]])
    want = (probabilities(views[0], temperature=2) + probabilities(views[1], temperature=2)) / 2
    np.testing.assert_allclose(view_probabilities(views, temperature=2), want)


def test_ece_is_small_for_calibrated_data_and_large_for_over_confident_data():
    z, rng = _logits()
    p = probabilities(z, temperature=2.0)
    y = _sample(p, rng)
    calibrated = expected_calibration_error(p, y)
    over = expected_calibration_error(probabilities(z, temperature=0.7), y)
    assert calibrated < 0.015
    assert over > 0.1 > 5 * calibrated
    fitted = fit_temperature(z, y)
    assert expected_calibration_error(probabilities(z, temperature=fitted), y) < 0.015


def test_reliability_bins_hold_counts_accuracy_and_confidence():
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0, 0])
    r = reliability(proba, y, bins=10)
    assert r.edges[0] == 0 and r.edges[-1] == 1 and r.n == 5
    assert r.counts.tolist() == [0, 0, 0, 0, 1, 2, 0, 0, 1, 1]  # 0.5 in (0.4, 0.5]
    assert r.accuracy[5] == 0.5 and r.confidence[5] == pytest.approx(0.575)
    assert np.isnan(r.accuracy[0]) and np.isnan(r.confidence[0])
    want = (abs(1 - 0.5) + 2 * abs(0.5 - 0.575) + abs(0 - 0.9) + abs(1 - 0.95)) / 5
    assert r.ece == pytest.approx(want)
    assert expected_calibration_error(proba, y, bins=10) == pytest.approx(want)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="activation"):
        probabilities(np.zeros((1, 2)), "relu")
    with pytest.raises(ValueError, match="at least one"):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, int))
    with pytest.raises(ValueError, match="shape"):
        reliability(np.zeros((3, 2)), np.zeros(2, int))
