"""The registered heads (RBF SVM, random forest, k-NN, logistic regression, bagged SVMs) and
`Head`, the fitted classifier over embeddings that every head becomes.

Distance- and margin-based heads standardise the embeddings first: ReLU activations of
different units differ in scale by orders of magnitude, which would otherwise let a few units
decide every RBF kernel value and every neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mien.errors import MienError
from mien.heads.registry import HeadInfo, register_head


class Head:
    """A scikit-learn estimator fitted on (N, D) embeddings; probabilities over `num_classes`
    label indices, including classes absent from the training embeddings (probability 0)."""

    def __init__(self, info: HeadInfo, estimator, params: Mapping[str, Any],
                 num_classes: int | None = None):
        self.info = info
        self.estimator = estimator
        self.params = dict(params)
        self.num_classes = num_classes

    @property
    def name(self) -> str:
        return self.info.name

    def __repr__(self) -> str:
        return f"Head({self.name!r}, {self.params})"

    def fit(self, x: np.ndarray, y: np.ndarray, num_classes: int | None = None) -> Head:
        y = np.asarray(y, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise MienError(f"head {self.name!r}: the training embeddings hold one class only; "
                            "give images of at least two classes")
        try:
            self.estimator.fit(np.asarray(x, dtype=np.float32), y)
        except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is both
            raise MienError(f"head {self.name!r} {self.params}: {exc}") from exc
        self.num_classes = int(num_classes if num_classes is not None else y.max() + 1)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, num_classes), rows summing to 1 (softmax scores for decision heads)."""
        if self.num_classes is None:
            raise MienError(f"head {self.name!r} is not fitted; call fit first")
        x = np.asarray(x, dtype=np.float32)
        classes = self.estimator.classes_
        if self.info.scores == "decision":
            p = _decision_proba(self.estimator.decision_function(x))
        elif self.info.scores == "bagged-decision":
            p = _bagged_proba(self.estimator, x)
        else:
            p = self.estimator.predict_proba(x)
        out = np.zeros((len(x), self.num_classes), dtype=np.float64)
        out[:, classes] = p
        return out.astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def _decision_proba(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:  # binary: the margin of the second class
        p1 = 1.0 / (1.0 + np.exp(-d))
        return np.stack([1.0 - p1, p1], axis=1)
    z = np.exp(d - d.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _bagged_proba(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """Mean of the members' softmax decision values. A member whose subsample lacked a class
    scores only the classes it saw (scikit-learn's own averaging of decision values assumes
    every member saw every class and fails otherwise)."""
    bag = pipeline.steps[-1][1]
    xs = pipeline[:-1].transform(x)
    total = np.zeros((len(x), len(bag.classes_)))
    for member, features in zip(bag.estimators_, bag.estimators_features_, strict=True):
        # members are fitted on label indices 0..k-1 of bag.classes_
        total[:, member.classes_] += _decision_proba(member.decision_function(xs[:, features]))
    return total / len(bag.estimators_)


def _scaled(name: str, estimator) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), (name, estimator)])


@register_head(
    "svm", scores="decision",
    params={"C": "svc__C", "gamma": "svc__gamma", "kernel": "svc__kernel",
            "class_weight": "svc__class_weight"},
    grid={"C": (0.1, 1.0, 10.0, 100.0), "gamma": ("scale", 0.001, 0.01, 0.1)},
)
def svm():
    """RBF support vector machine on standardised embeddings (one-vs-one, libsvm)."""
    return _scaled("svc", SVC(kernel="rbf", C=1.0, gamma="scale", cache_size=500))


@register_head(
    "forest", jobs_param="n_jobs",
    params={"trees": "n_estimators", "depth": "max_depth", "min_split": "min_samples_split",
            "min_leaf": "min_samples_leaf", "criterion": "criterion", "bootstrap": "bootstrap",
            "max_features": "max_features", "class_weight": "class_weight", "n_jobs": "n_jobs",
            "seed": "random_state"},
    grid={"trees": (100, 300), "depth": (None, 20), "min_leaf": (1, 3),
          "criterion": ("gini", "entropy")},
)
def forest():
    """Random forest of 300 trees on raw embeddings (trees need no scaling)."""
    return RandomForestClassifier(n_estimators=300, n_jobs=-1, random_state=0)


@register_head(
    "knn", jobs_param="n_jobs",
    params={"k": "knn__n_neighbors", "weights": "knn__weights", "metric": "knn__metric",
            "p": "knn__p", "algorithm": "knn__algorithm", "leaf_size": "knn__leaf_size",
            "n_jobs": "knn__n_jobs"},
    grid={"k": (1, 5, 9, 15, 25), "weights": ("uniform", "distance"),
          "metric": ("euclidean", "manhattan")},
)
def knn():
    """k-nearest neighbours (k=9, Minkowski p=2) on standardised embeddings.

    scikit-learn picks the search structure; `algorithm=ball_tree` forces a ball tree."""
    return _scaled("knn", KNeighborsClassifier(n_neighbors=9, n_jobs=-1))


@register_head(
    "logreg",
    params={"C": "logreg__C", "max_iter": "logreg__max_iter",
            "class_weight": "logreg__class_weight"},
    grid={"C": (0.01, 0.1, 1.0, 10.0)},
)
def logreg():
    """Multinomial logistic regression on standardised embeddings."""
    return _scaled("logreg", LogisticRegression(C=1.0, max_iter=1000))


@register_head(
    "bagged-svm", scores="bagged-decision", jobs_param="n_jobs",
    params={"estimators": "bag__n_estimators", "max_samples": "bag__max_samples",
            "C": "bag__estimator__svc__C", "gamma": "bag__estimator__svc__gamma",
            "n_jobs": "bag__n_jobs", "seed": "bag__random_state"},
    grid={"max_samples": (0.1, 0.2), "C": (1.0, 10.0)},
)
def bagged_svm():
    """Ten RBF SVMs on random 10% subsamples, fitted in parallel, their scores averaged.

    Each member's softmaxed decision values are averaged. SVM training grows faster than
    linearly with N, so ten 10% SVMs cost far less than one on everything."""
    # In a pipeline the members get real subsamples: given a bare SVC, bagging passes zero
    # sample weights instead, and libsvm then drops classes inconsistently.
    svc = Pipeline([("svc", SVC(kernel="rbf", C=1.0, gamma="scale", cache_size=200))])
    return _scaled("bag", BaggingClassifier(estimator=svc, n_estimators=10, max_samples=0.1,
                                            n_jobs=-1, random_state=0))
