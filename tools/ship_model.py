"""Ship a finished run as a bundled model: copy its model.onnx to mien/models/weights/NAME.onnx,
score it on its validation data with mien.evaluation, and write the model card NAME.json.

    python tools/ship_model.py expression runs/expression
    python tools/ship_model.py smile runs/smile
    python tools/ship_model.py glasses runs/glasses-single

What each model was trained on, its intended use and the weaknesses known in advance are below;
the class-level weaknesses (lowest recall, smallest classes) are read off the validation result.
The card's `calibration` (temperature, ECE before and after) is the shipped file's: its record's
entry (`mien calibrate`), else the run's metrics.json one when the temperatures match
(`mien.models.cards.card_calibration`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import yaml

FER_LICENCE = ("FER2013 (Goodfellow et al., ICML 2013 challenge, Kaggle): research use; the copy "
               "used here states no licence. The weights are a derived work: check the terms "
               "before commercial use.")
INFO = {
    "expression": {
        "summary": "7 facial expressions (FER2013 classes) from a face crop",
        "data": {
            "train": "FER2013 Training split, 28,709 48x48 gray faces "
                     "(../shared/data/fer2013/train)",
            "validation": "FER2013 PublicTest split, 3,589 images (../shared/data/fer2013/val)",
            "validation_name": "fer2013/val", "val_path": "fer2013/val",
            "licence": FER_LICENCE,
        },
        "split": {"kind": "FER2013's own: Training for training, PublicTest for validation "
                          "(model and epoch chosen on it); PrivateTest never used"},
        "command": ("mien train --config configs/expression.yaml --out runs/expression-v6 "
                    "(one network, seed 0; the config's comments say why each setting)"),
        "intended_use": ("Rough expression of faces in photos and video for aggregate analysis "
                         "(e.g. share of happy faces), research and demos. Not for decisions "
                         "about individuals, emotion 'reading', hiring, policing or health."),
        "weaknesses": [
            "FER2013 labels are noisy (human agreement on them is low); fear, sad and angry "
            "are often confused with each other and with neutral: see the confusion matrix.",
            "disgust has only 436 training images (1.5 %) and 56 validation images: its "
            "scores are the least certain. Training weighs classes by 1/sqrt(frequency).",
            "Trained on 48x48 grayscale web faces (read at 40x40), mostly frontal: profile "
            "faces, heavy occlusion and very small faces are unreliable.",
            "Some FER2013 PublicTest (val) images are byte-identical to Training images; "
            "benchmarks/peers.py reports val with and without them.",
            "Demographic balance of FER2013 is undocumented; accuracy per group is unmeasured.",
        ],
    },
    "smile": {
        "summary": "smile / no_smile from a face crop",
        "data": {
            "train": "SMILEs (LFW face crops, ../shared/data/smiles) minus its held-out part, "
                     "plus CelebA 000001-010000 (../shared/data/celeba, Smiling attribute), "
                     "every photo cut by the bundled detector with the model's own framing "
                     "(margin 0, eyes levelled) as `mien analyze` cuts faces (tools/smile_mix.py, "
                     "mien data crop); the few photos without a face found are left out",
            "validation": "the held-out 10 % per class of SMILEs only (295 smile / 758 "
                          "no_smile; stratified, split_seed 0)",
            "validation_name": "SMILEs held-out", "val_path": "smiles",
            "licence": "SMILEs (hromi/SMILEsmileD, no licence stated) derived from Labeled "
                       "Faces in the Wild (research use); CelebA (Liu et al., ICCV 2015): "
                       "non-commercial research use only, which the weights inherit.",
        },
        "split_of": {"path": "smiles", "fraction": 0.1, "seed": 0},
        "command": ("python tools/smile_mix.py ../shared/data/smiles ../shared/data/celeba "
                    "runs/data/smile_raw && mien data crop runs/data/smile_raw "
                    "runs/data/smile_framed --margin 0 --align && "
                    "mien train --config configs/smile.yaml --out runs/smile-framed"),
        "intended_use": ("Whether a face smiles, for photo sorting, counting smiles in "
                         "video and demos. Not for decisions about individuals."),
        "weaknesses": [
            "The figures above are on SMILEs' own held-out 64x64 crops; the epoch was chosen "
            "on the same photos cut by the detector (as training saw them): "
            "benchmarks/end_to_end.py gives both. The CelebA half of the training data is not "
            "in the validation figure.",
            "LFW and CelebA are mostly adult public figures; children, older people and "
            "under-represented groups are unmeasured.",
            "5 images appear in both SMILEs classes (label noise).",
        ],
    },
    "glasses": {
        "summary": "eyeglasses (sunglasses included) / no_eyeglasses from a face crop",
        "data": {
            "train": "CelebA images 000001-010000 (../shared/data/celeba), Eyeglasses attribute "
                     "(674 / 9,326), re-framed like mien's face crops by "
                     "tools/celeba_face_crops.py (mien.models.cards.celeba_face_crop_jpeg); "
                     "80 % per class",
            "validation": "the held-out 20 % per class (split_seed 0, split.json)",
            "validation_name": "CelebA held-out", "val_path": "celeba",
            "attribute": "Eyeglasses", "reframe": "celeba_face_crop", "reframe_size": 64,
            "licence": "CelebA (Liu et al., ICCV 2015): non-commercial research use only; "
                       "the weights inherit that restriction.",
        },
        "command": ("python tools/celeba_face_crops.py ../shared/data/celeba "
                    "runs/data/celeba_crops && mien train --config configs/glasses.yaml "
                    "--out runs/glasses-mt0-s0 && python tools/set_inference.py "
                    "runs/glasses-mt0-s0 runs/glasses-mt0-s0-single --tta none"),
        "intended_use": ("Whether a face wears glasses or sunglasses, for photo sorting and "
                         "demos. Not for identity or access decisions."),
        "weaknesses": [
            "CelebA's Eyeglasses label counts sunglasses too: the model does not tell them "
            "apart.",
            "Only 674 positive images (539 for training); thin or rimless frames are the "
            "hardest and the rarest.",
            "CelebA identities are not given, so the same person may appear in training and "
            "validation: the held-out figure may be optimistic.",
            "CelebA is celebrities on the red carpet: lighting, age and demography differ "
            "from everyday photos.",
            "Trained and its epoch chosen with flip test-time augmentation, shipped without "
            "it (tools/set_inference.py --tta none): one network pass per face keeps it under "
            "1 ms/face on one thread; on the held-out split the single pass scores balanced "
            "0.975 against 0.974 with the flip.",
            "Trained with balanced class weights, its epoch chosen by balanced accuracy: it "
            "trades some plain accuracy for recall of eyeglasses (always answering "
            "no_eyeglasses scores 0.93 accuracy and 0.50 balanced). Only 135 held-out faces "
            "wear glasses: the standard error of the balanced accuracy is about 0.01.",
            "False alarms come first: on the held-out split about 1 in 23 faces without "
            "glasses is called eyeglasses (see the precision above), and on ordinary webcam "
            "photos more (labelled_photos). Judged by eye on the GENKI photos kept for "
            "choosing, they are mostly blurred or pixelated faces, darker-skinned faces, caps "
            "and an eye patch. Neither stronger blur, gamma and gray augmentation, nor 150 hard "
            "negatives from other GENKI photos, nor a multi-task head on CelebA's other 39 "
            "attributes lowered them (configs/glasses-v2.yaml, glasses-hn.yaml, "
            "glasses.yaml with --aux-weight 0.5). For fewer false alarms, threshold "
            "P(eyeglasses) higher (every row of `mien analyze` holds it), at some cost in "
            "recall.",
        ],
    },
}


def class_weaknesses(evaluation: dict, train_counts: dict[str, int]) -> list[str]:
    """The two classes with the lowest recall, with their precision and training count."""
    per = evaluation["per_class"]
    worst = sorted(per, key=lambda c: per[c]["recall"] if per[c]["recall"] is not None else 2)
    return [f"validation recall of {c} is {per[c]['recall']:.3f} (precision "
            f"{per[c]['precision']:.3f}, {train_counts.get(c, '?')} training images)"
            for c in worst[:2]]


def real_photos_note(name: str) -> str | None:
    """What benchmarks/shipped_models.py saw this model predict on GENKI / VOC photos."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "shipped_models.json"
    if not path.is_file():
        return None
    photos = json.loads(path.read_text()).get("real_photos", {})
    parts = []
    for label in ("genki_szsl", "voc_faces"):
        r = photos.get(label)
        if r and name in r.get("predictions", {}):
            counts = ", ".join(f"{k} {v}" for k, v in r["predictions"][name].items())
            parts.append(f"{label}: {r['faces']} faces found by the {photos.get('detector')} "
                         f"detector in {r['photos']} photos -> {counts}")
    if not parts:
        return None
    return ("; ".join(parts) + " (benchmarks/shipped_models.py; no attribute labels: GENKI faces "
            "are mostly smiling or neutral)")


def labelled_photos(name: str, onnx_path: Path) -> dict | None:
    """benchmarks/genki_glasses.py's (or genki_smile.py's) figures for this very file (matched by
    its SHA-256)."""
    from mien.runfiles import sha256_of

    results = {"glasses": "genki_glasses.json", "smile": "genki_smile.json"}
    if name not in results:
        return None
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / results[name]
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    digest = sha256_of(onnx_path)
    row = next((r for r in result["results"] if r.get("sha256") == digest), None)
    if row is None:
        return None
    keep = ("n", "positives", "accuracy", "balanced_accuracy", "recall", "false_alarm_rate",
            "false_alarms", "misses")
    labels = result.get("labels_file", "benchmarks/labels/genki_eyeglasses.csv")
    part = result.get("part", "choose")  # results written before parts: file0001-file0400
    return {"data": f"GENKI-SZSL photos labelled by eye ({labels}, part {part})",
            "part": part, "detector": result["detector"], "command": result["command"],
            **{k: row[k] for k in keep}}


def selection_weakness(metrics: dict) -> list[str]:
    """Weights picked as the best of several epochs on the validation images themselves."""
    if metrics["best_epoch"] == metrics["epochs_run"]:
        return []
    if "members" in metrics:  # an ensemble (mien ensemble): each member's best epoch
        last = metrics.get("final_val_accuracy")
        epochs = ", ".join(f"{b} of {n}" for b, n in zip(metrics["best_epoch"],
                                                          metrics["epochs_run"], strict=True))
        return [f"Each member's weights are those of its best epoch on the validation images "
                f"that give the figures above (epochs {epochs}), so they are slightly optimistic"
                + (f": the ensemble of the members' last epochs scored {last:.4f} accuracy."
                   if last is not None else ".")]
    return [f"The weights are those of epoch {metrics['best_epoch']} of "
            f"{metrics['epochs_run']}, the best on the validation images that give the figures "
            f"above, so they are slightly optimistic: the last epoch scored "
            f"{metrics['final_val_accuracy']:.4f} accuracy."]


def budget_weakness(metrics: dict) -> list[str]:
    if "time_budget" not in metrics["stopped"]:
        return []
    hw = metrics.get("hardware", {})
    minutes = f"{metrics['train_seconds'] / 60:.0f} min"
    runs = (f"{len(metrics['members'])} runs of {', '.join(map(str, metrics['epochs_run']))} "
            f"epochs, {minutes} in all"
            if "members" in metrics else f"{metrics['epochs_run']} epochs in {minutes}")
    return [f"Trained under a CPU time budget: {runs} ({hw.get('torch_threads', '?')} torch "
            f"thread(s) of a {hw.get('cpu_count', '?')}-core CPU); longer training may score "
            "higher."]


def main() -> None:
    from mien.data.datasets import open_dataset
    from mien.evaluation.evaluate import evaluate
    from mien.models.cards import (
        build_card,
        default_data_root,
        relative_sources,
        validation_dataset,
        weights_dir,
        write_card,
    )
    from mien.models.loading import OnnxClassifier, sha256_of

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(INFO))
    parser.add_argument("run", type=Path)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="where to write (default: mien/models/weights)")
    args = parser.parse_args()
    info = INFO[args.name]
    root = args.data_root or default_data_root()
    config = yaml.safe_load((args.run / "config.yaml").read_text())

    split = dict(info.get("split", {}))
    split_file = args.run / "split.json"
    record = split_root = None
    if split_file.is_file():
        record, split_root = json.loads(split_file.read_text()), config["data"]
    elif "split_of" in info:  # validation is a split of another folder (a train/val tree run)
        from mien.data.datasets import stratified_split

        how = info["split_of"]
        split_root = root / how["path"]
        _, _, record = stratified_split(open_dataset(split_root)["all"], how["fraction"],
                                        how["seed"])
    if record is not None:
        split = {
            "kind": f"stratified {record['val_fraction']:.0%} per class held out, split_seed "
                    f"{record['seed']} (mien.data.datasets.stratified_split)",
            # the run's split.json, or the record as a run would write it
            "record_sha256": hashlib.sha256(json.dumps(record, indent=1).encode()).hexdigest(),
            "val_files": relative_sources(record["val_sources"], split_root),
        }
    dst = args.weights_dir or weights_dir()
    dst.mkdir(parents=True, exist_ok=True)
    onnx_path = dst / f"{args.name}.onnx"
    shutil.copyfile(args.run / "model.onnx", onnx_path)
    torch_path = dst / f"{args.name}.safetensors"  # for `mien train --from NAME`
    shutil.copyfile(args.run / "model.safetensors", torch_path)

    partial = {"name": args.name, "data": info["data"], "split": split}
    ds = validation_dataset(partial, root)
    result = evaluate(OnnxClassifier(onnx_path, name=args.name), ds, batch_size=256,
                      model_name=args.name, data_name=info["data"]["validation_name"])
    evaluation = result.to_json()
    metrics = json.loads((args.run / "metrics.json").read_text())
    if abs(evaluation["accuracy"] - metrics["best_val_accuracy"]) > 1e-9:
        print(f"note: ONNX accuracy {evaluation['accuracy']:.6f} differs from training's "
              f"{metrics['best_val_accuracy']:.6f}")

    train = open_dataset(config["data"], attribute=config.get("attribute"))
    base = train.get("train") or train.get("all")
    counts = base.counts()
    if "val_files" in split and "split_of" not in info:  # training images only
        held = ds.counts()
        counts = {c: n - held.get(c, 0) for c, n in counts.items()}
    card = build_card(
        name=args.name, onnx_path=onnx_path, run_dir=args.run, evaluation=evaluation,
        data=info["data"], split=split, command=info["command"],
        intended_use=info["intended_use"],
        known_weaknesses=info["weaknesses"] + class_weaknesses(evaluation, counts)
        + selection_weakness(metrics) + budget_weakness(metrics),
        summary=info["summary"],
        extra={"torch_weights": {"file": torch_path.name, "sha256": sha256_of(torch_path)}},
    )
    photos = real_photos_note(args.name)
    if photos:
        card["real_photos"] = photos
    labelled = labelled_photos(args.name, onnx_path)
    if labelled:
        card["labelled_photos"] = labelled
    h, w = card["input"]["size"]
    card["summary"] = f"{info['summary']}, {h}x{w} {card['input']['color']}"
    path = write_card(card, dst)
    print(f"{onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB) and {path}: accuracy "
          f"{evaluation['accuracy']:.4f}, balanced {evaluation['balanced_accuracy']:.4f} on "
          f"{evaluation['n']} images")


if __name__ == "__main__":
    main()
