"""The run-folder format at the bottom of the tree (`mien.runfiles`) and the loaders that run
kinds register there."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mien import runfiles
from mien.errors import ModelFileError
from mien.models.loading import load_classifier


def _safetensors(path, record) -> None:
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2, np.float32)}, str(path), metadata={"mien": json.dumps(record)})


def test_analysing_imports_neither_training_nor_heads(tmp_path):
    image = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    code = (
        "import sys\n"
        "from mien.cli.main import main\n"
        "from mien.api.app import create_app\n"
        "from mien.api.settings import Settings\n"
        "from fastapi.testclient import TestClient\n"
        f"assert main(['analyze', {str(image)!r}, '--detector', 'haar']) in (0, None)\n"
        "with TestClient(create_app(Settings(detector='haar'))) as client:\n"
        f"    files = {{'file': ('face.png', open({str(image)!r}, 'rb'), 'image/png')}}\n"
        "    assert client.post('/analyze', files=files).status_code == 200\n"
        "loaded = [m for m in sys.modules if m.startswith(('mien.training', 'mien.heads'))]\n"
        "assert not loaded, loaded\n"
    )
    pytest.importorskip("fastapi")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_unknown_run_kind_is_a_one_line_model_file_error(tmp_path):
    path = tmp_path / "odd.safetensors"
    _safetensors(path, {"task": "segment", "arch": "x", "labels": ["a"], "num_classes": 1,
                        "preprocess": {}})
    with pytest.raises(ModelFileError, match=r"odd.safetensors: unknown run kind 'segment'") as e:
        load_classifier(path)
    assert "\n" not in str(e.value)


def test_a_new_run_kind_loads_through_its_registered_loader(tmp_path, monkeypatch):
    (tmp_path / "toy_kind.py").write_text(
        "def load(path, name=None):\n    return ('toy', path.name, name)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runfiles, "RUN_KINDS", dict(runfiles.RUN_KINDS))  # undone after
    runfiles.register_run_kind("toy", "toy_kind:load")
    run = tmp_path / "run"
    run.mkdir()
    _safetensors(run / runfiles.MODEL_FILE, {"task": "toy", "arch": "x", "labels": ["a"],
                                             "num_classes": 1, "preprocess": {}})
    assert runfiles.run_kind(run) == ("toy", run / runfiles.MODEL_FILE)
    assert load_classifier(run) == ("toy", runfiles.MODEL_FILE, "run")


def test_run_kind_reads_the_record(tmp_path):
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / runfiles.HEAD_RECORD_FILE).write_text("{}")
    assert runfiles.run_kind(tmp_path / "head") == ("head", tmp_path / "head")
    ensemble = tmp_path / "e.safetensors"
    _safetensors(ensemble, {"arch": "ensemble", "labels": ["a"], "num_classes": 1,
                            "preprocess": {}, "members": [{"arch": "x"}]})
    assert runfiles.run_kind(ensemble) == ("ensemble", ensemble)
    assert runfiles.run_kind(tmp_path / "m.onnx") == ("classify", tmp_path / "m.onnx")
    with pytest.raises(ModelFileError, match="run folder without model.onnx"):
        runfiles.run_kind(tmp_path)


def test_reading_a_record_needs_no_torch(tmp_path):
    path = tmp_path / "m.safetensors"
    _safetensors(path, {"arch": "x", "labels": ["a"], "num_classes": 1, "preprocess": {}})
    code = ("import sys\nfrom mien.runfiles import read_record, run_kind\n"
            f"assert read_record({str(path)!r})['arch'] == 'x'\n"
            f"assert run_kind({str(path)!r})[0] == 'classify'\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
