import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from mien.models.loading import load_classifier
from mien.training.config import ConfigError, TrainConfig
from mien.training.distill import distill_loss, soften, teacher_probabilities

from .conftest import FAST, run_cli


def test_soften_keeps_order_and_flattens():
    p = torch.tensor([[0.7, 0.2, 0.1]])
    assert torch.allclose(soften(p, 1.0), p)
    hot = soften(p, 3.0)
    assert torch.allclose(hot.sum(1), torch.ones(1))
    assert hot[0, 0] < p[0, 0] and hot[0, 2] > p[0, 2]
    assert (hot.argsort(1) == p.argsort(1)).all()


def test_distill_loss_is_zero_only_when_the_student_agrees():
    teacher = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    y = torch.tensor([0, 2])
    agree = torch.log(teacher)  # logits whose softmax is the teacher's
    for t in (1.0, 2.0, 4.0):
        assert float(distill_loss(agree, teacher, y, temperature=t)) == pytest.approx(0, abs=1e-5)
        disagree = torch.tensor([[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]])
        assert float(distill_loss(disagree, teacher, y, temperature=t)) > 0.1


def test_class_weights_weigh_each_image_by_its_label():
    teacher = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    logits = torch.tensor([[0.0, 0.0], [5.0, 0.0]])  # image 0 far from the teacher, 1 near
    y = torch.tensor([0, 1])
    plain = distill_loss(logits, teacher, y, temperature=1.0)
    heavy_0 = distill_loss(logits, teacher, y, temperature=1.0,
                           class_weights=torch.tensor([9.0, 1.0]))
    heavy_1 = distill_loss(logits, teacher, y, temperature=1.0,
                           class_weights=torch.tensor([1.0, 9.0]))
    assert heavy_1 < plain < heavy_0


def test_teacher_probabilities_follow_the_data_class_order(base_run, stripes):
    images = np.stack([np.asarray(Image.open(p).convert("L"))
                       for p in sorted(stripes.rglob("*.png"))[:10]])
    direct = load_classifier(base_run).predict_proba(list(images))
    lines = []
    p = teacher_probabilities(str(base_run), images, ("horizontal", "vertical"), lines.append)
    assert p.shape == (10, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p, direct, atol=1e-5)
    swapped = teacher_probabilities(str(base_run), images, ("vertical", "horizontal"), lines.append)
    np.testing.assert_allclose(swapped, p[:, ::-1], atol=1e-6)
    both = teacher_probabilities(f"{base_run},{base_run}", images, ("horizontal", "vertical"),
                                 lines.append)
    np.testing.assert_allclose(both, p, atol=1e-5)
    assert "teacher: 2 model(s)" in lines[-1]


def test_a_teacher_of_other_classes_is_refused(base_run, stripes):
    images = np.zeros((2, 48, 48), np.uint8)
    with pytest.raises(ConfigError, match="differ from the data's"):
        teacher_probabilities(str(base_run), images, ("happy", "sad"), lambda _: None)


def test_distillation_options_are_checked():
    with pytest.raises(ConfigError, match="distill_weight"):
        TrainConfig(distill_weight=1.5)
    with pytest.raises(ConfigError, match="distill_temperature"):
        TrainConfig(distill_temperature=0)
    with pytest.raises(ConfigError, match="cross_entropy"):
        TrainConfig(teacher="x", loss="squared_hinge")


def test_train_with_a_teacher(base_run, stripes, tmp_path):
    out = tmp_path / "student"
    result = run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out,
                     "--teacher", base_run, "--distill-weight", "0.7",
                     "--distill-temperature", "3")
    assert "teacher: 1 model(s)" in result.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["teacher"] == str(base_run) and cfg["distill_weight"] == 0.7
    assert (out / "model.onnx").is_file()
    # resuming a finished run recomputes the teacher and trains nothing more
    run_cli("train", "--resume", out, "--quiet")


def test_a_missing_teacher_is_a_one_line_error(stripes, tmp_path):
    result = run_cli("train", stripes, *FAST, "--epochs", "1", "--out", tmp_path / "s",
                     "--teacher", tmp_path / "nope.onnx", ok=False)
    assert result.exit_code != 0 and "nope.onnx: file not found" in str(result.exception)
