import dataclasses
import subprocess
import sys

import pytest

from mien.errors import MienError
from mien.models import create_model, list_models, model_info

# Trainable parameters at the reports' input size and class count (64x64x3 smile, 48x48x1 and
# 7 classes for FER, 160x160x3 glasses).
REPORT_PARAMS = {
    "smile-cnn": 1_625_410,
    "smile-autoencoder": 35_363,
    "fer-a": 392_263,
    "fer-b": 779_783,
    "fer-f": 779_783,
    "fer-c": 918_119,
    "fer-d": 918_119,
    "fer-e": 918_119,
    "fer-g": 918_119,
    "glasses-cnn": 222_210,
    "glasses-cnn-deep": 1_297_857,
}


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", sorted(REPORT_PARAMS))
def test_parameter_count_matches_report(name):
    info = model_info(name)
    model = create_model(name, info.num_classes)
    assert trainable(model) == REPORT_PARAMS[name]


def test_report_defaults():
    assert model_info("fer-a").input_size == (48, 48) and model_info("fer-a").in_channels == 1
    for name in ("fer-f", "fer-g"):
        assert model_info(name).loss == "squared_hinge"
        assert model_info(name).last_layer_l2 == pytest.approx(1e-4)
    for name in ("fer-a", "fer-b", "fer-c", "fer-d", "fer-e"):
        assert model_info(name).loss == "cross_entropy" and model_info(name).last_layer_l2 == 0
    assert model_info("glasses-cnn-deep").loss == "bce"
    assert model_info("glasses-cnn-deep").num_classes == 1
    assert model_info("smile-autoencoder").task == "autoencoder"
    assert {model_info(n).task for n in list_models()} == {"classify", "autoencoder"}


def test_fer_pooling_follows_the_report():
    from torch import nn

    def pools(name):
        return [type(m) for m in create_model(name, 7).features if isinstance(m, nn.Module)
                and isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]

    assert pools("fer-c") == [nn.MaxPool2d] * 3
    assert pools("fer-d") == [nn.AvgPool2d] * 3
    assert pools("fer-e") == [nn.MaxPool2d, nn.MaxPool2d, nn.AvgPool2d]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in create_model("fer-g", 7).modules())


def test_list_models_pattern():
    assert list_models("fer-*") == [f"fer-{v}" for v in "abcdefg"]
    assert "mien-net-s" in list_models()
    assert list_models("no-such-*") == []


def test_unknown_model_lists_the_available_names():
    with pytest.raises(MienError, match="fer-a.*smile-cnn"):
        create_model("fer-z", 7)
    with pytest.raises(MienError, match="unknown model 'nope'"):
        model_info("nope")


def test_model_info_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        model_info("fer-a").loss = "bce"


def test_bad_options_are_one_line_errors():
    with pytest.raises(MienError, match="does not accept widht; accepted options: dropout"):
        create_model("mien-net-s", 7, widht=2)
    with pytest.raises(MienError, match="num_classes"):
        create_model("fer-a", 0)
    with pytest.raises(MienError, match="too small"):
        create_model("glasses-cnn-deep", 1, input_size=(32, 32))
    with pytest.raises(MienError, match="divisible by 4"):
        create_model("smile-autoencoder", 0, input_size=(30, 30))


def test_overrides_change_the_architecture():
    import torch

    model = create_model("fer-a", 3, in_channels=3, input_size=(64, 64))
    # 64x64 after three 2x poolings is 8x8x128 = 8192 inputs to dense64 (4608 at 48x48)
    assert trainable(model) == REPORT_PARAMS["fer-a"] + 2 * 9 * 32 + (8192 - 4608) * 64 - 4 * 65
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    assert model.arch == "fer-a" and model.model_kwargs == {}
    net = create_model("mien-net-s", 5, dropout=0.0)
    assert net.model_kwargs == {"dropout": 0.0}


def test_importing_mien_models_does_not_import_torch():
    code = ("import sys, mien.models; assert 'torch' not in sys.modules; "
            "mien.models.list_models(); assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
