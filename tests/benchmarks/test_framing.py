"""The pure parts of benchmarks/framing.py: the photo sample, the task of a model, the grid."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mien.data.preprocess import Framing
from mien.inference.align import crop_face
from mien.inference.pipeline import Pipeline
from mien.types import Box, Face

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("framing", BENCH / "framing.py")
framing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(framing)


def test_sample_is_every_photo_or_a_seeded_spread():
    assert framing.sample(5, None).tolist() == [0, 1, 2, 3, 4]
    assert framing.sample(5, 9).tolist() == [0, 1, 2, 3, 4]
    picked = framing.sample(1000, 30)
    assert len(set(picked.tolist())) == 30 and (np.diff(picked) > 0).all()
    assert picked.max() > 500  # spread over the set, not its first (one-class) files
    assert (framing.sample(1000, 30) == picked).all()


def test_task_of_a_model():
    assert framing.task_of("smile", ("no_smile", "smile")) == ("smile", "smile")
    assert framing.task_of("runs/x", ("no_eyeglasses", "eyeglasses")) == ("runs/x", "glasses")
    assert framing.task_of("runs/x=smile", ("a", "b")) == ("runs/x", "smile")
    with pytest.raises(SystemExit, match="runs/y=TASK"):
        framing.task_of("runs/y", ("a", "b"))


class MeanGray:
    """Probability of "light": the crop's mean gray level."""

    labels = ("dark", "light")

    def predict_proba(self, crops):
        m = np.array([c.mean() / 255 for c in crops])
        return np.stack([1 - m, m], axis=1)


def test_grid_scores_every_framing_on_the_pipelines_crops():
    photo = np.zeros((100, 100, 3), np.uint8)
    photo[32:68, 32:68] = 255  # a light square "face" on black: wider crops read darker
    face = Face(Box(30, 30, 70, 70), 0.9)
    cells = framing.grid_scores(Pipeline("haar", {}), MeanGray(), [photo], [face], np.array([1]))
    assert [(c["margin"], c["align"]) for c in cells] == [
        (m, a) for m in framing.MARGINS for a in framing.ALIGNS]
    light = {(c["margin"], c["align"]): c["accuracy"] for c in cells}
    for (margin, align), acc in light.items():
        crop = crop_face(photo, face, margin, align=align)
        assert acc == float(crop.mean() / 255 >= 0.5), Framing(margin, align)
    assert light[(0.0, True)] == 1.0 and light[(0.4, True)] == 0.0
