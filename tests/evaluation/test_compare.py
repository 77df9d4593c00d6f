import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mien.cli.main import app
from mien.evaluation.compare import (
    CompareError,
    load_entries,
    load_entry,
    model_facts,
    parameter_count,
)

runner = CliRunner()


def _eval_json(path, acc, f1_happy, ips):
    record = {"model": "m", "data": "d", "split": "test", "n": 10, "accuracy": acc,
              "balanced_accuracy": acc - 0.1, "macro_f1": acc - 0.2, "labels": ["happy", "sad"],
              "per_class": {"happy": {"precision": 1.0, "recall": 1.0, "f1": f1_happy,
                                      "support": 5, "predicted": 5},
                            "sad": {"precision": 0.0, "recall": None, "f1": None,
                                    "support": 0, "predicted": 0}},
              "confusion": [[5, 0], [0, 0]], "seconds": 1.0, "images_per_second": ips}
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def repeats(tmp_path):
    run = tmp_path / "fer-a-x3"
    for seed, cm, secs in ((0, [[3, 1], [0, 4]], 100.0), (1, [[2, 2], [0, 4]], 140.0)):
        sub = run / f"seed-{seed}"
        sub.mkdir(parents=True)
        (sub / "metrics.json").write_text(json.dumps(
            {"classes": ["happy", "sad"], "confusion": cm, "train_seconds": secs,
             "history": []}))
    (run / "repeats.json").write_text(json.dumps({"runs": ["seed-0", "seed-1"]}))
    return run


def test_two_evaluation_jsons(tmp_path):
    a = _eval_json(tmp_path / "a.json", 0.8, 0.9, 500.0)
    b = _eval_json(tmp_path / "b.json", 0.7, 0.6, 250.0)
    ea, eb = load_entries([a, b])
    assert (ea.name, eb.name, ea.kind) == ("a", "b", "evaluation")
    assert ea.values["accuracy"].mean == 0.8 and ea.runs == 1
    assert ea.values["f1:happy"].mean == 0.9
    assert "f1:sad" not in ea.values  # undefined F1 stays undefined
    out = tmp_path / "o"
    result = runner.invoke(app, ["compare", str(a), str(b), "--markdown", str(out / "t.md"),
                                 "--csv", str(out / "t.csv"), "--plot", str(out / "t.png")])
    assert result.exit_code == 0, result.output
    assert "0.8000" in result.output and "0.7000" in result.output
    md = (out / "t.md").read_text().splitlines()
    assert md[0].startswith(
        "| entry | runs | scored on | accuracy | balanced acc. | macro-F1 | F1 happy")
    # F1 of sad is undefined; parameters unknown; images/s; no training time
    assert md[2] == ("| a | 1 | d [test], 10 images | 0.8000 | 0.7000 | 0.6000 | 0.900 | - | - "
                     "| 500 | - |")
    rows = list(csv.DictReader(io.StringIO((out / "t.csv").read_text())))
    assert [r["entry"] for r in rows] == ["a", "b"]
    assert rows[0]["scored_on"] == "d [test], 10 images"
    assert float(rows[1]["accuracy"]) == 0.7 and float(rows[1]["images_per_second"]) == 250.0
    assert rows[0]["f1_sad"] == ""
    with Image.open(out / "t.png") as im:
        assert im.format == "PNG" and im.width > 500


def test_repeats_folder_mean_std_min_max(repeats, tmp_path):
    e = load_entry(repeats)
    assert (e.kind, e.runs, e.labels) == ("repeats", 2, ("happy", "sad"))
    acc = e.values["accuracy"]
    assert (acc.mean, acc.min, acc.max) == pytest.approx((0.8125, 0.75, 0.875))
    assert acc.std == pytest.approx(0.125 / np.sqrt(2))  # sample std over two seeds
    assert e.values["balanced_accuracy"].mean == pytest.approx((0.875 + 0.75) / 2)
    assert e.values["train_seconds"].mean == 120.0
    assert acc.text() == "0.8125 ± 0.0884 [0.7500, 0.8750]"
    result = runner.invoke(app, ["compare", str(repeats), str(repeats / "seed-0"),
                                 "--markdown", str(tmp_path / "t.md")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "t.md").read_text()
    assert ("| fer-a-x3 | 2 | its validation split, 8 images | 0.8125 ± 0.0884 [0.7500, 0.8750] |"
            in md)
    assert "| seed-0 | 1 | its validation split, 8 images | 0.8750 | 0.8750 |" in md
    assert "120 ± 28" in md  # training seconds over the seeds


def test_parameter_count_skips_batchnorm_statistics(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "model.safetensors"
    st.save_file({"conv.weight": np.zeros((8, 1, 3, 3), np.float32),
                  "bn.weight": np.zeros(8, np.float32), "bn.running_mean": np.zeros(8, np.float32),
                  "bn.running_var": np.zeros(8, np.float32),
                  "bn.num_batches_tracked": np.zeros((), np.int64),
                  "fc.weight": np.zeros((2, 8), np.float32)}, str(path), metadata={"mien": "{}"})
    assert parameter_count(path) == 72 + 8 + 16
    (tmp_path / "metrics.json").write_text('{"train_seconds": 3.5}')
    assert model_facts(tmp_path) == {"parameters": 96, "train_seconds": 3.5}
    assert model_facts(path) == {"parameters": 96}
    assert model_facts("expression") == {}


def test_bad_entries_name_the_file(tmp_path):
    (tmp_path / "x.json").write_text('{"accuracy": 1}')
    with pytest.raises(CompareError, match=r"x.json: not a `mien evaluate --json` file"):
        load_entry(tmp_path / "x.json")
    (tmp_path / "run").mkdir()
    with pytest.raises(CompareError, match="run: no metrics.json"):
        load_entry(tmp_path / "run")
    with pytest.raises(CompareError, match="no such file"):
        load_entry(tmp_path / "nope")
