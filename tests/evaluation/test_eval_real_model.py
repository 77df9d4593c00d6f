"""Evaluation of a real (tiny, freshly trained) model through `mien.models.loading`."""

import json

import numpy as np
import pytest
from eval_fakes import make_folder
from typer.testing import CliRunner

from mien.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from mien.training.config import TrainConfig
    from mien.training.fit import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    levels = {"dark": (10, 70), "mid": (100, 150), "bright": (190, 250)}
    make_folder(root / "train", {c: rng.integers(*r, 12).tolist() for c, r in levels.items()})
    make_folder(root / "val", {c: rng.integers(*r, 5).tolist() for c, r in levels.items()})
    cfg = TrainConfig(data=str(root / "train"), val=str(root / "val"), model="fer-a", epochs=2,
                      batch_size=8, threads=1, num_workers=1, out=str(root / "run"))
    train(cfg, progress=False, echo=lambda _: None)
    return root


def test_run_folder_scores_as_training_validated_it(tiny_run, tmp_path):
    run, val = tiny_run / "run", tiny_run / "val"
    res = runner.invoke(app, ["evaluate", str(run), str(val), "--json", str(tmp_path / "e.json"),
                              "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "e.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())
    # the evaluation path (loader + Preprocess) reproduces training's validation exactly
    assert record["labels"] == trained["classes"]
    assert record["confusion"] == trained["confusion"]
    assert record["accuracy"] == pytest.approx(trained["best_val_accuracy"])
    assert record["n"] == 15
    assert record["train_seconds"] == trained["train_seconds"]

    from mien.models.loading import load_classifier

    torch_model = load_classifier(str(run / "model.safetensors")).model
    assert record["parameters"] == sum(p.numel() for p in torch_model.parameters())
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "training curves" in page and "fer-a" in page


def test_exported_onnx_matches_run_folder(tiny_run, tmp_path):
    run, val = tiny_run / "run", tiny_run / "val"
    outs = []
    for spec in (run, run / "model.onnx", run / "model.safetensors"):
        path = tmp_path / f"{len(outs)}.json"
        res = runner.invoke(app, ["evaluate", str(spec), str(val), "--json", str(path)])
        assert res.exit_code == 0, res.output
        outs.append(json.loads(path.read_text()))
    assert outs[0]["confusion"] == outs[1]["confusion"] == outs[2]["confusion"]
    assert outs[0]["parameters"] == outs[2]["parameters"] and "parameters" not in outs[1]
