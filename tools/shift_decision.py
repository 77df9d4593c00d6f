"""Move a binary classifier's decision point: add SHIFT to one class's output bias, so argmax
picks that class when its logit trails by less than SHIFT (a prior correction for a rare class).

Copies RUN to OUT (config, split) with model.safetensors and model.onnx rewritten; the record
notes the shift under "decision_shift", and OUT/metrics.json the shifted model's validation
scores, measured again (`mien.training.derived`). Choose SHIFT on validation data only, and say
so.

    python tools/shift_decision.py runs/glasses runs/glasses-shift1 --label eyeglasses --shift 1.0
    python tools/shift_decision.py runs/glasses --scan --label eyeglasses   # val balanced acc
"""

from __future__ import annotations

import argparse
from pathlib import Path

SCAN = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)


def main() -> None:
    import numpy as np

    from mien.training import checkpoint as ckpt
    from mien.training.derived import measure_derived_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--label", required=True)
    parser.add_argument("--shift", type=float, default=0.0)
    parser.add_argument("--scan", action="store_true",
                        help="print val accuracy / balanced accuracy for shifts " + str(SCAN))
    args = parser.parse_args()
    state, record = ckpt.load_weights(args.run / "model.safetensors")
    k = list(record["labels"]).index(args.label)
    if args.scan:
        from mien.models.loading import load_classifier
        from mien.training.data import run_splits

        _, val = run_splits(args.run)
        clf = load_classifier(args.run / "model.onnx")
        p = clf.predict_proba([val.load(i, clf.preprocess.color) for i in range(len(val))])
        logit = np.log(p + 1e-12)
        for s in SCAN:
            pred = (logit + np.eye(len(record["labels"]))[k] * s).argmax(1)
            recalls = [(pred[val.labels == c] == c).mean() for c in range(len(record["labels"]))]
            print(f"shift {s:.1f}: accuracy {(pred == val.labels).mean():.4f}, balanced "
                  f"{np.mean(recalls):.4f}")
        return
    if args.out is None:
        raise SystemExit("give OUT, or --scan")
    args.out.mkdir(parents=True, exist_ok=False)
    state = dict(state)
    bias = state["classifier.bias"].clone()
    bias[k] += args.shift
    state["classifier.bias"] = bias
    record = {**record, "decision_shift": {"label": args.label, "shift": args.shift}}
    ckpt.save_weights(args.out / "model.safetensors", state, record)
    model = ckpt.build_model(record, state, path=args.out / "model.safetensors").eval()
    ckpt.export_onnx(model, record, args.out / "model.onnx")
    m = measure_derived_run(args.run, args.out, f"{args.label} logit + {args.shift}")
    print(f"{args.out}: {args.label} logit + {args.shift}; validation accuracy "
          f"{m.accuracy:.4f} (balanced {m.balanced_accuracy:.4f}, measured again)")


if __name__ == "__main__":
    main()
