import json

import numpy as np
import pytest
from eval_fakes import BrightnessClassifier, HalfClassifier, make_folder
from PIL import Image

from mien.data.datasets import LabelSpec, open_dataset
from mien.errors import DatasetError, MienError
from mien.evaluation.calibration import expected_calibration_error
from mien.evaluation.evaluate import evaluate, select_split


def _ds(root):
    return open_dataset(root)["all"]


def test_scores_folder_and_skips_unreadable(folder):
    clf = BrightnessClassifier()
    result = evaluate(clf, _ds(folder), batch_size=4)
    m = result.metrics
    assert m.labels == ("dark", "mid", "bright")  # the model's order, not the folder order
    assert m.n == 10
    assert m.confusion == ((2, 1, 0), (0, 2, 1), (0, 0, 4))
    assert m.accuracy == pytest.approx(0.8)
    assert [c.precision for c in m.per_class] == pytest.approx([1.0, 2 / 3, 0.8])
    assert [c.recall for c in m.per_class] == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert len(result.unreadable) == 1
    assert result.unreadable[0].source.endswith("99-broken.png")
    assert "99-broken.png" in result.unreadable[0].error
    assert all("broken" not in s for s in result.sources)
    # 11 files streamed 4 at a time; the broken one leaves its batch one short
    assert clf.batches == [4, 4, 2]
    assert result.proba.shape == (10, 3) and result.proba.dtype == np.float32
    np.testing.assert_allclose(result.proba.sum(axis=1), 1.0, rtol=1e-5)
    assert result.seconds > 0 and result.images_per_second > 0
    # most confident mistake first: level 120 read as mid beats level 200 read as bright
    worst = [result.sources[r].split("faces/")[1] for r in result.mistakes()]
    assert worst == ["dark/02.png", "mid/02.png"]
    assert result.image(result.mistakes()[0], "gray")[0, 0] == 120


def test_json_has_exactly_the_documented_shape(folder):
    result = evaluate(BrightnessClassifier(), _ds(folder), model_name="m", data_name="d")
    record = json.loads(json.dumps(result.to_json()))
    required = {"model": str, "data": str, "n": int, "accuracy": float,
                "balanced_accuracy": float, "macro_f1": float, "labels": list, "per_class": dict,
                "confusion": list, "seconds": float, "images_per_second": float}
    for key, kind in required.items():
        assert isinstance(record[key], kind), key
    assert set(record) - set(required) <= {"split", "tta", "unreadable", "top2_accuracy", "ece"}
    assert record["ece"] == pytest.approx(expected_calibration_error(result.proba,
                                                                     result.y_true))
    assert (record["model"], record["data"], record["n"]) == ("m", "d", 10)
    assert record["labels"] == ["dark", "mid", "bright"]
    assert list(record["per_class"]) == record["labels"]
    for scores in record["per_class"].values():
        assert set(scores) == {"precision", "recall", "f1", "support", "predicted"}
    assert record["per_class"]["mid"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3, "predicted": 3})
    assert record["confusion"] == [[2, 1, 0], [0, 2, 1], [0, 0, 4]]
    assert all(isinstance(v, int) for row in record["confusion"] for v in row)
    assert record["accuracy"] == pytest.approx(0.8)
    assert record["unreadable"][0]["source"].endswith("99-broken.png")


def test_label_without_samples_is_null_in_json(tmp_path):
    root = make_folder(tmp_path / "d", {"dark": [30, 40], "bright": [220]})
    record = evaluate(BrightnessClassifier(), _ds(root)).to_json()
    assert record["per_class"]["mid"]["recall"] is None
    assert record["per_class"]["mid"]["f1"] is None
    assert record["per_class"]["mid"]["support"] == 0
    assert record["balanced_accuracy"] == 1.0  # mid is left out of the average
    assert "null" in json.dumps(record)


def test_label_map_and_ignore(tmp_path):
    root = make_folder(tmp_path / "d", {"black": [20, 35], "mid": [130], "white": [240],
                                        "contempt": [128, 128]})
    ds = _ds(root)
    with pytest.raises(DatasetError, match=r"'black'.*--label-map black=<label>.*--ignore black"):
        evaluate(BrightnessClassifier(), ds)
    with pytest.raises(DatasetError, match="'contempt'"):
        evaluate(BrightnessClassifier(), ds, LabelSpec.parse(label_map="black=dark,white=bright"))
    spec = LabelSpec.parse(label_map="black=dark,white=bright", ignore="contempt")
    result = evaluate(BrightnessClassifier(), ds, spec)
    assert result.metrics.n == 4
    assert [c.support for c in result.metrics.per_class] == [2, 1, 1]
    assert result.metrics.accuracy == 1.0


def test_tta_flip_averages_with_the_mirror(tmp_path):
    img = np.zeros((8, 8), np.uint8)
    img[:, :4] = 255  # bright left half
    (tmp_path / "d" / "left").mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / "d" / "left" / "a.png")
    ds = _ds(tmp_path / "d")
    plain = evaluate(HalfClassifier(), ds)
    flipped = evaluate(HalfClassifier(), ds, tta="flip")
    assert plain.proba[0, 0] > 0.6
    np.testing.assert_allclose(flipped.proba[0], [0.5, 0.5], atol=1e-6)
    assert flipped.to_json()["tta"] == "flip"
    with pytest.raises(MienError, match="--tta 'spin'"):
        evaluate(HalfClassifier(), ds, tta="spin")
    # A model that does flip TTA itself is not flipped a second time (same result, half the work)
    own = HalfClassifier()
    own.tta = "flip"
    calls = []
    own.predict_proba = lambda images, f=own.predict_proba: calls.append(len(images)) or f(images)
    again = evaluate(own, ds, tta="flip")
    assert calls == [1] and again.to_json()["tta"] == "flip"


def test_all_unreadable_is_an_error(tmp_path):
    (tmp_path / "d" / "dark").mkdir(parents=True)
    (tmp_path / "d" / "dark" / "x.jpg").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="none of the 1 images"):
        evaluate(BrightnessClassifier(), _ds(tmp_path / "d"))


def test_select_split_prefers_test_then_val(tmp_path):
    for split in ("train", "val"):
        make_folder(tmp_path / "t" / split, {"dark": [30], "mid": [128]})
    splits = open_dataset(tmp_path / "t")
    assert select_split(splits)[0] == "val"
    assert select_split(splits, "train")[0] == "train"
    with pytest.raises(DatasetError, match="no split 'test'.*--split"):
        select_split(splits, "test", source="t")
    make_folder(tmp_path / "t" / "test", {"dark": [30]})
    assert select_split(open_dataset(tmp_path / "t"))[0] == "test"


def test_fer_csv_split(tmp_path):
    rows = [(0, 30, "Training"), (3, 220, "PublicTest"), (0, 35, "PublicTest"),
            (3, 40, "PrivateTest"), (6, 128, "PrivateTest")]
    lines = ["emotion,pixels,Usage"] + [f"{e},{' '.join([str(v)] * 16)},{u}" for e, v, u in rows]
    (tmp_path / "fer.csv").write_text("\n".join(lines) + "\n")
    splits = open_dataset(tmp_path / "fer.csv")
    spec = LabelSpec.parse(label_map="angry=dark,happy=bright,neutral=mid")
    name, ds = select_split(splits)
    assert name == "test"
    test = evaluate(BrightnessClassifier(), ds, spec, split=name)
    assert test.metrics.n == 2 and test.metrics.accuracy == 0.5  # happy at level 40 reads dark
    assert test.sources[0].endswith("fer.csv:row 5")
    val = evaluate(BrightnessClassifier(), select_split(splits, "val")[1], spec)
    assert val.metrics.confusion == ((1, 0, 0), (0, 0, 0), (0, 0, 1))
