import pytest

from mien.training.config import ConfigError, TrainConfig, load_config, resolve_config, save_config


def test_yaml_then_options_then_save_roundtrip(tmp_path):
    file = tmp_path / "cfg.yaml"
    file.write_text(
        "data: faces/\nmodel: fer-a\nepochs: 7\nlr: 0.01\nfrom: runs/old\nfreeze: true\n"
        "input_size: 40x40\nval: 0.2\nmerge: {disgust: angry}\nmax-minutes: 3\n"
    )
    cfg = resolve_config(file, epochs=3, lr=None, schedule="cosine")
    assert cfg.epochs == 3  # the option given wins over the file
    assert cfg.lr == 0.01  # None means "not given": the file's value stays
    assert cfg.schedule == "cosine"
    assert cfg.transfer_from == "runs/old" and cfg.freeze is True
    assert cfg.input_size == (40, 40) and cfg.val == 0.2 and cfg.max_minutes == 3
    assert cfg.merge == "disgust=angry"

    saved = tmp_path / "config.yaml"
    save_config(cfg, saved)
    assert TrainConfig.from_dict(load_config(saved)) == cfg


def test_val_folder_stays_a_path():
    assert resolve_config(None, data="d", val="faces/val").val == "faces/val"
    assert resolve_config(None, data="d", val="0.25").val == 0.25


@pytest.mark.parametrize("options, word", [
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"schedule": "linear"}, "schedule"),
    ({"loss": "mse"}, "loss"),
    ({"val": 1.5}, "val"),
    ({"epochs": 0}, "epochs"),
    ({"freeze": True}, "--from"),
    ({"input_size": "4x4"}, "input_size"),
    ({"tta": "rotate"}, "tta"),
    ({"select": "f1"}, "select"),
    ({"train_blur_sigma": -1.0}, "train_blur_sigma"),
    ({"gamma": -0.5}, "gamma"),
    ({"grayscale": 1.5}, "grayscale"),
    ({"aux_weight": -1.0}, "aux_weight"),
])
def test_bad_values_name_the_option(options, word):
    with pytest.raises(ConfigError, match=word):
        resolve_config(None, data="d", **options)


def test_unknown_option_in_file_names_file_and_option(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("epochz: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*epochz"):
        resolve_config(file)


def test_unreadable_yaml(tmp_path):
    file = tmp_path / "broken.yaml"
    file.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(file)
