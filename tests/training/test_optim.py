import numpy as np
import pytest
import torch

from mien.training.config import TrainConfig
from mien.training.optim import class_weights, lr_factor, make_loss, make_optimizer


def test_squared_hinge_is_zero_beyond_the_margin_and_quadratic_inside():
    loss = make_loss("squared_hinge")
    y = torch.tensor([0])
    assert float(loss(torch.tensor([[2.0, -2.0]]), y)) == 0.0
    # margin 1 - 0 for both classes: mean of 1^2 and 1^2; and (1 - 0.5)^2 / 2 for one class
    assert float(loss(torch.tensor([[0.0, 0.0]]), y)) == pytest.approx(1.0)
    assert float(loss(torch.tensor([[0.5, -3.0]]), y)) == pytest.approx(0.125)


def test_bce_with_one_output_is_binary():
    loss = make_loss("bce")
    logit = torch.tensor([[3.0], [-3.0]])
    expected = float(torch.nn.functional.softplus(torch.tensor(-3.0)))
    assert float(loss(logit, torch.tensor([1, 0]))) == pytest.approx(expected)


def test_balanced_class_weights_equalise_class_totals():
    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, 2, "balanced")
    assert w[0] * 90 == pytest.approx(w[1] * 10)
    assert class_weights(labels, 2, "none") is None


def test_sqrt_class_weights_lift_a_rare_class_less_than_balanced():
    labels = np.array([0] * 90 + [1] * 10)
    balanced, sqrt = class_weights(labels, 2, "balanced"), class_weights(labels, 2, "sqrt")
    assert sqrt == pytest.approx(np.sqrt(balanced))
    assert 1.0 < sqrt[1] < balanced[1] and balanced[0] < sqrt[0] < 1.0


def test_schedules():
    spe = 10
    cfg = TrainConfig(epochs=10, schedule="step", step_epochs=3)
    assert [lr_factor(e * spe, spe, cfg) for e in (0, 2, 3, 6)] == pytest.approx([1, 1, 0.1, 0.01])
    cos = TrainConfig(epochs=10, schedule="cosine")
    assert lr_factor(0, spe, cos) == pytest.approx(1.0)
    assert lr_factor(5 * spe, spe, cos) == pytest.approx(0.5)
    assert lr_factor(10 * spe - 1, spe, cos) < 0.01
    warm = TrainConfig(epochs=10, warmup_epochs=1)
    assert lr_factor(0, spe, warm) == pytest.approx(0.1) and lr_factor(spe, spe, warm) == 1.0
    one = TrainConfig(epochs=10, schedule="onecycle")
    peak = max(lr_factor(s, spe, one) for s in range(100))
    assert lr_factor(0, spe, one) == pytest.approx(0.04) and peak == pytest.approx(1.0, abs=1e-3)


def test_transfer_gives_the_backbone_a_smaller_lr():
    from mien.models import create_model

    model = create_model("fer-a", 3)
    cfg = TrainConfig(lr=0.01, backbone_lr_mult=0.1, optimizer="sgd")
    groups = {g["name"]: g["lr"] for g in make_optimizer(cfg, model, transfer=True).param_groups}
    assert groups == {"head": 0.01, "backbone": pytest.approx(0.001)}
    groups = {g["name"]: g["lr"] for g in make_optimizer(cfg, model, transfer=False).param_groups}
    assert groups == {"head": 0.01, "backbone": 0.01}


def test_time_budget_moves_cosine_and_onecycle_on_but_not_back():
    spe = 10
    cos = TrainConfig(epochs=100, schedule="cosine", max_minutes=10)
    # epoch 1 of 100 by count, but half the time budget spent: the lr is at the cosine midpoint
    assert lr_factor(spe, spe, cos, time_fraction=0.5) == pytest.approx(0.5)
    assert lr_factor(spe, spe, cos, time_fraction=1.0) == pytest.approx(0.0, abs=1e-9)
    # the epoch count still wins when it is further on than the clock
    assert lr_factor(50 * spe, spe, cos, time_fraction=0.1) == pytest.approx(0.5)
    one = TrainConfig(epochs=100, schedule="onecycle", max_minutes=10)
    assert lr_factor(0, spe, one, time_fraction=0.3) == pytest.approx(1.0)
    step = TrainConfig(epochs=100, schedule="step", step_epochs=3)
    assert lr_factor(0, spe, step, time_fraction=0.9) == 1.0  # step follows epochs only
