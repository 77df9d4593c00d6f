"""Export a zoo model to ONNX with a dynamic batch and mien's metadata (docs/design.md)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from mien.errors import ModelFileError, require

METADATA_KEY = "mien"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
OPSET = 17


def export_onnx(model, path: str | Path, input_size: tuple[int, int], in_channels: int,
                metadata: dict) -> Path:
    """Write `model` (eval mode, float32 NCHW input) to `path` and check ONNX Runtime loads it.

    The input is named "input" with shape (batch, C, H, W), batch dynamic; the output "output"
    (logits, or the reconstruction for autoencoders). `metadata` is stored as JSON under the
    metadata_props key "mien".
    """
    torch = require("torch", "train")
    onnx = require("onnx", "train")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metadata, sort_keys=True)  # fails early on values JSON cannot hold
    was_training = model.training
    model.eval()
    dummy = torch.zeros(1, in_channels, *input_size)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but needs no onnxscript and yields a
            # plain, fully constant-folded graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (dummy,), str(path), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    finally:
        model.train(was_training)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, text
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    check_onnx(path)
    return path


def check_onnx(path: str | Path) -> dict:
    """Load `path` in ONNX Runtime and return its mien metadata; ModelFileError if unusable."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        raise ModelFileError(f"{path}: ONNX Runtime cannot load it ({exc}); re-export it") from exc
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelFileError(f"{path}: no 'mien' metadata; export it with mien.models.export")
    return json.loads(props[METADATA_KEY])

