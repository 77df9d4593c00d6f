from pathlib import Path

import pytest

from mien.training.config import TrainConfig, resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_loads(path):
    cfg = resolve_config(path)
    assert isinstance(cfg, TrainConfig) and cfg.data
    assert cfg != TrainConfig(data=cfg.data)  # the file sets more than the data
