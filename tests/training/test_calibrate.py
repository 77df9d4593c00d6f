"""`mien calibrate`: a calibrated copy of a model file, its ECE as inference then gives it."""

import json

import numpy as np
import pytest
import torch
from synthetic import make_stripes
from typer.testing import CliRunner

from mien.cli.main import app, main
from mien.data.datasets import open_dataset
from mien.data.preprocess import Preprocess
from mien.evaluation.calibration import expected_calibration_error, negative_log_likelihood
from mien.models import create_model
from mien.models.export import check_onnx
from mien.models.loading import load_classifier
from mien.training.checkpoint import export_onnx, model_record, read_record, save_weights

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained fer-a (random weights) as .safetensors and .onnx, with flip TTA."""
    torch.manual_seed(0)
    model = create_model("fer-a", 2).eval()
    record = model_record(arch="fer-a", labels=("horizontal", "vertical"),
                          preprocess=Preprocess(), in_channels=1, tta="flip")
    folder = tmp_path_factory.mktemp("model")
    save_weights(folder / "m.safetensors", model.state_dict(), record)
    export_onnx(model, record, folder / "m.onnx")
    return folder


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    return make_stripes(tmp_path_factory.mktemp("data") / "stripes")


def _images(stripes):
    ds = open_dataset(stripes)["all"]
    return [ds.load(i, "gray") for i in range(len(ds))], ds.labels, ds.classes


@pytest.mark.parametrize("kind", ["onnx", "safetensors"])
def test_calibrated_copy_predicts_with_its_temperature(model_dir, stripes, tmp_path, kind):
    out = tmp_path / f"cal.{kind}"
    result = runner.invoke(app, ["calibrate", str(model_dir / f"m.{kind}"), str(stripes),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = check_onnx(out) if kind == "onnx" else read_record(out)
    cal = record["calibration"]
    assert record["temperature"] == cal["temperature"] and 0.05 <= cal["temperature"] <= 20
    assert cal["n"] == 40 and cal["data"] == f"{stripes} [all]"
    assert f"ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}" in result.output
    assert "temperature" not in (check_onnx(model_dir / "m.onnx") if kind == "onnx"
                                 else read_record(model_dir / "m.safetensors"))

    images, y, classes = _images(stripes)
    assert classes == ("horizontal", "vertical")
    before = load_classifier(model_dir / f"m.{kind}").predict_proba(images)
    after = load_classifier(out).predict_proba(images)
    assert expected_calibration_error(before, y) == pytest.approx(cal["ece_before"], abs=1e-6)
    assert expected_calibration_error(after, y) == pytest.approx(cal["ece_after"], abs=1e-6)
    assert negative_log_likelihood(after, y) <= negative_log_likelihood(before, y) + 1e-9
    # the weights are the same: with T = 1 again the copy predicts as the original did
    plain = load_classifier(out)
    plain.temperature = 1.0
    np.testing.assert_allclose(plain.predict_proba(images), before, atol=1e-6)


def test_onnx_and_safetensors_copies_agree(model_dir, stripes, tmp_path):
    for kind in ("onnx", "safetensors"):
        runner.invoke(app, ["calibrate", str(model_dir / f"m.{kind}"), str(stripes), "--out",
                            str(tmp_path / f"c.{kind}")])
    assert check_onnx(tmp_path / "c.onnx")["temperature"] == pytest.approx(
        read_record(tmp_path / "c.safetensors")["temperature"], rel=1e-3)


@pytest.mark.parametrize("args, message", [
    (["m.onnx", "{data}", "--out", "x.safetensors"], "give --out a name ending in .onnx"),
    (["m.onnx", "{data}", "--out", "x.txt"], "name a .onnx or .safetensors file"),
    (["m.onnx", "{data}", "--split", "test", "--out", "x.onnx"], "no split 'test'"),
    (["m.onnx", "--out", "x.onnx"], "give DATA"),
])
def test_bad_calls_exit_nonzero_with_one_line(model_dir, stripes, tmp_path, capsys, args,
                                              message):
    args = [str(model_dir / a) if a.startswith("m.") else str(tmp_path / a)
            if a.startswith("x.") else a.format(data=stripes) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", *args])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("x.*"))


@pytest.mark.slow
def test_a_bundled_model_calibrates_on_its_card_validation_data(shared_data, tmp_path):
    from mien.models.cards import read_card

    out = tmp_path / "smile.onnx"
    result = runner.invoke(app, ["calibrate", "smile", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cal = check_onnx(out)["calibration"]
    card = read_card("smile")
    assert cal["n"] == card["validation"]["n"] and cal["data"] == card["data"]["validation"]
    # the bundled file is calibrated on these very images already: the fit finds its temperature
    # again (fitted on raw outputs, whatever the file's temperature) and keeps its ECE
    assert cal["temperature"] == pytest.approx(card["calibration"]["temperature"], rel=1e-3)
    assert cal["ece_after"] == pytest.approx(cal["ece_before"], abs=1e-3)
    assert json.loads(json.dumps(cal)) == cal
