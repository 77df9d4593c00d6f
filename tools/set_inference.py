"""Change how a trained model treats its inputs at inference, without retraining: its input blur
(`Preprocess.blur_sigma`) and its test-time augmentation (`tta`). Both live in the model's
record, so evaluation, `mien analyze` and `mien serve` all follow the new setting.

- `--blur-sigma S`: Gaussian-blur every input at the model's input size. For a model trained on
  blurred images without `blur_sigma` in its config (our FER2013 copy's train split is blurred,
  val and real photos are sharp).
- `--tta none|flip`: average each face with its mirror, or not. Flip TTA runs the network twice
  per face: drop it where it buys little accuracy and the speed matters.

Copies RUN to OUT (config, metrics, split) with the chosen weights (`--weights best`:
model.safetensors, `last`: last.safetensors, the final epoch) re-saved and re-exported to ONNX.

    python tools/set_inference.py runs/glasses runs/glasses-single --tta none
    python tools/set_inference.py runs/old runs/old-blur3 --blur-sigma 3 --weights last
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    from mien.training import checkpoint as ckpt

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--blur-sigma", type=float, default=None)
    parser.add_argument("--tta", choices=("none", "flip"), default=None)
    parser.add_argument("--weights", choices=("best", "last"), default="best")
    args = parser.parse_args()
    if args.blur_sigma is None and args.tta is None:
        parser.error("nothing to change: give --blur-sigma and/or --tta")
    src = args.run / ("model.safetensors" if args.weights == "best" else "last.safetensors")
    state, record = ckpt.load_weights(src)
    args.out.mkdir(parents=True, exist_ok=False)
    for f in ("config.yaml", "metrics.json", "split.json"):
        if (args.run / f).is_file():
            shutil.copyfile(args.run / f, args.out / f)
    record = {**record, "weights_from": f"{args.run.name}/{src.name}"}
    if args.blur_sigma is not None:
        record["preprocess"] = {**record["preprocess"], "blur_sigma": args.blur_sigma}
    if args.tta is not None:
        record["tta"] = args.tta
    ckpt.save_weights(args.out / "model.safetensors", state, record)
    model = ckpt.build_model(record, state, path=src).eval()
    ckpt.export_onnx(model, record, args.out / "model.onnx")
    print(f"{args.out}: {src} (epoch {record.get('epoch')}) with input blur sigma "
          f"{record['preprocess'].get('blur_sigma', 0.0)}, tta {record.get('tta', 'none')}")


if __name__ == "__main__":
    main()
