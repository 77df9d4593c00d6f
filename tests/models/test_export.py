import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mien.errors import ModelFileError
from mien.models import create_model, list_models, model_info
from mien.models.export import check_onnx, export_onnx

# The big reference networks use the same operators as vgg11 / resnet18 and take seconds each.
EXPORTED = [n for n in list_models() if n not in ("vgg19", "resnet50")]


def metadata(name: str, num_classes: int) -> dict:
    info = model_info(name)
    return {"format": 1, "task": "classify", "arch": name, "num_classes": num_classes,
            "in_channels": info.in_channels, "input_size": list(info.input_size),
            "labels": [f"c{i}" for i in range(num_classes)], "preprocess": {}, "model_kwargs": {}}


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_runtime_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    info = model_info(name)
    model = create_model(name, 7)
    model.train()
    with torch.no_grad():  # move the batch-norm statistics away from their identity defaults
        for _ in range(3):
            model(torch.randn(4, info.in_channels, *info.input_size) * 2 + 0.5)
    model.eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", info.input_size, info.in_channels,
                       metadata(name, 7))
    assert not model.training
    assert check_onnx(path) == metadata(name, 7)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # the batch dimension is dynamic
        x = torch.randn(batch, info.in_channels, *info.input_size)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_export_keeps_training_mode_and_writes_json(tmp_path):
    model = create_model("mien-net-s", 7).train()
    path = export_onnx(model, tmp_path / "sub" / "m.onnx", (48, 48), 1, {"arch": "mien-net-s"})
    assert model.training
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["mien"]) == {"arch": "mien-net-s"}


def test_check_onnx_rejects_broken_and_foreign_files(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="broken.onnx"):
        check_onnx(broken)
    foreign = tmp_path / "foreign.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(torch.nn.ReLU(), (torch.zeros(1, 2),), str(foreign), dynamo=False)
    with pytest.raises(ModelFileError, match="no 'mien' metadata"):
        check_onnx(foreign)
