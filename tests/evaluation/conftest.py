"""Fixtures: generated datasets and a stand-in for the model loader."""

import pytest
from eval_fakes import SPEC, BrightnessClassifier, HalfClassifier, make_folder


@pytest.fixture
def folder(tmp_path):
    root = make_folder(tmp_path / "faces", SPEC)
    (root / "mid" / "99-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return root


@pytest.fixture
def fake_loader(monkeypatch):
    """Route `mien.models.loading.load_classifier` to the fakes (by spec name)."""
    made = {}

    def load_classifier(spec):
        spec = str(spec)
        clf = HalfClassifier() if spec == "half" else BrightnessClassifier(name=spec)
        made[spec] = clf
        return clf

    from mien.models import loading

    monkeypatch.setattr(loading, "load_classifier", load_classifier)
    return made
