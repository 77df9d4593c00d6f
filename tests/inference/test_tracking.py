from __future__ import annotations

import pytest

from mien.inference.tracking import IoUTracker, ProbabilitySmoother, TrackSummarizer
from mien.types import Box, Face, Prediction


def test_tracker_follows_moving_boxes_and_forgets_old_ones():
    tracker = IoUTracker(min_iou=0.3, max_age=2)
    a, b = Box(0, 0, 10, 10), Box(50, 0, 60, 10)
    assert tracker.update([a, b]) == [1, 2]
    # Moved a little, listed in the other order: ids follow the boxes, not the list order.
    assert tracker.update([Box(52, 1, 62, 11), Box(2, 1, 12, 11)]) == [2, 1]
    assert tracker.update([Box(3, 1, 13, 11)]) == [1]  # track 2 unseen for one update
    assert tracker.update([Box(53, 1, 63, 11), Box(200, 0, 210, 10)]) == [2, 3]
    for _ in range(3):
        tracker.update([])
    assert tracker.update([Box(3, 1, 13, 11)]) == [4]  # gone too long: a new track


def test_smoother_averages_and_can_flip_after_a_few_frames():
    s = ProbabilitySmoother(alpha=0.5)
    p = s.update(1, "smile", Prediction("smile", 0.9, {"no_smile": 0.1, "smile": 0.9}))
    assert p.probabilities == pytest.approx({"no_smile": 0.1, "smile": 0.9})
    p = s.update(1, "smile", Prediction("no_smile", 0.7, {"no_smile": 0.7, "smile": 0.3}))
    assert p.probabilities == pytest.approx({"no_smile": 0.4, "smile": 0.6})
    assert p.label == "smile" and p.score == pytest.approx(0.6)
    p = s.update(1, "smile", Prediction("no_smile", 0.9, {"no_smile": 0.9, "smile": 0.1}))
    assert p.label == "no_smile" and p.score == pytest.approx(0.65)
    other = s.update(2, "smile", Prediction("smile", 0.8, {"no_smile": 0.2, "smile": 0.8}))
    assert other.score == pytest.approx(0.8)  # tracks never mix
    with pytest.raises(ValueError):
        ProbabilitySmoother(0.0)


def test_summary_counts_labels_per_track():
    summary = TrackSummarizer()
    labels = ["smile", "smile", "no_smile", "smile"]
    for i, label in enumerate(labels):
        face = Face(Box(0, 0, 1, 1), 1.0, (), {"smile": Prediction(label, 1.0, {label: 1.0})}, 7)
        summary.add("v.mp4", i * 2, i / 10, face)
    summary.add("v.mp4", 0, 0.0, Face(Box(0, 0, 1, 1), 1.0))  # untracked: not summarised
    (track,) = summary.summaries()
    assert (track.track_id, track.frames, track.first_frame, track.last_frame) == (7, 4, 0, 6)
    assert track.end == pytest.approx(0.3)
    assert track.dominant == {"smile": "smile"}
    assert track.shares["smile"] == {"smile": 0.75, "no_smile": 0.25}
