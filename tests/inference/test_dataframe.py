"""Rows as pandas DataFrames: `Pipeline.dataframe`, `mien.analyze(as_frame=True)`, and the
one-line error naming the extra when pandas is missing."""

from __future__ import annotations

import sys

import pytest

import mien
from mien.errors import MissingDependencyError
from mien.inference.pipeline import Pipeline
from mien.inference.writers import columns


def test_pipeline_dataframe_has_the_csv_columns_and_a_row_per_face(face_video, classifiers):
    pytest.importorskip("pandas")
    pipeline = Pipeline("yunet", classifiers)
    frame = pipeline.dataframe([face_video], every=6)
    assert list(frame.columns) == columns(pipeline.labels)
    assert len(frame) == 12 and set(frame["frame"]) == set(range(0, 36, 6))
    assert set(frame["track_id"]) == {1, 2}
    assert frame[["light.dark", "light.bright"]].sum(axis=1).round(5).eq(1).all()


def test_analyze_as_frame_matches_the_faces(two_faces, classifiers):
    pytest.importorskip("pandas")
    faces = mien.analyze(two_faces, detector="yunet", attributes=classifiers)
    frame = mien.analyze(two_faces, detector="yunet", attributes=classifiers, as_frame=True)
    assert len(frame) == len(faces) == 2
    assert list(frame["light"]) == [f.attributes["light"].label for f in faces]
    assert set(frame["source"]) == {str(two_faces)} and set(frame["detector"]) == {"yunet"}


def test_analyze_as_frame_of_a_picture_without_faces_is_empty_with_columns(classifiers):
    pytest.importorskip("pandas")
    import numpy as np

    frame = mien.analyze(np.zeros((60, 80, 3), np.uint8), detector="haar",
                         attributes=classifiers, as_frame=True)
    assert frame.empty and "light.bright" in frame.columns


def test_missing_pandas_names_the_extra(two_faces, classifiers, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'mien\[pandas\]'"):
        mien.analyze(two_faces, detector="yunet", attributes=classifiers, as_frame=True)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mien\[pandas\]'"):
        Pipeline("yunet", classifiers).dataframe([two_faces])
