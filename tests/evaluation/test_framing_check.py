"""Issue 18, item 1: scoring whole photos with a face-crop model warns and suggests --detect;
face crops cut as `mien analyze` cuts them, and pictures without faces, do not warn."""

import json
import shutil

import pytest
from eval_fakes import BrightnessClassifier
from typer.testing import CliRunner

from mien.cli.main import app
from mien.data.datasets import open_dataset
from mien.evaluation.evaluate import evaluate, framing_warnings
from mien.inference.crops import crop_folder
from mien.inference.pipeline import Pipeline


@pytest.fixture(scope="module")
def whole_photos(shared_data, tmp_path_factory):
    """Eight CelebA aligned pictures (face, hair, shoulders and background) in two classes."""
    root = tmp_path_factory.mktemp("celeba")
    files = sorted((shared_data / "celeba" / "img_align_celeba").glob("*.jpg"))[:8]
    assert len(files) == 8
    for i, path in enumerate(files):
        (root / ("dark" if i % 2 else "bright")).mkdir(exist_ok=True)
        shutil.copy(path, root / ("dark" if i % 2 else "bright") / path.name)
    return root


def test_whole_photos_warn_and_their_face_crops_do_not(whole_photos, tmp_path):
    clf = BrightnessClassifier()  # no framing recorded: the default one, margin 0.2
    (warning,) = framing_warnings(clf, open_dataset(whole_photos)["all"])
    assert "looks like whole photos" in warning and "--detect" in warning
    assert "about 69% (margin 0.2)" in warning  # 1 / 1.2**2 of a crop is face

    crops = crop_folder(whole_photos, tmp_path / "crops", Pipeline(None, {}))
    assert crops.written == 8
    assert framing_warnings(clf, open_dataset(crops.root)["all"]) == ()


def test_pictures_without_faces_do_not_warn(folder):
    result = evaluate(BrightnessClassifier(), open_dataset(folder)["all"], check_framing=True)
    assert result.warnings == () and "warnings" not in result.to_json()


def test_mien_evaluate_warns_on_stderr_and_in_the_json(whole_photos, fake_loader, tmp_path):
    runner = CliRunner()
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["evaluate", "m", str(whole_photos), "--json", str(out)])
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(out.read_text())["warnings"]
    assert f"warning: {warning}" in result.output.replace("\n", " ")

    result = runner.invoke(app, ["evaluate", "m", str(whole_photos), "--detect", "--json",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert "warnings" not in json.loads(out.read_text()) and "warning:" not in result.output
