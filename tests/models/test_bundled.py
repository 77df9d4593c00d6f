"""The classifiers shipped in mien/models/weights: present, checksummed, carded, loadable without
torch, and their cards' validation figures reproduced from the shared data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mien.cli.main import main
from mien.errors import ModelFileError
from mien.inference.pipeline import framing_of
from mien.models import cards
from mien.models.loading import load_classifier

BUNDLED = ("expression", "smile", "glasses")


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def installed():
    return {m.name: m for m in cards.installed_models()}


@pytest.mark.parametrize("name", BUNDLED)
def test_default_model_is_shipped_small_verified_and_loads_as_its_card_says(name, installed):
    assert name in installed, f"{name} is not in mien/models/weights"
    m = installed[name]
    card = m.card
    assert m.verified and card["file"] == f"{name}.onnx"
    assert 10_000 < m.size_bytes < 8_000_000  # small: `expression`, 5 x 0.33M params, is 6.5 MB
    for key in cards.REQUIRED:
        assert card[key], key
    v = card["validation"]
    cm = np.array(v["confusion"])
    assert cm.shape == (len(card["labels"]),) * 2 and cm.sum() == v["n"]
    assert v["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert set(v["per_class"]) == set(card["labels"])

    clf = load_classifier(name)
    assert clf.labels == tuple(card["labels"])
    assert json.loads(json.dumps(clf.preprocess.to_dict())) == card["preprocess"]
    assert list(clf.input_size) == card["input"]["size"]
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (40, 112, 200)]
    p = clf.predict_proba(crops)
    assert p.shape == (3, len(card["labels"])) and np.allclose(p.sum(axis=1), 1, atol=1e-5)


def test_tampered_weights_are_refused(tmp_path, monkeypatch, capsys):
    from mien import runfiles

    src = cards.weights_dir()
    for f in ("expression.onnx", "expression.json"):
        shutil.copy(src / f, tmp_path / f)
    assert cards.installed_models(tmp_path)[0].verified
    blob = bytearray((tmp_path / "expression.onnx").read_bytes())
    blob[-100] ^= 0xFF
    (tmp_path / "expression.onnx").write_bytes(bytes(blob))
    assert not cards.installed_models(tmp_path)[0].verified
    monkeypatch.setattr(runfiles, "weights_dir", lambda: tmp_path)
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_classifier("expression")
    code, out, err = run_cli(["models", "list"], capsys)
    assert code != 0 and "MISMATCH" in out and "expression.onnx" in err


def test_broken_or_missing_card_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="no model card for 'smile'"):
        cards.read_card("smile", tmp_path)
    (tmp_path / "smile.json").write_text(json.dumps({"name": "smile"}))
    with pytest.raises(ModelFileError, match="smile.json: model card lacks file, sha256"):
        cards.read_card("smile", tmp_path)
    (tmp_path / "smile.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        cards.read_card("smile", tmp_path)


def test_models_list_and_show(installed, capsys):
    code, out, _ = run_cli(["models", "list"], capsys)
    assert code == 0
    for name in BUNDLED:
        line = next(x for x in out.splitlines() if x.strip("│ ").startswith(name))
        assert "ok" in line and f"{installed[name].card['validation']['accuracy']:.3f}" in line
    card = installed["expression"].card
    code, out, _ = run_cli(["models", "show", "expression"], capsys)
    assert code == 0
    assert card["sha256"] in out and card["command"] in out
    network = next(x for x in out.splitlines() if x.startswith("network"))
    if card["preprocess"]["blur_sigma"]:
        assert f"blurred with sigma {card['preprocess']['blur_sigma']}" in network
    assert ("flip test-time augmentation" in network) == (card["input"].get("tta") == "flip")
    disgust = card["validation"]["per_class"]["disgust"]
    row = next(x for x in out.splitlines() if x.strip().startswith("disgust "))
    assert row.split()[1:] == [f"{disgust['precision']:.3f}", f"{disgust['recall']:.3f}",
                               f"{disgust['f1']:.3f}", str(disgust["support"])]
    code, out, _ = run_cli(["models", "show", "expression", "--json"], capsys)
    assert json.loads(out) == card
    code, _, err = run_cli(["models", "show", "nonesuch"], capsys)
    assert code != 0 and "nonesuch.json" in err and "mien models list" in err


def test_evaluate_expression_prints_the_accuracy_of_its_card(shared_data, installed, capsys):
    v = installed["expression"].card["validation"]
    code, out, _ = run_cli(["evaluate", "expression", str(shared_data / "fer2013" / "val")],
                           capsys)
    assert code == 0
    assert f"{v['n']} images" in out
    assert f"accuracy {v['accuracy']:.4f}   balanced accuracy {v['balanced_accuracy']:.4f}" in out


@pytest.mark.parametrize("name", ["smile", "glasses"])
def test_held_out_figures_of_the_card_are_reproduced(name, shared_data, installed):
    from mien.evaluation.evaluate import evaluate

    card = installed[name].card
    ds = cards.validation_dataset(card, shared_data)
    assert len(ds) == card["validation"]["n"] == len(card["split"]["val_files"])
    result = evaluate(load_classifier(name), ds, batch_size=256)
    assert result.metrics.accuracy == pytest.approx(card["validation"]["accuracy"], abs=1e-12)
    assert [list(r) for r in result.metrics.confusion] == card["validation"]["confusion"]
    if "ece" in card["validation"]:
        assert result.ece == pytest.approx(card["validation"]["ece"], abs=1e-9)
    if "calibration" in card:  # fitted on these images: its ECE after is what the file gives
        assert load_classifier(name).temperature == card["calibration"]["temperature"]
        assert result.ece == pytest.approx(card["calibration"]["ece_after"], abs=1e-4)


def test_cards_show_the_calibration_of_their_own_file(installed):
    record = {"temperature": 0.75}
    fitted = {"temperature": 0.75, "ece_before": 0.0321, "ece_after": 0.0076, "n": 1053}
    # the record's own entry (mien calibrate, training), else the run's when it is this file's
    assert cards.card_calibration({**record, "calibration": {**fitted, "data": "d"}}, {}) == {
        **fitted, "data": "d"}
    assert cards.card_calibration(record, {"calibration": fitted}) == {
        **fitted, "data": "validation split"}
    assert cards.card_calibration(record, {"calibration": {**fitted, "temperature": 2.0}}) is None
    assert cards.card_calibration({}, {"calibration": fitted}) is None  # an uncalibrated file
    card = {**installed["smile"].card, "calibration": {**fitted, "data": "SMILEs held-out"}}
    line = next(x for x in cards.card_text(card).splitlines() if x.startswith("calibration"))
    assert line == ("calibration   temperature 0.7500 fitted on 1053 images of SMILEs held-out: "
                    "expected calibration error 0.0321 before, 0.0076 after")


@pytest.mark.parametrize("name", ["glasses", "smile"])
def test_labelled_photo_figures_are_reproduced(name, shared_data, installed):
    """The card's GENKI figures, re-measured through the benchmark's own code
    (benchmarks/_genki.py: genki_glasses.py, genki_smile.py)."""
    import importlib.util
    from pathlib import Path

    card = installed[name].card
    claimed = card["labelled_photos"]
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_genki.py"
    spec = importlib.util.spec_from_file_location("_genki", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    attribute = next(a for a, (_, model) in bench.ATTRIBUTES.items() if model == name)
    labels = bench.read_labels(attribute, claimed["part"])
    files, faces, pipeline = bench.detected_faces(shared_data / "detection/genki_szsl", labels,
                                                  claimed["detector"])
    found = [i for i, f in enumerate(faces) if f is not None]
    clf = load_classifier(name)
    crops = bench.crops_for(pipeline, [faces[i] for i in found], framing_of(clf))
    positive = bench.ATTRIBUTES[attribute][0]
    p = clf.predict_proba(crops)[:, list(clf.labels).index(positive)]
    got = bench.score(np.array([labels[files[i]] for i in found]), p)
    assert pipeline.detector.name == claimed["detector"]
    assert {k: got[k] for k in ("n", "positives", "false_alarms", "misses")} == {
        k: claimed[k] for k in ("n", "positives", "false_alarms", "misses")}
    assert got["balanced_accuracy"] == pytest.approx(claimed["balanced_accuracy"], abs=1e-4)


def test_rerecord_tool_calibrates_and_reframes_a_bundled_model_in_place(shared_data, tmp_path):
    """tools/rerecord_bundled.py: same weights, new record (temperature, framing), card
    checksums and figures of the new file."""
    import subprocess
    import sys
    from pathlib import Path

    from mien.data.preprocess import Framing
    from mien.models.loading import load_classifier, sha256_of
    from mien.training.checkpoint import load_weights

    folder = tmp_path / "weights"
    shutil.copytree(cards.weights_dir(), folder)
    before = cards.read_card("smile", folder)
    tool = Path(__file__).resolve().parents[2] / "tools" / "rerecord_bundled.py"
    done = subprocess.run([sys.executable, str(tool), "smile", "--calibrate", "--framing-margin",
                           "0.3", "--no-framing-align", "--weights-dir", str(folder),
                           "--data-root", str(shared_data)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    card = cards.read_card("smile", folder)
    assert card["sha256"] == sha256_of(folder / "smile.onnx") != before["sha256"]
    assert card["torch_weights"]["sha256"] == sha256_of(folder / "smile.safetensors")
    old_state, _ = load_weights(cards.weights_dir() / "smile.safetensors")
    new_state, _ = load_weights(folder / "smile.safetensors")
    assert old_state.keys() == new_state.keys()
    assert all(np.array_equal(old_state[k].numpy(), new_state[k].numpy()) for k in old_state)
    for file in ("smile.onnx", "smile.safetensors"):
        clf = load_classifier(folder / file)
        assert clf.framing == Framing(0.3, False)
        assert clf.temperature == pytest.approx(card["calibration"]["temperature"]) != 1.0
    c = card["calibration"]
    assert c["ece_after"] < c["ece_before"] and c["n"] == before["validation"]["n"]
    assert card["validation"]["ece"] == pytest.approx(c["ece_after"], abs=1e-6)
    assert card["validation"]["accuracy"] == pytest.approx(before["validation"]["accuracy"],
                                                           abs=0.005)
    assert card["framing"] == {"margin": 0.3, "align": False}
