import numpy as np
import pytest

from mien.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    top_k_accuracy,
)

LABELS = ("a", "b", "c", "d", "e")
# a: 3 samples, b: 2, c: 2 but never predicted, d: no samples but predicted once,
# e: neither samples nor predictions.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 3, 0, 1])


def test_confusion_rows_are_true_classes_in_label_order():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 5)
    assert cm.tolist() == [
        [2, 1, 0, 0, 0],
        [0, 1, 0, 1, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]


def test_hand_computed_values_and_zero_division_convention():
    m = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m.n == 7
    assert m.accuracy == pytest.approx(3 / 7)
    # mean recall over a, b, c only (d and e have no samples)
    assert m.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert m.macro_f1 == pytest.approx((2 / 3 + 2 / 5 + 0) / 3)
    a, b, c, d, e = m.per_class
    assert (a.precision, a.recall, a.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert (b.precision, b.recall, b.f1) == pytest.approx((1 / 3, 1 / 2, 2 / 5))
    # never predicted: precision 0, recall 0, F1 0 (still counted in the averages)
    assert (c.precision, c.recall, c.f1, c.support, c.predicted) == (0.0, 0.0, 0.0, 2, 0)
    # no samples: recall and F1 undefined
    assert (d.precision, d.recall, d.f1, d.support, d.predicted) == (0.0, None, None, 0, 1)
    assert (e.recall, e.f1, e.support, e.predicted) == (None, None, 0, 0)
    assert [p.support for p in m.per_class] == [3, 2, 2, 0, 0]
    assert [p.predicted for p in m.per_class] == [3, 3, 0, 1, 0]
    assert m.by_label("b") is b
    assert m.confusion_matrix.sum() == 7


def test_perfect_predictions():
    y = np.array([0, 1, 2, 2])
    m = classification_metrics(y, y, ("x", "y", "z"))
    assert (m.accuracy, m.balanced_accuracy, m.macro_f1) == (1.0, 1.0, 1.0)


def test_top_k_hand_computed():
    proba = np.array([
        [0.5, 0.3, 0.2],  # true 1: 2nd
        [0.1, 0.2, 0.7],  # true 0: 3rd
        [0.2, 0.6, 0.2],  # true 2: tie with 0 for 2nd -> lower index (0) wins
        [0.9, 0.05, 0.05],  # true 0: 1st
    ])
    y = np.array([1, 0, 2, 0])
    assert top_k_accuracy(y, proba, 1) == 0.25
    assert top_k_accuracy(y, proba, 2) == 0.5
    assert top_k_accuracy(y, proba, 3) == 1.0
    m = classification_metrics(y, proba.argmax(1), "abc", proba=proba, top_k=(1, 2))
    assert m.top_k == ((1, 0.25), (2, 0.5))
    assert m.accuracy == 0.25


def test_bad_input_raises():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="length"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics([], [], "ab")
    with pytest.raises(ValueError, match="k=4"):
        top_k_accuracy([0], np.ones((1, 3)) / 3, 4)


def test_matches_sklearn_on_random_predictions():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    c = 6
    y_true = rng.integers(0, c - 1, size=500)  # class 5 has no samples
    y_pred = rng.integers(0, c, size=500)
    y_pred[y_pred == 2] = 3  # class 2 is never predicted
    m = classification_metrics(y_true, y_pred, [str(i) for i in range(c)])
    present = sorted(set(y_true.tolist()))
    assert m.accuracy == pytest.approx(sk.accuracy_score(y_true, y_pred))
    with pytest.warns(UserWarning):  # sklearn warns about the class with no samples
        assert m.balanced_accuracy == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(
        sk.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    p, r, f, s = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(c)), zero_division=0
    )
    assert [x.precision for x in m.per_class] == pytest.approx(p.tolist())
    assert [x.support for x in m.per_class] == s.tolist()
    assert [x.recall for x in m.per_class[:5]] == pytest.approx(r[:5].tolist())
    assert [x.f1 for x in m.per_class[:5]] == pytest.approx(f[:5].tolist())
    assert m.per_class[5].recall is None and m.per_class[2].predicted == 0
    np.testing.assert_array_equal(
        m.confusion_matrix, sk.confusion_matrix(y_true, y_pred, labels=list(range(c)))
    )


def test_metrics_from_confusion_equal_those_from_labels():
    from mien.evaluation.metrics import metrics_from_confusion

    cm = confusion_matrix(Y_TRUE, Y_PRED, 5)
    assert metrics_from_confusion(cm, LABELS) == classification_metrics(Y_TRUE, Y_PRED, LABELS)
    with pytest.raises(ValueError, match="shape"):
        metrics_from_confusion(cm, LABELS[:4])
