"""Change how a trained model treats its inputs at inference, without retraining: its input blur
(`Preprocess.blur_sigma`), its test-time augmentation (`tta`) and how faces are cut for it
(`framing`). All live in the model's record, so evaluation, `mien analyze` and `mien serve`
follow the new setting.

- `--blur-sigma S`: Gaussian-blur every input at the model's input size. For a model trained on
  images blurrier than the faces it will read, without `blur_sigma` in its config.
- `--tta none|flip`: average each face with its mirror, or not. Flip TTA runs the network twice
  per face: drop it where it buys little accuracy and the speed matters.
- `--framing-margin M`, `--framing-align/--no-framing-align`: the crop `mien analyze` cuts for
  the model, e.g. the best cell of `benchmarks/framing.py`.

Copies RUN to OUT (config, split) with the chosen weights (`--weights best`:
model.safetensors, `last`: last.safetensors, the final epoch) re-saved and re-exported to ONNX;
OUT/metrics.json holds RUN's training facts and the new model's validation scores, measured
again (`mien.training.derived`).

    python tools/set_inference.py runs/glasses runs/glasses-single --tta none
    python tools/set_inference.py runs/old runs/old-blur3 --blur-sigma 3 --weights last
    python tools/set_inference.py runs/glasses runs/glasses-m3 --framing-margin 0.3
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    from mien.training import checkpoint as ckpt
    from mien.training.derived import measure_derived_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--blur-sigma", type=float, default=None)
    parser.add_argument("--tta", choices=("none", "flip"), default=None)
    parser.add_argument("--framing-margin", type=float, default=None)
    parser.add_argument("--framing-align", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--weights", choices=("best", "last"), default="best")
    args = parser.parse_args()
    framing = (args.framing_margin, args.framing_align)
    if args.blur_sigma is None and args.tta is None and framing == (None, None):
        parser.error("nothing to change: give --blur-sigma, --tta and/or --framing-*")
    if args.framing_margin is not None and args.framing_margin < 0:
        parser.error(f"--framing-margin {args.framing_margin}: use 0 or more")
    src = args.run / ("model.safetensors" if args.weights == "best" else "last.safetensors")
    state, record = ckpt.load_weights(src)
    args.out.mkdir(parents=True, exist_ok=False)
    record = {**record, "weights_from": f"{args.run.name}/{src.name}"}
    if args.blur_sigma is not None:
        record["preprocess"] = {**record["preprocess"], "blur_sigma": args.blur_sigma}
    if args.tta is not None:
        record["tta"] = args.tta
    if framing != (None, None):
        from mien.data.preprocess import Framing

        old = Framing.from_dict(record.get("framing"))
        margin = old.margin if args.framing_margin is None else args.framing_margin
        align = old.align if args.framing_align is None else args.framing_align
        record["framing"] = Framing(margin, align).to_dict()
    if args.blur_sigma is not None or args.tta is not None:
        # the old temperature was fitted to other outputs: drop it (refit with mien calibrate)
        for key in ("temperature", "calibration"):
            record.pop(key, None)
    ckpt.save_weights(args.out / "model.safetensors", state, record)
    model = ckpt.build_model(record, state, path=src).eval()
    ckpt.export_onnx(model, record, args.out / "model.onnx")
    change = (f"{src.name} (epoch {record.get('epoch')}) with input blur sigma "
              f"{record['preprocess'].get('blur_sigma', 0.0)}, tta {record.get('tta', 'none')}, "
              f"framing {record.get('framing', 'default')}")
    m = measure_derived_run(args.run, args.out, change)
    _config_follows(args.out / "config.yaml", record)
    if "temperature" not in record:
        print(f"note: {args.out} is uncalibrated; fit its temperature with `mien calibrate "
              f"{args.out} --out {args.out / 'model.onnx'}`")
    print(f"{args.out}: {change}; validation accuracy {m.accuracy:.4f} (balanced "
          f"{m.balanced_accuracy:.4f}, measured again)")


def _config_follows(path: Path, record: dict) -> None:
    """The copied config.yaml says what the changed model does (cards show it)."""
    import yaml

    from mien.training import checkpoint as ckpt

    config = yaml.safe_load(path.read_text())
    framing = record.get("framing") or {}
    if config.get("train_blur_sigma") is None:  # training blurred as the original model did
        config["train_blur_sigma"] = config.get("blur_sigma", 0.0)
    config.update(blur_sigma=record["preprocess"].get("blur_sigma", 0.0),
                  tta=record.get("tta", "none"),
                  framing_margin=framing.get("margin", config.get("framing_margin")),
                  framing_align=framing.get("align", config.get("framing_align")))
    ckpt.write_text(path, yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    main()
