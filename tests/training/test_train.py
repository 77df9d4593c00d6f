import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from mien.errors import ModelFileError
from mien.models.loading import load_classifier
from mien.training.checkpoint import load_weights, read_record
from mien.training.config import TrainConfig

from .conftest import FAST, run_cli

RUN_FILES = ("config.yaml", "split.json", "metrics.json", "curves.png", "confusion.png",
             "model.safetensors", "last.safetensors", "last.state.safetensors", "model.onnx")


def _images(folder, n=6):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))[:n]]


def test_run_folder_holds_every_file(base_run, stripes):
    for name in RUN_FILES:
        assert (base_run / name).stat().st_size > 0, name
    cfg = TrainConfig.from_dict(yaml.safe_load((base_run / "config.yaml").read_text()))
    assert cfg.model == "fer-a" and cfg.epochs == 2 and cfg.out == str(base_run)

    m = json.loads((base_run / "metrics.json").read_text())
    assert m["classes"] == ["horizontal", "vertical"]
    assert m["num_train"] + m["num_val"] == 40 and m["stopped"] == "completed"
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert m["best_val_accuracy"] == max(h["val_accuracy"] for h in m["history"])
    assert np.array(m["confusion"]).sum() == m["num_val"]
    assert m["train_seconds"] > 0 and m["images_per_second"] > 0
    assert m["hardware"]["device"] == "cpu"

    split = json.loads((base_run / "split.json").read_text())
    assert len(split["val_sources"]) == m["num_val"]
    assert all(str(stripes) in s for s in split["val_sources"])
    for png in ("curves.png", "confusion.png"):
        assert Image.open(base_run / png).size[0] > 200

    record = read_record(base_run / "model.safetensors")
    assert record["arch"] == "fer-a" and record["labels"] == ["horizontal", "vertical"]
    assert record["num_classes"] == 2 and record["in_channels"] == 1
    assert record["preprocess"]["input_size"] == [48, 48]
    assert record["preprocess"]["color"] == "gray"


def test_loss_falls_and_the_model_learns(base_run):
    m = json.loads((base_run / "metrics.json").read_text())
    assert m["history"][1]["train_loss"] < m["history"][0]["train_loss"]
    assert m["best_val_accuracy"] >= 0.75  # two epochs on stripes: chance is 0.5


def test_safetensors_and_onnx_give_the_same_probabilities(base_run, stripes):
    images = _images(stripes / "horizontal") + _images(stripes / "vertical")
    images.append(np.full((70, 50, 3), 128, np.uint8))  # another size and colour: resized
    by_torch = load_classifier(base_run / "model.safetensors")
    by_onnx = load_classifier(base_run / "model.onnx")
    p_t, p_o = by_torch.predict_proba(images), by_onnx.predict_proba(images)
    assert by_torch.labels == by_onnx.labels == ("horizontal", "vertical")
    assert by_onnx.input_size == (48, 48)
    assert p_t.shape == (13, 2) and p_t.dtype == np.float32
    np.testing.assert_allclose(p_t.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(p_t - p_o).max() < 1e-4
    truth = np.array([0] * 6 + [1] * 6)
    assert (p_o[:12].argmax(1) == truth).mean() >= 0.75
    assert load_classifier(base_run).name == base_run.name  # a run folder works too


def test_training_calibrates_what_inference_predicts(stripes, tmp_path):
    from mien.evaluation.calibration import expected_calibration_error
    from mien.training.calibrate import default_data

    out = tmp_path / "flip"
    result = run_cli("train", stripes, *FAST, "--epochs", "2", "--tta", "flip", "--val", "0.3",
                     "--out", out)
    cal = json.loads((out / "metrics.json").read_text())["calibration"]
    assert f"temperature {cal['temperature']:.3f}" in result.output
    assert cal["n"] == 12 and 0.05 <= cal["temperature"] <= 20
    assert set(cal) == {"temperature", "ece_before", "ece_after", "n"}
    assert cal["ece_after"] <= cal["ece_before"] + 1e-9 or cal["temperature"] in (0.05, 20)
    val, _ = default_data(str(out))
    images = [val.load(i, "gray") for i in range(len(val))]
    for model in (out / "model.onnx", out / "model.safetensors"):
        assert read_model_record(model)["temperature"] == cal["temperature"]
        classifier = load_classifier(model)
        assert classifier.tta == "flip"  # both views divided by T, then averaged
        ece = expected_calibration_error(classifier.predict_proba(images), val.labels)
        assert ece == pytest.approx(cal["ece_after"], abs=1e-4)
    # `mien calibrate RUN` fits on the same validation split and finds the same temperature
    run_cli("calibrate", out, "--out", tmp_path / "again.onnx")
    again = read_model_record(tmp_path / "again.onnx")
    assert again["temperature"] == pytest.approx(cal["temperature"], rel=1e-3)
    assert again["calibration"]["n"] == cal["n"]
    assert again["calibration"]["ece_before"] == pytest.approx(cal["ece_after"], abs=1e-4)


def read_model_record(path):
    if path.suffix == ".safetensors":
        return read_record(path)
    from mien.models.export import check_onnx

    return check_onnx(path)


def test_onnx_inference_does_not_import_torch(base_run):
    code = ("import sys, numpy as np\n"
            "from mien.models.loading import load_classifier\n"
            f"c = load_classifier({str(base_run / 'model.onnx')!r})\n"
            "p = c.predict_proba([np.zeros((48, 48), np.uint8)])\n"
            "assert p.shape == (1, 2), p.shape\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_resume_continues_from_saved_epoch_and_matches_one_run(base_run, stripes, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(base_run, resumed)
    # The copied config names the original folder as out; --resume points it here.
    run_cli("train", "--resume", resumed, "--epochs", "3", "--quiet")
    before = json.loads((base_run / "metrics.json").read_text())["history"]
    after = json.loads((resumed / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in after] == [1, 2, 3]
    assert after[:2] == before

    straight = tmp_path / "straight"
    run_cli("train", stripes, *FAST, "--epochs", "3", "--out", straight)
    w_resumed, rec = load_weights(resumed / "last.safetensors")
    w_straight, _ = load_weights(straight / "last.safetensors")
    assert rec["epoch"] == 3
    for k in w_straight:
        np.testing.assert_allclose(w_resumed[k].numpy(), w_straight[k].numpy(), atol=1e-5,
                                   err_msg=k)


def test_ctrl_c_saves_a_resumable_checkpoint(stripes, tmp_path, monkeypatch):
    from mien.training import optim

    original = optim.lr_factor

    def interrupt_in_second_epoch(step, steps_per_epoch, cfg, *rest):
        if step == steps_per_epoch + 1:
            raise KeyboardInterrupt
        return original(step, steps_per_epoch, cfg, *rest)

    out = tmp_path / "run"
    monkeypatch.setattr(optim, "lr_factor", interrupt_in_second_epoch)
    result = run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out, ok=False)
    assert result.exit_code == 130 and "--resume" in result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["stopped"] == "interrupted" and "calibration" not in m
    assert read_record(out / "last.safetensors")["epoch"] == 1

    monkeypatch.setattr(optim, "lr_factor", original)
    run_cli("train", "--resume", out, "--quiet")
    m = json.loads((out / "metrics.json").read_text())
    assert m["stopped"] == "completed" and [h["epoch"] for h in m["history"]] == [1, 2]
    assert (out / "model.onnx").is_file()
    assert read_record(out / "model.safetensors")["temperature"] == m["calibration"]["temperature"]


def test_repeats_write_stats_over_seeds(stripes, tmp_path):
    out = tmp_path / "rep"
    result = run_cli("train", stripes, *FAST, "--epochs", "1", "--repeats", "2", "--out", out)
    rep = json.loads((out / "repeats.json").read_text())
    assert rep["seeds"] == [0, 1] and len(rep["values"]) == 2
    runs = [json.loads((out / f"seed-{s}" / "metrics.json").read_text()) for s in (0, 1)]
    assert rep["values"] == [r["best_val_accuracy"] for r in runs]
    assert rep["mean"] == pytest.approx(np.mean(rep["values"]))
    assert rep["std"] == pytest.approx(np.std(rep["values"], ddof=1))
    assert rep["variance"] == pytest.approx(rep["std"] ** 2)
    assert rep["min"] == min(rep["values"]) and rep["max"] == max(rep["values"])
    # different seeds, different runs
    assert runs[0]["history"][0]["train_loss"] != runs[1]["history"][0]["train_loss"]
    assert "mean" in result.output and "std" in result.output

    # Resuming with more repeats keeps the finished seeds and trains only the new one.
    result = run_cli("train", "--resume", out, "--repeats", "3", "--quiet")
    assert "seed 0: already trained" in result.output and "seed 1: already trained" in result.output
    rep3 = json.loads((out / "repeats.json").read_text())
    assert rep3["seeds"] == [0, 1, 2] and rep3["values"][:2] == rep["values"]


def test_transfer_with_freeze_keeps_the_backbone(base_run, stripes, tmp_path):
    out = tmp_path / "transfer"
    run_cli("train", stripes, "--from", base_run, "--freeze", "--epochs", "1", "--batch-size", "8",
            "--classes", "vertical,horizontal", "--quiet", "--out", out)
    old, _ = load_weights(base_run / "model.safetensors")
    new, record = load_weights(out / "model.safetensors")
    assert record["labels"] == ["vertical", "horizontal"] and record["arch"] == "fer-a"
    backbone = [k for k in old if k.startswith("features.")]
    assert backbone
    for k in backbone:  # weights and BatchNorm statistics alike
        assert np.array_equal(old[k].numpy(), new[k].numpy()), k
    assert not np.array_equal(old["classifier.weight"].numpy(), new["classifier.weight"].numpy())


def test_corrupt_or_foreign_model_files_raise_model_file_error(tmp_path):
    from safetensors.numpy import save_file

    for name in ("broken.onnx", "broken.safetensors"):
        (tmp_path / name).write_bytes(b"\x00not a model at all" * 10)
        with pytest.raises(ModelFileError, match=name):
            load_classifier(tmp_path / name)
    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ModelFileError, match="foreign.safetensors.*not a mien model"):
        load_classifier(tmp_path / "foreign.safetensors")
    with pytest.raises(ModelFileError, match="no-such-model.*bundled"):
        load_classifier("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="empty"):
        load_classifier(tmp_path / "empty")


def test_unreadable_images_are_skipped_or_stop_a_strict_run(stripes, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(stripes, data)
    (data / "vertical" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "run"
    run_cli("train", data, *FAST, "--epochs", "1", "--out", out, "--val", "0.25")
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["skipped"]) == 1 and "broken.png" in m["skipped"][0]
    assert m["num_train"] + m["num_val"] == 40

    result = run_cli("train", data, *FAST, "--epochs", "1", "--out", tmp_path / "strict",
                     "--strict", ok=False)
    assert result.exit_code != 0 and "broken.png" in str(result.exception)


def test_early_stopping_keeps_the_best_epoch(stripes, tmp_path):
    out = tmp_path / "run"
    # An lr this small never improves on epoch 1, so patience 1 stops after epoch 2.
    run_cli("train", stripes, *FAST, "--epochs", "5", "--patience", "1", "--lr", "1e-12",
            "--out", out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["stopped"] == "early_stopping" and m["epochs_run"] == 2 and m["best_epoch"] == 1
    assert read_record(out / "model.safetensors")["epoch"] == 1


def test_time_budget_and_mirror_double(stripes, tmp_path):
    out = tmp_path / "run"
    run_cli("train", stripes, *FAST, "--epochs", "3", "--mirror-double", "--out", out,
            "--no-flip", "--rotate", "5", "--scale-shift", "0.05", "--blur", "0.5")
    m = json.loads((out / "metrics.json").read_text())
    assert m["history"][0]["images"] == 2 * m["num_train"]  # each image and its mirror
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["flip"], cfg["rotate"], cfg["scale_shift"], cfg["blur"]) == (False, 5, 0.05, 0.5)

    out = tmp_path / "budget"
    result = run_cli("train", stripes, *FAST, "--epochs", "3", "--max-minutes", "1e-6",
                     "--out", out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["stopped"] == "time_budget" and m["epochs_run"] == 1
    assert m["history"][0]["images"] == 8  # one batch, then the budget was spent
    assert (out / "model.onnx").is_file()
    cut = f"epoch 1 saw 8 of {m['num_train']} training images"
    assert m["warnings"][0].startswith(cut) and f"warning: {cut}" in result.stderr


def test_a_model_answering_fewer_classes_than_it_learned_is_warned():
    from mien.training.fit import run_warnings

    full = [{"epoch": 1, "images": 4}]
    train_y = np.array([0, 1, 2, 2])
    assert run_warnings(full, train_y, np.array([0, 2, 1]), ("a", "b", "c"), 1) == []
    (warning,) = run_warnings(full, train_y, np.array([2, 2, 0]), ("a", "b", "c"), 1)
    assert "answers only a, c on the 3 validation images, though trained on 3" in warning


def test_the_time_budget_of_a_resumed_run_counts_only_its_own_time(stripes, tmp_path,
                                                                  monkeypatch):
    from mien.training import checkpoint as ckpt

    out = tmp_path / "run"
    run_cli("train", stripes, *FAST, "--epochs", "1", "--out", out)
    load = ckpt.load_train_state

    def after_an_hour(*args):  # as if the first invocation had trained for an hour
        state = load(*args)
        state.loop["train_seconds"] = 3600.0
        return state

    monkeypatch.setattr(ckpt, "load_train_state", after_an_hour)
    run_cli("train", "--resume", out, "--epochs", "2", "--max-minutes", "1", "--quiet")
    m = json.loads((out / "metrics.json").read_text())
    assert m["stopped"] == "completed" and "warnings" not in m
    assert m["history"][1]["images"] == m["num_train"] and m["train_seconds"] > 3600


def test_ctrl_c_in_epoch_1_says_nothing_was_saved(stripes, tmp_path, monkeypatch):
    from mien.training import optim

    original = optim.lr_factor

    def interrupt_in_first_epoch(step, *rest):
        if step == 1:
            raise KeyboardInterrupt
        return original(step, *rest)

    out = tmp_path / "run"
    monkeypatch.setattr(optim, "lr_factor", interrupt_in_first_epoch)
    result = run_cli("train", stripes, *FAST, "--epochs", "1", "--out", out, ok=False)
    assert result.exit_code == 130
    assert "interrupted before any epoch finished: nothing saved" in result.output
    assert f"--resume {out}" in result.output and "best val accuracy" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "split.json"]

    monkeypatch.setattr(optim, "lr_factor", original)
    resumed = run_cli("train", "--resume", out, "--quiet")
    assert "starting it from epoch 1" in resumed.output
    assert json.loads((out / "metrics.json").read_text())["stopped"] == "completed"


def test_bundled_models_are_verified_by_their_card(base_run, tmp_path, monkeypatch):
    from mien import runfiles
    from mien.models import loading

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(base_run / "model.onnx", weights / "demo.onnx")
    card = weights / "demo.json"
    card.write_text(json.dumps({"sha256": loading.sha256_of(weights / "demo.onnx")}))
    monkeypatch.setattr(runfiles, "weights_dir", lambda: weights)
    assert loading.bundled_models() == ["demo"]
    demo = load_classifier("demo")
    img = [np.full((48, 48), 90, np.uint8)]
    assert demo.name == "demo"
    expected = load_classifier(base_run).predict_proba(img)
    assert np.abs(demo.predict_proba(img) - expected).max() < 1e-6

    card.write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match="demo.onnx.*SHA-256"):
        load_classifier("demo")
    with pytest.raises(ModelFileError, match="bundled: demo"):
        load_classifier("other")


def test_blur_for_val_only_and_flip_tta_travel_with_the_weights(stripes, tmp_path, monkeypatch):
    from mien.training import fit

    seen = {"train": set(), "val": set()}
    original = fit._Run._input

    def spy(self, batch, pre=None):
        seen["val" if pre is None else "train"].add((pre or self.pre).blur_sigma)
        return original(self, batch, pre)

    monkeypatch.setattr(fit._Run, "_input", spy)
    out = tmp_path / "run"
    run_cli("train", stripes, *FAST, "--epochs", "1", "--blur-sigma", "2", "--train-blur-sigma",
            "0", "--tta", "flip", "--out", out)
    # Training images are taken as already blurred; validation images are blurred like inputs.
    assert seen == {"train": {0.0}, "val": {2.0}}
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["blur_sigma"], cfg["train_blur_sigma"], cfg["tta"]) == (2.0, 0.0, "flip")

    images = _images(stripes / "horizontal", 3) + _images(stripes / "vertical", 3)
    mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in images]
    for file in ("model.onnx", "model.safetensors"):
        clf = load_classifier(out / file)
        assert clf.tta == "flip" and clf.preprocess.blur_sigma == 2.0
        both = clf.predict_proba(images)
        clf.tta = "none"
        plain, flipped = clf.predict_proba(images), clf.predict_proba(mirrored)
        assert not np.allclose(plain, flipped, atol=1e-4)  # the mirror is a different view
        np.testing.assert_allclose(both, (plain + flipped) / 2, atol=1e-5)


@pytest.mark.parametrize(("select", "best"), [("accuracy", 1), ("balanced_accuracy", 2)])
def test_select_picks_the_best_epoch_by_its_score(stripes, tmp_path, monkeypatch, select, best):
    from mien.training import fit

    val = tmp_path / "val"  # 8 horizontal, 2 vertical: accuracy and mean recall disagree
    for name, n in (("horizontal", 8), ("vertical", 2)):
        (val / name).mkdir(parents=True)
        for src in sorted((stripes / name).glob("*.png"))[:n]:
            shutil.copy(src, val / name / src.name)

    def scripted(self):
        """Epochs 1 and 3 call everything horizontal (accuracy 0.8, balanced 0.5); epoch 2
        gets both verticals and misses 3 horizontals (accuracy 0.7, balanced 0.8125)."""
        y = self.data.val_y
        pred = np.zeros_like(y)
        if len(self.loop["history"]) == 1:
            pred = y.copy()
            pred[np.flatnonzero(y == 0)[:3]] = 1
        return 0.5, float((pred == y).mean()), pred

    monkeypatch.setattr(fit._Run, "evaluate", scripted)
    out = tmp_path / "run"
    run_cli("train", stripes, *FAST, "--epochs", "3", "--val", val, "--select", select,
            "--out", out)
    m = json.loads((out / "metrics.json").read_text())
    assert [h["val_accuracy"] for h in m["history"]] == pytest.approx([0.8, 0.7, 0.8])
    assert [h["val_balanced_accuracy"] for h in m["history"]] == pytest.approx([0.5, 0.8125, 0.5])
    assert m["best_epoch"] == best
    assert read_record(out / "model.safetensors")["epoch"] == best


def test_set_inference_tool_changes_blur_and_tta_of_a_finished_run(base_run, tmp_path):
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "set_inference.py"
    out = tmp_path / "changed"
    subprocess.run([sys.executable, str(tool), str(base_run), str(out), "--blur-sigma", "1.5",
                    "--tta", "flip"], check=True, capture_output=True)
    for file in ("model.onnx", "model.safetensors"):
        clf = load_classifier(out / file)
        assert clf.tta == "flip" and clf.preprocess.blur_sigma == 1.5
        # the base run's temperature was fitted to other outputs: not carried over
        assert clf.temperature == 1.0 and "calibration" not in clf.record
    assert load_classifier(base_run / "model.safetensors").temperature != 1.0
    original = load_classifier(base_run / "model.safetensors")
    assert original.tta == "none" and original.preprocess.blur_sigma == 0.0
    bad = subprocess.run([sys.executable, str(tool), str(base_run), str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "nothing to change" in bad.stderr


def _celeba_squares(root, n=40):
    """A CelebA folder: Eyeglasses = bright image, Male = bright left half, Smiling = random."""
    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    lines = [str(n), "Smiling Eyeglasses Male"]
    for i in range(n):
        glasses, male, smiling = i % 2, (i // 2) % 2, int(rng.integers(2))
        img = np.full((24, 24, 3), 60 + 120 * glasses, np.uint8)
        img[:, :12] += np.uint8(60 * male)
        Image.fromarray(img).save(root / "img_align_celeba" / f"{i:06d}.jpg")
        values = " ".join("1" if v else "-1" for v in (smiling, glasses, male))
        lines.append(f"{i:06d}.jpg {values}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_aux_attributes_train_a_second_head_that_is_not_shipped(stripes, tmp_path):
    from safetensors.torch import load_file

    root = _celeba_squares(tmp_path / "celeba")
    out = tmp_path / "aux"
    run_cli("train", root, "--attribute", "Eyeglasses", "--aux-attributes", "all", "--val",
            "0.25", *FAST, "--epochs", "2", "--out", out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["aux_attributes"] == ["Smiling", "Male"] and m["classes"] == ["no_eyeglasses",
                                                                          "eyeglasses"]
    aux_weight = load_file(str(out / "last.state.safetensors"))["module.aux.weight"]
    assert aux_weight.shape[0] == 2  # saved for --resume, beside the network's weights
    state, _ = load_weights(out / "model.safetensors")
    assert not any(k.startswith("aux") for k in state)  # the shipped network has one head
    clf = load_classifier(out / "model.onnx")
    assert clf.predict_proba(_images(root / "img_align_celeba", 0) or
                             [np.zeros((24, 24, 3), np.uint8)]).shape == (1, 2)
    run_cli("train", "--resume", out, "--epochs", "3", "--quiet")
    m = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3]

    bad = run_cli("train", stripes, "--aux-attributes", "all", *FAST, "--epochs", "1",
                  "--out", tmp_path / "bad", ok=False)
    assert bad.exit_code != 0 and "needs CelebA data and `attribute`" in str(bad.exception)


def test_the_framing_to_crop_faces_with_travels_with_the_weights(base_run, stripes, tmp_path):
    from pathlib import Path

    from mien.data.preprocess import Framing

    assert read_record(base_run / "model.safetensors")["framing"] == {"margin": 0.2, "align": True}
    out = tmp_path / "run"
    run_cli("train", stripes, *FAST, "--epochs", "1", "--framing-margin", "0.35",
            "--no-framing-align", "--out", out)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["framing_margin"], cfg["framing_align"]) == (0.35, False)
    for file in ("model.onnx", "model.safetensors"):
        assert load_classifier(out / file).framing == Framing(margin=0.35, align=False)
    bad = run_cli("train", stripes, *FAST, "--framing-margin", "-0.1", "--out", tmp_path / "x",
                  ok=False)
    assert "framing_margin -0.1" in str(bad.exception)
    # tools/set_inference.py changes it in a finished run (e.g. to benchmarks/framing.py's best)
    tool = Path(__file__).resolve().parents[2] / "tools" / "set_inference.py"
    subprocess.run([sys.executable, str(tool), str(out), str(tmp_path / "m3"),
                    "--framing-align"], check=True, capture_output=True)
    for file in ("model.onnx", "model.safetensors"):
        assert load_classifier(tmp_path / "m3" / file).framing == Framing(0.35, True)
