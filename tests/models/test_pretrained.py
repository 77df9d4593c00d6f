"""ImageNet state dicts in torchvision's and timm's layouts into the zoo (models.pretrained)."""

import numpy as np
import pytest
import torch
from state_dicts import (
    TORCHVISION_KEYS,
    TORCHVISION_PARAMETERS,
    imagenet_shapes,
    make_state,
    resnet_shapes,
    vgg_shapes,
)

from mien.models import create_model
from mien.models.pretrained import (
    LAYOUTS,
    PretrainedError,
    create_pretrained,
    file_key,
    load_state,
    model_kwargs_for,
    read_state_dict,
    zoo_key,
)

ARCHS = sorted(LAYOUTS)
HEAD = ("pre_logits.", "classifier.")


def zoo(arch: str, in_channels: int = 3, **kwargs):
    kwargs = {**model_kwargs_for(arch, {}), **kwargs}
    return create_model(arch, 2, in_channels=in_channels, input_size=(48, 48), **kwargs)


@pytest.mark.parametrize("arch", ARCHS)
def test_hand_written_tables_are_torchvisions(arch):
    shapes = imagenet_shapes(arch)
    assert len(shapes) == TORCHVISION_KEYS[arch]
    params = sum(torch.Size(s).numel() for k, s in shapes.items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert params == TORCHVISION_PARAMETERS[arch]


def test_known_keys_map_both_ways():
    pairs = {
        "resnet18": [("conv1.weight", "features.0.0.weight"),
                     ("bn1.running_var", "features.0.1.running_var"),
                     ("layer1.0.bn1.running_mean", "features.1.0.body.1.running_mean"),
                     ("layer1.1.conv2.weight", "features.1.1.body.3.weight"),
                     ("layer3.0.downsample.1.weight", "features.3.0.shortcut.1.weight")],
        "resnet50": [("layer2.3.conv3.weight", "features.2.3.body.6.weight"),
                     ("layer4.2.bn3.bias", "features.4.2.body.7.bias"),
                     ("layer1.0.downsample.0.weight", "features.1.0.shortcut.0.weight")],
        "vgg19": [("features.0.weight", "features.0.weight"),
                  ("features.34.bias", "features.34.bias")],
    }
    for arch, items in pairs.items():
        for tv, ours in items:
            assert zoo_key(arch, tv) == ours and file_key(arch, ours) == tv
    assert zoo_key("resnet18", "fc.weight") is None
    assert file_key("resnet18", "classifier.weight") is None
    assert zoo_key("vgg19", "classifier.6.weight") is None


@pytest.mark.parametrize("arch", ARCHS)
def test_every_backbone_key_round_trips_with_torchvisions_shape(arch):
    model = zoo(arch)
    tv = imagenet_shapes(arch)
    backbone = {k: tuple(v.shape) for k, v in model.state_dict().items()
                if not k.startswith(HEAD)}
    mapped = {file_key(arch, k): shape for k, shape in backbone.items()}
    assert all(zoo_key(arch, file_key(arch, k)) == k for k in backbone)
    head = LAYOUTS[arch].file_head
    assert mapped == {k: s for k, s in tv.items() if not k.startswith(head)}


@pytest.mark.parametrize("arch", ARCHS)
def test_torchvision_state_loads_the_backbone_and_leaves_the_head_new(arch):
    state = make_state(imagenet_shapes(arch))
    model = zoo(arch)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(HEAD)}
    report = load_state(model, state, source="tv.pth")
    after = model.state_dict()
    for key, tensor in state.items():
        ours = zoo_key(arch, key)
        if ours is not None:
            assert torch.equal(after[ours], tensor), key
    assert set(report.new) == set(head_before)
    for k, v in head_before.items():
        assert torch.equal(after[k], v)
    assert set(report.unused) == {k for k in state if k.startswith(LAYOUTS[arch].file_head)}
    assert len(report.loaded) == len(after) - len(head_before)
    assert report.summed_stem is None
    lines = report.lines()
    assert lines[0].startswith(f"pretrained: loaded {len(report.loaded)} tensors")
    assert "new" in lines[1] and "classifier" in lines[1]


@pytest.mark.parametrize("arch", ["resnet18", "vgg11"])
def test_gray_stem_is_the_sum_of_the_rgb_filters(arch):
    state = make_state(imagenet_shapes(arch))
    model = zoo(arch, in_channels=1)
    report = load_state(model, state, source="tv.pth")
    stem_key = next(iter(state))  # conv1.weight / features.0.weight
    stem = model.state_dict()[LAYOUTS[arch].stem]
    assert stem.shape[1] == 1 and report.summed_stem == stem_key
    assert torch.allclose(stem, state[stem_key].sum(1, keepdim=True))
    assert any("1-channel stem" in line for line in report.lines())
    # A gray image reads as its R = G = B copy does through the RGB network.
    rgb = zoo(arch)
    load_state(rgb, state)
    rgb.eval(), model.eval()
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model.forward_features(x), rgb.forward_features(x.repeat(1, 3, 1, 1)),
                              atol=1e-4)


def test_timm_layouts_load_from_safetensors(tmp_path):
    from safetensors.torch import save_file

    shapes = {k: s for k, s in resnet_shapes("resnet18").items()
              if not k.endswith("num_batches_tracked")}  # timm's hub files may leave them out
    state = make_state(shapes, seed=3)
    save_file(state, str(tmp_path / "resnet18.a1_in1k.safetensors"))
    model, report = create_pretrained("resnet18", tmp_path / "resnet18.a1_in1k.safetensors",
                                      num_classes=3, in_channels=3, input_size=(64, 64))
    assert torch.equal(model.state_dict()["features.4.1.body.4.weight"],
                       state["layer4.1.bn2.weight"])
    assert set(report.unused) == {"fc.weight", "fc.bias"} and model.num_classes == 3

    vgg = make_state(vgg_shapes("vgg19", timm=True))
    report = load_state(zoo("vgg19"), vgg, source="vgg19.tv_in1k.safetensors")
    assert {k.rsplit(".", 1)[0] for k in report.unused} == {"pre_logits.fc1", "pre_logits.fc2",
                                                          "head.fc"}


def test_pth_file_with_wrapper_and_module_prefix(tmp_path):
    state = make_state(resnet_shapes("resnet18"), seed=1)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 90},
               tmp_path / "resnet18-f37072fd.pth")
    loaded = read_state_dict(tmp_path / "resnet18-f37072fd.pth")
    assert loaded.keys() == state.keys()
    key = "layer2.0.downsample.0.weight"
    assert torch.equal(loaded[key], state[key])


def test_batch_norm_vgg_file_builds_a_batch_norm_vgg(tmp_path):
    state = make_state(vgg_shapes("vgg11", batch_norm=True))
    assert model_kwargs_for("vgg11", state) == {"batch_norm": True}
    model = zoo("vgg11", batch_norm=True)
    load_state(model, state)
    key = "features.1.running_var"
    assert torch.equal(model.state_dict()[key], state[key])


def one_line_error(fn, match: str) -> str:
    with pytest.raises(PretrainedError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_file_that_does_not_fit_names_its_first_mismatched_key(tmp_path):
    r50 = make_state(resnet_shapes("resnet50"))
    one_line_error(lambda: load_state(zoo("resnet18"), r50, source="r50.pth"),
                   r"r50.pth: layer1\.0\.conv1\.weight is \(64, 64, 1, 1\) in the file but "
                   r"resnet18 needs \(64, 64, 3, 3\)")
    state = make_state(resnet_shapes("resnet18"))
    del state["layer4.1.bn2.running_var"]
    one_line_error(lambda: load_state(zoo("resnet18"), state, source="cut.pth"),
                   r"cut.pth: layer4\.1\.bn2\.running_var is missing")
    state = make_state(resnet_shapes("resnet18"))
    one_line_error(lambda: load_state(zoo("resnet18", small_stem=True), state, source="tv.pth"),
                   r"conv1\.weight is \(64, 3, 7, 7\) in the file but resnet18 needs "
                   r"\(64, 3, 3, 3\)")
    state["extra.weight"] = torch.zeros(3)
    one_line_error(lambda: load_state(zoo("resnet18"), state, source="tv.pth"),
                   r"extra\.weight has no counterpart in resnet18")
    one_line_error(lambda: load_state(create_model("fer-a", 2), state, source="tv.pth"),
                   r"fit resnet18, resnet50, vgg11, vgg19, not 'fer-a'")


def test_unreadable_files_are_one_line_errors(tmp_path):
    one_line_error(lambda: read_state_dict(tmp_path / "none.pth"), "none.pth: not found")
    (tmp_path / "junk.pth").write_bytes(b"\x00junk" * 20)
    one_line_error(lambda: read_state_dict(tmp_path / "junk.pth"), "junk.pth: not a readable")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00junk" * 20)
    one_line_error(lambda: read_state_dict(tmp_path / "junk.safetensors"),
                   "junk.safetensors: not a readable")
    torch.save({"epoch": 3, "w": np.zeros(2)}, tmp_path / "pickle.pth")  # no weights_only load
    one_line_error(lambda: read_state_dict(tmp_path / "pickle.pth"), "pickle.pth: not a readable")
    torch.save({"epoch": 3}, tmp_path / "meta.pth")
    one_line_error(lambda: read_state_dict(tmp_path / "meta.pth"), "meta.pth: holds no state")
    (tmp_path / "w.h5").write_bytes(b"x")
    one_line_error(lambda: read_state_dict(tmp_path / "w.h5"), "w.h5: unknown kind of file")
