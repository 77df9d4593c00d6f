"""Every registered model, built through the registry: forward, embeddings, head, training."""

import pytest
import torch
from torch import nn

from mien.models import create_model, list_models, model_info

ALL = list_models()
HEAVY = {"resnet18", "resnet50", "vgg11", "vgg19"}  # checked at 32x32 beyond test_forward


def train_size(name: str) -> tuple[int, int]:
    """Small inputs keep the training test fast; glasses-cnn-deep's valid convs need 48."""
    return (48, 48) if name == "glasses-cnn-deep" else (32, 32)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def test_the_zoo_is_complete():
    expected = {"smile-cnn", "smile-autoencoder", "expression-cnn", "glasses-cnn",
                "glasses-cnn-deep", "vgg11", "vgg19", "resnet18", "resnet50", "mien-net-s",
                "mien-net-m", "mien-net-64", "mien-cnn-s", "mien-cnn-m"}
    expected |= {f"fer-{v}" for v in "abcdefg"}
    assert set(ALL) == expected


@pytest.mark.parametrize("name", ALL)
def test_forward_embeddings_and_head(name):
    info = model_info(name)
    model = create_model(name, 3).eval()
    x = torch.randn(2, info.in_channels, *info.input_size)
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
        if info.task == "autoencoder":
            assert out.shape == x.shape
            code = model.embed(x)
            assert code.shape == (2, 16 * (info.input_size[0] // 4) * (info.input_size[1] // 4))
            assert torch.equal(model.forward_head(feats), out)
            assert torch.equal(model.embed(x, "bottleneck"), code)
            return
        assert out.shape == (2, 3)
        pre = model.forward_head(feats, pre_logits=True)
        assert torch.allclose(model.classifier(pre), out, atol=1e-6)
        assert "pre_logits" in model.embedding_layers
        for layer in model.embedding_layers:
            emb = model.embed(x, layer)
            assert emb.ndim == 2 and emb.shape[0] == 2 and emb.shape[1] > 0
            assert torch.isfinite(emb).all()
        assert torch.equal(model.embed(x), pre.flatten(1))
        if "dense1" in model.embedding_layers:  # post-ReLU activations
            assert (model.embed(x, "dense1") >= 0).all()
        # the two embedded inputs differ, so must their embeddings
        assert not torch.allclose(pre[0], pre[1])


@pytest.mark.parametrize("name", ALL)
def test_parameter_groups_and_reset_head(name):
    model = create_model(name, 3)
    params = list(model.parameters())
    backbone = list(model.backbone_parameters())
    head = list(model.head_parameters())
    assert backbone and head
    assert {id(p) for p in backbone} | {id(p) for p in head} == {id(p) for p in params}
    assert not {id(p) for p in backbone} & {id(p) for p in head}
    if model_info(name).task == "autoencoder":
        with pytest.raises(Exception, match="no classification head"):
            model.reset_head(5)
        return
    old_classifier = model.classifier
    model.reset_head(5)
    assert model.classifier is not old_classifier and model.num_classes == 5
    assert [id(p) for p in model.backbone_parameters()] == [id(p) for p in backbone]
    assert any(p is model.classifier.weight for p in model.head_parameters())
    info = model_info(name)
    size = (32, 32) if name in HEAVY else info.input_size
    assert model.eval()(torch.zeros(1, info.in_channels, *size)).shape == (1, 5)


def two_class_images(n: int, channels: int, size: tuple[int, int]):
    """Class 0 is bright on the left half, class 1 bright on the right half, plus noise."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(n) % 2
    x = torch.rand(n, channels, *size, generator=g) * 0.3
    half = size[1] // 2
    x[y == 0, :, :, :half] += 0.7
    x[y == 1, :, :, half:] += 0.7
    return (x - 0.5) / 0.5, y


@pytest.mark.parametrize("name", ALL)
def test_a_few_training_steps_reduce_the_loss(name):
    info = model_info(name)
    size = train_size(name)
    x, y = two_class_images(16, info.in_channels, size)
    if info.task == "autoencoder":
        model, target, loss_fn = create_model(name, 0, input_size=size), x, nn.MSELoss()
    elif info.loss == "bce":
        model, target = create_model(name, 1, input_size=size), y.float()[:, None]
        loss_fn = nn.BCEWithLogitsLoss()
    else:
        model, target, loss_fn = create_model(name, 2, input_size=size), y, nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4 if name in HEAVY else 1e-3)
    model.train()
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.7 * losses[0], losses
