import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from mien.data.datasets import scan_class_folder
from mien.errors import MienError, ModelFileError
from mien.evaluation.calibration import probabilities
from mien.evaluation.evaluate import evaluate
from mien.models.ensemble import Ensemble
from mien.models.loading import load_classifier
from mien.training import checkpoint as ckpt
from mien.training.ensemble import combine_runs

from .conftest import FAST, run_cli


@pytest.fixture(scope="module")
def second_run(stripes, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seed1"
    run_cli("train", stripes, *FAST, "--epochs", "2", "--seed", "1", "--out", out)
    return out


@pytest.fixture(scope="module")
def ensemble_run(base_run, second_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "pair"
    result = run_cli("ensemble", base_run, second_run, "--out", out)
    assert "ensemble" in result.output and f"written {out}" in result.output
    return out


def _images(stripes, n=8):
    files = sorted(stripes.rglob("*.png"))[::5][:n]
    return [np.asarray(Image.open(p)) for p in files]


def test_forward_is_the_log_of_the_mean_probability():
    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 3), torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)]
    x = torch.randn(5, 4)
    with torch.no_grad():
        got = Ensemble(members)(x)
        mean = torch.stack([m(x).softmax(1) for m in members]).mean(0)
    torch.testing.assert_close(got.softmax(1), mean)
    torch.testing.assert_close(got.exp(), mean)  # already normalised: softmax leaves it alone
    with pytest.raises(ValueError, match="at least two"):
        Ensemble(members[:1])


def test_ensemble_predicts_the_mean_of_its_members(ensemble_run, base_run, second_run, stripes):
    images = _images(stripes)
    ens = load_classifier(ensemble_run)
    p0 = load_classifier(base_run).predict_proba(images)
    p1 = load_classifier(second_run).predict_proba(images)
    assert not np.allclose(p0, p1, atol=1e-3)  # two seeds: two different networks
    # each member at its own temperature, then the ensemble's own on the log of their mean
    want = probabilities((p0 + p1) / 2, "probabilities", ens.temperature)
    np.testing.assert_allclose(ens.predict_proba(images), want, atol=1e-5)
    # the torch checkpoint and the ONNX file agree
    torch_ens = load_classifier(ensemble_run / "model.safetensors")
    np.testing.assert_allclose(torch_ens.predict_proba(images), want, atol=1e-5)
    ens.temperature = 1.0
    np.testing.assert_allclose(ens.predict_proba(images), (p0 + p1) / 2, atol=1e-5)
    batch = ort.InferenceSession(str(ensemble_run / "model.onnx")).get_inputs()[0].shape[0]
    assert batch == "batch"


def test_ensemble_folder_is_a_run_folder(ensemble_run, base_run, second_run):
    for name in ("model.safetensors", "last.safetensors", "model.onnx", "config.yaml",
                 "metrics.json", "confusion.png", "split.json"):
        assert (ensemble_run / name).stat().st_size > 0, name
    assert not list(ensemble_run.parent.glob(".*partial"))
    record = ckpt.read_record(ensemble_run / "model.safetensors")
    assert record["arch"] == "ensemble" and record["labels"] == ["horizontal", "vertical"]
    assert [m["weights_from"] for m in record["members"]] == [
        str(base_run / "model.safetensors"), str(second_run / "model.safetensors")]
    m = json.loads((ensemble_run / "metrics.json").read_text())
    members = [json.loads((r / "metrics.json").read_text()) for r in (base_run, second_run)]
    assert [x["best_val_accuracy"] for x in m["members"]] == [
        x["best_val_accuracy"] for x in members]
    assert m["train_seconds"] == pytest.approx(sum(x["train_seconds"] for x in members), abs=0.01)
    assert np.array(m["confusion"]).sum() == m["num_val"] == members[0]["num_val"]
    # the figure it claims is the one evaluation measures on the same images
    split = json.loads((ensemble_run / "split.json").read_text())
    ds = scan_class_folder(Path(split["val_sources"][0]).parents[1])
    val = ds.subset([ds.sources.index(s) for s in split["val_sources"]])
    scored = evaluate(load_classifier(ensemble_run), val)
    assert scored.metrics.accuracy == pytest.approx(m["best_val_accuracy"])
    # calibrated on those images too: its temperature in both files, its ECE as inference sees it
    assert m["calibration"]["n"] == len(val)
    assert record["temperature"] == m["calibration"]["temperature"]
    assert load_classifier(ensemble_run).temperature == record["temperature"]
    assert scored.ece == pytest.approx(m["calibration"]["ece_after"], abs=1e-5)
    assert [x["temperature"] for x in record["members"]] == [
        ckpt.read_record(r / "model.safetensors")["temperature"] for r in (base_run, second_run)]
    comparison = run_cli("compare", base_run, ensemble_run).output
    assert "pair" in comparison


def test_bad_member_sets_give_clear_errors(base_run, second_run, tmp_path):
    out = tmp_path / "ens"
    with pytest.raises(MienError, match="at least two"):
        combine_runs([base_run], out)
    with pytest.raises(MienError, match="given twice"):
        combine_runs([base_run, base_run], out)
    with pytest.raises(ModelFileError, match="nowhere"):
        combine_runs([base_run, tmp_path / "nowhere"], out)
    # a member that reads faces differently (another input size)
    other = tmp_path / "other"
    shutil.copytree(second_run, other)
    state, record = ckpt.load_weights(other / "model.safetensors")
    record["preprocess"] = {**record["preprocess"], "input_size": [40, 40]}
    ckpt.save_weights(other / "model.safetensors", state, record)
    with pytest.raises(MienError, match="preprocess .* read faces the same way"):
        combine_runs([base_run, other], out)
    (other / "metrics.json").unlink()
    shutil.copyfile(second_run / "model.safetensors", other / "model.safetensors")
    with pytest.raises(ModelFileError, match="metrics.json"):
        combine_runs([base_run, other], out)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    out.mkdir()
    with pytest.raises(MienError, match="exists already"):
        combine_runs([base_run, second_run], out)


def test_an_ensemble_is_not_a_member(ensemble_run, base_run, tmp_path):
    with pytest.raises(ModelFileError, match="ensemble already"):
        combine_runs([ensemble_run, base_run], tmp_path / "x")
    result = run_cli("ensemble", base_run, ensemble_run, "--out", tmp_path / "y", ok=False)
    assert "ensemble already" in str(result.exception) and not (tmp_path / "y").exists()


def test_transfer_and_embeddings_start_from_the_best_member(ensemble_run, base_run, second_run,
                                                           stripes, tmp_path):
    from mien.heads.embeddings import CnnEmbedder

    record = ckpt.read_record(ensemble_run / "model.safetensors")
    accs = [json.loads((r / "metrics.json").read_text())["best_val_accuracy"]
            for r in (base_run, second_run)]
    assert [m["best_val_accuracy"] for m in record["members"]] == accs
    k = int(np.argmax(accs))  # the first of equals
    best = (base_run, second_run)[k]
    state, rec = ckpt.load_weights(ensemble_run / "model.safetensors")
    one, one_rec, index = ckpt.best_member(state, rec)
    assert index == k and one_rec["arch"] == "fer-a" and "members" not in one_rec
    want, _ = ckpt.load_weights(best / "model.safetensors")
    assert one.keys() == want.keys() and all(torch.equal(one[n], want[n]) for n in want)

    out = tmp_path / "ft"
    result = run_cli("train", stripes, "--from", ensemble_run, "--epochs", "1", "--device",
                     "cpu", "--batch-size", "8", "--out", out)
    assert f"fine-tuning starts from member {k + 1} (fer-a)" in result.output
    assert ckpt.read_record(out / "model.safetensors")["arch"] == "fer-a"

    images = np.stack([np.asarray(Image.open(p).convert("L").resize((48, 48)))
                       for p in sorted(stripes.rglob("*.png"))[:4]])
    np.testing.assert_allclose(
        CnnEmbedder(ensemble_run / "model.safetensors").embed(images),
        CnnEmbedder(best / "model.safetensors").embed(images), atol=1e-5)


def test_card_names_the_members(ensemble_run):
    from mien.models.cards import arch_text

    assert arch_text(ckpt.read_record(ensemble_run / "model.safetensors")) == "ensemble of 2 fer-a"


def test_repeats_with_ensemble_average_the_seeds(stripes, tmp_path):
    out = tmp_path / "x2"
    result = run_cli("train", stripes, *FAST, "--epochs", "1", "--repeats", "2", "--ensemble",
                     "--tta", "flip", "--ensemble-tta", "none", "--out", out)
    assert "ensemble of 2 seeds" in result.output
    record = ckpt.read_record(out / "ensemble" / "model.safetensors")
    assert [m["weights_from"] for m in record["members"]] == [
        str(out / f"seed-{s}" / "model.safetensors") for s in (0, 1)]
    # the members keep their flip; the ensemble does without, as configs/expression.yaml says
    assert record["tta"] == "none"
    assert all(load_classifier(out / f"seed-{s}").tta == "flip" for s in (0, 1))
    images = _images(stripes)
    members = [load_classifier(out / f"seed-{s}") for s in (0, 1)]
    for m in members:
        m.tta = "none"  # compare like with like: each member's single pass
    mean = sum(m.predict_proba(images) for m in members) / 2
    ensemble = load_classifier(out / "ensemble")
    ensemble.temperature = 1.0  # the mean before the ensemble's own calibration
    np.testing.assert_allclose(ensemble.predict_proba(images), mean, atol=1e-5)
    result = run_cli("train", stripes, *FAST, "--ensemble", "--out", tmp_path / "one", ok=False)
    assert "repeats of 2 or more" in str(result.exception)
    result = run_cli("train", stripes, *FAST, "--epochs", "1", "--repeats", "2", "--ensemble",
                     "--ensemble-tta", "rotate", "--out", tmp_path / "two", ok=False)
    assert "ensemble_tta 'rotate'" in str(result.exception)


def test_the_ensemble_may_choose_its_own_tta(base_run, second_run, stripes, tmp_path):
    flip = combine_runs([base_run, second_run], tmp_path / "flip", tta="flip")
    assert ckpt.read_record(flip.run_dir / "model.safetensors")["tta"] == "flip"
    images = _images(stripes)
    mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in images]
    plain = load_classifier(tmp_path / "flip")
    plain.temperature = 1.0  # the mean before the ensemble's own calibration
    members = [load_classifier(r) for r in (base_run, second_run)]
    assert all(m.tta == "none" for m in members)
    mean = sum(m.predict_proba(images) + m.predict_proba(mirrored) for m in members) / 4
    np.testing.assert_allclose(plain.predict_proba(images), mean, atol=1e-5)
    with pytest.raises(MienError, match="choose one of"):
        combine_runs([base_run, second_run], tmp_path / "bad", tta="rotate")


def test_members_must_have_validated_on_the_same_images(stripes, base_run, tmp_path):
    # the same val files reached through links of other names (as two built train/val trees
    # share them) are the same set; another split of the data is not
    files = sorted(stripes.rglob("*.png"))
    trees = [tmp_path / "a", tmp_path / "b"]
    for i, f in enumerate(files):
        part = "val" if i % 4 == 0 else "train"
        for tree, name in zip(trees, (f.name, f"z{len(files) - i:03d}.png"), strict=True):
            (tree / part / f.parent.name).mkdir(parents=True, exist_ok=True)
            (tree / part / f.parent.name / name).symlink_to(f)
    runs = [tmp_path / "run-a", tmp_path / "run-b"]
    for tree, run in zip(trees, runs, strict=True):
        run_cli("train", tree, *FAST, "--epochs", "1", "--out", run)
    combine_runs(runs, tmp_path / "ens", echo=lambda _: None)
    metrics = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert metrics["num_val"] == len(files[::4])  # scored once, on the files both runs share
    resplit = tmp_path / "resplit"
    run_cli("train", stripes, *FAST, "--epochs", "1", "--split-seed", "1", "--out", resplit)
    with pytest.raises(MienError, match="validated on other images"):
        combine_runs([base_run, resplit], tmp_path / "ens2")


def test_the_ensemble_keeps_its_members_framing(base_run, second_run, tmp_path):
    from mien.data.preprocess import Framing

    framed = []
    for run in (base_run, second_run):
        copy = tmp_path / run.name
        shutil.copytree(run, copy)
        state, record = ckpt.load_weights(copy / "model.safetensors")
        ckpt.save_weights(copy / "model.safetensors", state,
                          {**record, "framing": {"margin": 0.35, "align": False}})
        framed.append(copy)
    with pytest.raises(MienError, match="framing is .* read faces the same way"):
        combine_runs([base_run, framed[1]], tmp_path / "mixed")
    combine_runs(framed, tmp_path / "ens", echo=lambda _: None)
    for file in ("model.safetensors", "model.onnx"):
        assert load_classifier(tmp_path / "ens" / file).framing == Framing(0.35, False)
