"""Quantise a bundled model's network to int8 and, within tolerance, ship it in place.

ONNX Runtime's static quantisation (QOperator format: fused integer Conv/Gemm kernels; weights
int8 per output channel, activations uint8 with MinMax ranges) calibrated on training images
the model never saw as validation: FER2013 train for `expression`, CelebA aligned images
re-framed like mien's face crops for the others (minus the card's held-out files). The int8 and
the float file are scored side by side on the card's validation data; with --write, and only
when accuracy and balanced accuracy each drop by at most --tolerance points, the int8 file
replaces the bundled ONNX and the card is rewritten: its checksums and validation figures are
the int8 file's, `quantization` records the method, the calibration set, the float source's
SHA-256 and its figures. The float weights stay in NAME.safetensors (fine-tuning, export).
Then refit the temperature on the int8 file: `python tools/rerecord_bundled.py NAME --calibrate`
(and re-run the labelled-photo benchmark of a smile or glasses model, then rerecord_bundled.py).

    git show COMMIT:mien/models/weights/expression.onnx > /tmp/expression.float.onnx
    python tools/quantize_bundled.py expression --source /tmp/expression.float.onnx [--write]

The same source, calibration count and seed give the same file (tested).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def is_fer(card: dict) -> bool:
    """The model reads FER2013 faces (calibrated on FER2013 train), else CelebA crops."""
    return card["data"]["val_path"] == "fer2013/val"


def calibration_files(card: dict, data_root: Path, count: int, seed: int) -> list[Path]:
    """`count` training images of the model's own kind, drawn with `seed`: FER2013 train for a
    FER2013 model, else CelebA aligned images outside the card's held-out files."""
    from mien.models.cards import val_files

    if is_fer(card):
        folder = data_root / "fer2013" / "train"
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    else:
        held = {Path(f).name for f in val_files(card) or []}
        files = sorted(p for p in (data_root / "celeba" / "img_align_celeba").glob("*.jpg")
                       if p.name not in held)
    return random.Random(seed).sample(files, min(count, len(files)))


def calibration_images(card: dict, data_root: Path, count: int, seed: int) -> list:
    """`calibration_files` as uint8 arrays, CelebA ones re-framed like mien's face crops."""
    from mien.data.io import decode_image, read_image
    from mien.models.cards import celeba_face_crop_jpeg

    files = calibration_files(card, data_root, count, seed)
    if is_fer(card):
        return [read_image(p) for p in files]
    return [decode_image(celeba_face_crop_jpeg(read_image(p), 64), "rgb", name=str(p))
            for p in files]


def quantize(source: Path, target: Path, preprocess, images: list) -> None:
    """`source` (float ONNX) -> `target` (int8), ranges from `images` run one at a time."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(images)

        def get_next(self):
            image = next(self.items, None)
            return None if image is None else {name: preprocess([image])}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QOperator,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    from ship_model import labelled_photos

    from mien.evaluation.evaluate import evaluate
    from mien.models.cards import (
        default_data_root,
        read_card,
        validation_dataset,
        weights_dir,
        write_card,
    )
    from mien.models.loading import OnnxClassifier, sha256_of

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--source", type=Path, required=True, help="the float ONNX file")
    parser.add_argument("--calibration", type=int, default=512, help="calibration images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.3, help="points of accuracy")
    parser.add_argument("--out", type=Path, default=None, help="write the int8 file here only")
    parser.add_argument("--write", action="store_true", help="replace the bundled file + card")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args(argv)

    folder = weights_dir()
    card = read_card(args.name, folder)
    bundled = folder / card["file"]
    source = OnnxClassifier(args.source, name=args.name)
    def network(record: dict) -> dict:  # the record less the temperature, refitted later
        return {k: v for k, v in record.items() if k not in ("temperature", "calibration")}

    if network(source.record) != network(OnnxClassifier(bundled).record):
        raise SystemExit(f"error: {args.source} does not carry the record of {bundled}: pass "
                         "the float file this model was shipped as")
    data_root = args.data_root or default_data_root()
    images = calibration_images(card, data_root, args.calibration, args.seed)
    target = args.out or Path(tempfile.mkdtemp()) / f"{args.name}.int8.onnx"
    quantize(args.source, target, source.preprocess, images)

    ds = validation_dataset(card, args.data_root)
    scores = {}
    for kind, path in (("float", args.source), ("int8", target)):
        result = evaluate(OnnxClassifier(path, name=args.name), ds, batch_size=256,
                          model_name=args.name, data_name=card["data"]["validation_name"])
        scores[kind] = result.to_json()
    print("file | accuracy | balanced | ECE | KiB")
    print("--- | --- | --- | --- | ---")
    for kind, path in (("float", args.source), ("int8", target)):
        s = scores[kind]
        print(f"{kind} | {s['accuracy']:.4f} | {s['balanced_accuracy']:.4f} | {s['ece']:.4f} | "
              f"{path.stat().st_size / 1024:.0f}")
    drop = {k: 100 * (scores["float"][k] - scores["int8"][k])
            for k in ("accuracy", "balanced_accuracy")}
    print("drop in points: " + ", ".join(f"{k} {v:+.2f}" for k, v in drop.items()))
    if not args.write:
        print(f"int8 file: {target} (not shipped: add --write)")
        return
    if max(drop.values()) > args.tolerance:
        raise SystemExit(f"error: int8 loses more than {args.tolerance} points; not shipped")

    float_sha = sha256_of(args.source)
    shutil.copyfile(target, bundled)
    keep = card["validation"].keys()
    card["validation"] = {k: scores["int8"][k] for k in keep if k in scores["int8"]}
    card["validation"]["ece"] = scores["int8"]["ece"]
    card.update(sha256=sha256_of(bundled), size_bytes=bundled.stat().st_size)
    card["quantization"] = {
        "method": "ONNX Runtime static quantisation, QOperator; weights int8 per channel, "
                  "activations uint8, MinMax ranges",
        "calibration": f"{len(images)} training images (seed {args.seed}): "
                       + ("FER2013 train" if is_fer(card) else
                          "CelebA aligned images outside the held-out part, re-framed as face "
                          "crops"),
        "float_sha256": float_sha,
        "float_validation": {k: scores["float"][k]
                             for k in ("n", "accuracy", "balanced_accuracy", "ece")},
        "command": f"python tools/quantize_bundled.py {args.name} --source FLOAT.onnx "
                   f"--calibration {args.calibration} --seed {args.seed} --write",
    }
    card.pop("labelled_photos", None)
    labelled = labelled_photos(args.name, bundled)
    if labelled:
        card["labelled_photos"] = labelled
    write_card(card, folder)
    print(f"shipped {bundled} ({json.dumps(card['quantization']['float_validation'])} float)"
          + ("" if labelled or args.name == "expression" else
             f"; re-run benchmarks/genki_{'glasses' if args.name == 'glasses' else 'smile'}.py "
             "and tools/rerecord_bundled.py for the labelled-photo figures"))


if __name__ == "__main__":
    main()
