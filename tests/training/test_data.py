import shutil

import numpy as np
import pytest

from mien.data.preprocess import Preprocess
from mien.errors import DatasetError, MienError
from mien.training.config import ConfigError, TrainConfig
from mien.training.data import load_splits, prepare

from .conftest import FAST, make_stripes, run_cli


def test_val_folder_classes_follow_the_training_order(stripes, tmp_path):
    val = tmp_path / "val"
    (val / "vertical").mkdir(parents=True)
    shutil.copy(stripes / "vertical" / "000.png", val / "vertical")
    train, v, record = load_splits(TrainConfig(data=str(stripes), val=str(val)))
    assert record is None and train.classes == v.classes == ("horizontal", "vertical")
    assert v.labels.tolist() == [1]

    (val / "diagonal").mkdir()
    shutil.copy(stripes / "vertical" / "001.png", val / "diagonal")
    with pytest.raises(DatasetError, match="diagonal"):
        load_splits(TrainConfig(data=str(stripes), val=str(val)))


def test_split_is_stratified_seeded_and_replayable(stripes):
    cfg = TrainConfig(data=str(stripes), val=0.25, split_seed=3)
    train, val, record = load_splits(cfg)
    assert len(train) == 30 and np.bincount(val.labels).tolist() == [5, 5]
    again_train, again_val, _ = load_splits(cfg.replace(split_seed=99), record)
    assert again_val.sources == val.sources and again_train.sources == train.sources


def test_prepare_decodes_once_at_the_model_size(tmp_path):
    data = make_stripes(tmp_path / "d", per_class=4)
    pre = Preprocess(input_size=(24, 32), color="rgb")
    prepared = prepare(TrainConfig(data=str(data), val=0.25), pre)
    assert prepared.train_x.shape == (6, 24, 32, 3) and prepared.train_x.dtype == np.uint8
    assert prepared.val_x.shape == (2, 24, 32, 3)
    assert prepared.train_x.std() > 20  # real stripes survived, not a blank array


def test_an_existing_run_folder_is_not_overwritten(base_run, stripes):
    result = run_cli("train", stripes, *FAST, "--out", base_run, ok=False)
    assert isinstance(result.exception, ConfigError)
    assert "already holds a run" in str(result.exception)


def test_missing_data_or_model_is_a_clear_error(stripes):
    assert isinstance(run_cli("train", "--model", "fer-a", ok=False).exception, MienError)
    result = run_cli("train", stripes, "--quiet", ok=False)
    assert isinstance(result.exception, ConfigError) and "--model" in str(result.exception)
