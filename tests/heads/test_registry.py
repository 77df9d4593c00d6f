import json
import zipfile

import numpy as np
import pytest

from mien.errors import ModelFileError
from mien.heads import create_head, head_info, list_heads
from mien.heads.registry import UnknownHeadError
from mien.heads.saved import load_estimator

from .conftest import blobs

HEADS = list_heads()


def test_every_documented_head_is_registered():
    assert HEADS == ["bagged-svm", "forest", "knn", "logreg", "svm"]
    for name in HEADS:
        info = head_info(name)
        assert info.description and info.grid, name
        assert set(info.grid) <= set(info.params)


@pytest.mark.parametrize("name", HEADS)
def test_head_fits_predicts_and_round_trips_without_pickle(name, tmp_path):
    import skops.io as sio

    x, y = blobs(seed=1)
    xt, yt = blobs(n_per_class=10, seed=1)  # same centres, fresh points
    xt = xt + np.random.default_rng(5).normal(0, 0.1, xt.shape).astype(np.float32)
    head = create_head(name).fit(x, y, num_classes=3)
    p = head.predict_proba(xt)
    assert p.shape == (30, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p.argmax(axis=1) == yt).mean() >= 0.9

    file = tmp_path / "head.skops"
    sio.dump(head.estimator, file)
    with zipfile.ZipFile(file) as z:  # JSON schema + .npy arrays, nothing pickled
        names = z.namelist()
        assert "schema.json" in names
        assert all(n == "schema.json" or n.endswith(".npy") for n in names), names
        json.loads(z.read("schema.json"))
        for n in names:
            if n.endswith(".npy"):
                with z.open(n) as fh:
                    np.lib.format.read_array(fh, allow_pickle=False)
    again = create_head(name)
    again.estimator, again.num_classes = load_estimator(file), 3
    np.testing.assert_array_equal(again.predict_proba(xt), p)


def test_params_map_onto_the_estimator():
    assert create_head("svm", C=10, gamma=0.01).estimator.get_params()["svc__C"] == 10
    forest = create_head("forest", trees=7, depth=3, criterion="entropy").estimator
    assert (forest.n_estimators, forest.max_depth, forest.criterion) == (7, 3, "entropy")
    knn = create_head("knn", k=3, weights="distance", metric="manhattan", algorithm="ball_tree")
    assert knn.estimator.get_params()["knn__algorithm"] == "ball_tree"
    bag = create_head("bagged-svm", estimators=4, max_samples=0.5, n_jobs=2).estimator
    assert bag.get_params()["bag__n_estimators"] == 4 and bag.get_params()["bag__n_jobs"] == 2


def test_unknown_names_are_errors_that_list_the_choices():
    with pytest.raises(UnknownHeadError, match="choose one of bagged-svm, forest"):
        create_head("xgboost")
    with pytest.raises(UnknownHeadError, match="no parameter trees; it takes C, gamma"):
        create_head("svm", trees=3)


def test_bad_parameter_value_names_the_head():
    x, y = blobs()
    with pytest.raises(Exception, match="head 'svm'.*C"):
        create_head("svm", C=-1).fit(x, y)


def test_class_missing_from_training_gets_probability_zero():
    x, y = blobs(k=3)
    keep = y != 1
    y2 = np.where(y[keep] == 2, 2, 0)
    p = create_head("logreg").fit(x[keep], y2, num_classes=3).predict_proba(x)
    assert p.shape == (90, 3) and np.all(p[:, 1] == 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_loading_refuses_types_outside_the_allow_list(tmp_path):
    import os

    import skops.io as sio

    file = tmp_path / "evil.skops"
    sio.dump({"run": os.system}, file)
    with pytest.raises(ModelFileError, match="types mien does not load"):
        load_estimator(file)
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable skops file"):
        load_estimator(tmp_path / "junk.skops")


def test_bagged_svm_averages_members_that_missed_a_class():
    x, y = blobs(seed=2)
    head = create_head("bagged-svm", estimators=8, max_samples=8, n_jobs=1).fit(x, y, 3)
    members = head.estimator.steps[-1][1].estimators_
    assert any(len(m.classes_) < 3 for m in members)  # the case scikit-learn cannot average
    p = head.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p.argmax(axis=1) == y).mean() >= 0.9


def test_docs_list_every_head_and_its_default_grid():
    from pathlib import Path

    from mien.heads.registry import grid_text

    doc = (Path(__file__).resolve().parents[2] / "docs" / "heads.md").read_text()
    for name in HEADS:
        assert f"| `{name}` |" in doc, name
        assert f"- `{name}`: {grid_text(name)}\n" in doc, name
        for param in head_info(name).params:
            assert f"`{param}`" in doc, (name, param)
