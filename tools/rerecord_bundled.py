"""Calibrate a bundled model and set its face framing in place, without its training run folder:
the weights stay byte for byte, only the record both files carry (ONNX metadata and safetensors
metadata) and the card change.

- `--calibrate`: fit the temperature on the card's own validation images (as `mien calibrate`
  does; any earlier temperature is discarded first) and store it with the ECE before and after.
- `--framing-margin M`, `--framing-align/--no-framing-align`: how `mien analyze` cuts faces for
  the model, e.g. the best cell of `benchmarks/framing.py`.

The card's file checksums, validation figures (with `ece`), `calibration` and `framing` are
rewritten; figures measured on the earlier file by SHA-256 (`labelled_photos`) are kept only if
the results file holds a row for the new file (re-run `benchmarks/genki_glasses.py`, then this
again without options to refresh the card).

    python tools/rerecord_bundled.py smile --calibrate --framing-margin 0.2 --framing-align
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    from ship_model import labelled_photos  # tools/ is sys.path[0]

    from mien.evaluation.evaluate import evaluate
    from mien.models.cards import read_card, validation_dataset, weights_dir, write_card
    from mien.models.loading import OnnxClassifier, sha256_of
    from mien.training import checkpoint as ckpt
    from mien.training.calibrate import calibrate_classifier, write_record

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--framing-margin", type=float, default=None)
    parser.add_argument("--framing-align", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--weights-dir", type=Path, default=None)
    args = parser.parse_args()

    folder = args.weights_dir or weights_dir()
    card = read_card(args.name, folder)
    onnx_path = folder / card["file"]
    torch_path = folder / card["torch_weights"]["file"]
    record = ckpt.read_record(torch_path)
    onnx_record = OnnxClassifier(onnx_path).record
    if {k: v for k, v in onnx_record.items() if k not in ("temperature", "calibration")} != {
            k: v for k, v in record.items() if k not in ("temperature", "calibration")}:
        raise SystemExit(f"error: {onnx_path} and {torch_path} carry different records; ship "
                         "them again from their run with tools/ship_model.py")
    ds = validation_dataset(card, args.data_root)

    framing = dict(record.get("framing") or {"margin": 0.2, "align": True})
    if args.framing_margin is not None:
        framing["margin"] = args.framing_margin
    if args.framing_align is not None:
        framing["align"] = args.framing_align
    record = {**record, "framing": framing}
    if args.calibrate:
        record = {k: v for k, v in record.items() if k not in ("temperature", "calibration")}
        write_record(onnx_path, onnx_path, record)
        fit = calibrate_classifier(OnnxClassifier(onnx_path), ds)
        record = {**record, "temperature": fit.temperature,
                  "calibration": {**fit.to_dict(), "data": card["data"]["validation"]}}
        print(f"{args.name}: temperature {fit.temperature:.4f}, ECE {fit.ece_before:.4f} -> "
              f"{fit.ece_after:.4f} on {fit.n} images")
    write_record(onnx_path, onnx_path, record)
    write_record(torch_path, torch_path, record)

    result = evaluate(OnnxClassifier(onnx_path, name=args.name), ds, batch_size=256,
                      model_name=args.name, data_name=card["data"]["validation_name"])
    evaluation = result.to_json()
    card["validation"] = {k: evaluation[k] for k in card["validation"] if k in evaluation}
    card["validation"]["ece"] = evaluation["ece"]
    card.update(sha256=sha256_of(onnx_path), size_bytes=onnx_path.stat().st_size,
                framing=framing)
    card["torch_weights"]["sha256"] = sha256_of(torch_path)
    if record.get("calibration"):
        card["calibration"] = dict(record["calibration"])
    card.pop("labelled_photos", None)
    labelled = labelled_photos(args.name, onnx_path)
    if labelled:
        card["labelled_photos"] = labelled
    path = write_card(card, folder)
    print(f"{onnx_path} and {path}: accuracy {evaluation['accuracy']:.4f}, balanced "
          f"{evaluation['balanced_accuracy']:.4f}, ECE {evaluation['ece']:.4f} on "
          f"{evaluation['n']} images; framing {framing}"
          + ("" if labelled or args.name != "glasses" else
             "; no labelled-photo figures for this file yet: run benchmarks/genki_glasses.py"))


if __name__ == "__main__":
    main()
