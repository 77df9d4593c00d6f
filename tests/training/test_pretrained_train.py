"""`mien train --model resnet18 --pretrained FILE`: ImageNet weights from a torchvision file."""

import pytest
import torch
from state_dicts import make_state, resnet_shapes

from mien.models.loading import load_classifier
from mien.models.pretrained import PretrainedError, zoo_key
from mien.training.checkpoint import load_weights
from mien.training.config import ConfigError, TrainConfig

from .conftest import run_cli


@pytest.fixture(scope="module")
def resnet18_pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("imagenet") / "resnet18-f37072fd.pth"
    torch.save(make_state(resnet_shapes("resnet18")), path)
    return path


def test_pretrained_freeze_run_reports_loaded_new_frozen_and_keeps_the_backbone(
        stripes, resnet18_pth, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", stripes, "--model", "resnet18", "--pretrained", resnet18_pth,
                     "--freeze", "--epochs", "1", "--batch-size", "8", "--input-size", "32x32",
                     "--device", "cpu", "--quiet", "--out", out)
    lines = result.output.splitlines()
    assert any(line.startswith("pretrained: loaded 120 tensors (11,179,840 values) of "
                               "resnet18's backbone") for line in lines), result.output
    assert any(line.startswith("pretrained: new (initialised at random): classifier, "
                               "pre_logits.dense1.0; the file's classifier (fc) is not used")
               for line in lines), result.output
    assert "pretrained: new 1-channel stem features.0.0.weight: conv1.weight summed" in \
        result.output  # the stripes are gray
    assert "frozen: the backbone (11,170,240 parameters" in result.output
    file_state = torch.load(resnet18_pth, weights_only=True)
    weights, record = load_weights(out / "model.safetensors")
    assert record["model_kwargs"] == {"small_stem": False}
    assert record["preprocess"]["mean"] == [0.449] and record["preprocess"]["std"] == [0.226]
    for key, tensor in file_state.items():
        ours = zoo_key("resnet18", key)
        if ours is None or key.endswith("num_batches_tracked"):
            continue
        expected = tensor.sum(1, keepdim=True) if key == "conv1.weight" else tensor
        assert torch.allclose(weights[ours], expected), key  # frozen: BatchNorm statistics too
    assert load_classifier(out).labels == ("horizontal", "vertical")  # the ONNX export works


def test_pretrained_backbone_learns_at_the_lower_rate():
    from mien.models import create_model
    from mien.training.optim import make_optimizer

    cfg = TrainConfig(model="resnet18", pretrained="w.pth", lr=0.01, backbone_lr_mult=0.1)
    model = create_model("resnet18", 2)
    groups = {g["name"]: g["lr"] for g in
              make_optimizer(cfg, model, transfer=bool(cfg.pretrained)).param_groups}
    assert groups == {"head": 0.01, "backbone": pytest.approx(0.001)}


def test_pretrained_options_are_checked():
    with pytest.raises(ConfigError, match="keep one"):
        TrainConfig(model="resnet18", pretrained="w.pth", transfer_from="runs/a")
    with pytest.raises(ConfigError, match="model 'fer-a': --pretrained fits resnet18"):
        TrainConfig(model="fer-a", pretrained="w.pth")
    assert TrainConfig.from_dict({"model": "vgg19", "pretrained": "w.pth", "freeze": True}).freeze


def test_pretrained_file_that_does_not_fit_exits_with_one_line(stripes, tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(make_state(resnet_shapes("resnet50")), path)
    result = run_cli("train", stripes, "--model", "resnet18", "--pretrained", path, "--epochs",
                     "1", "--device", "cpu", "--quiet", "--out", tmp_path / "run", ok=False)
    assert isinstance(result.exception, PretrainedError)  # main() prints it as one line
    assert "resnet50.pth: layer1.0.conv1.weight is (64, 64, 1, 1)" in str(result.exception)
