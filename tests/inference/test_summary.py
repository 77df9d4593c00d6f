"""Video summaries: share of time in each label per video and per track, and the timeline PNG."""

from __future__ import annotations

import pytest
from PIL import Image

from mien.errors import MienError
from mien.inference.pipeline import Pipeline, Row
from mien.inference.summary import VideoSummarizer, summarize
from mien.types import Box, Face, Prediction


def row(frame: int, track_id: int | None, label: str, source: str = "clip.mp4") -> Row:
    probs = {"happy": 0.8, "sad": 0.2} if label == "happy" else {"happy": 0.3, "sad": 0.7}
    face = Face(Box(0, 0, 10, 10), 0.9, attributes={"expression": Prediction(
        label, max(probs.values()), probs)}, track_id=track_id)
    return Row(source, frame, frame / 10, "ok", 0, face)


def test_shares_per_video_and_per_track():
    rows = [row(0, 1, "happy"), row(0, 2, "sad"), row(1, 1, "happy"), row(1, 2, "happy"),
            row(2, 1, "sad"), Row("clip.mp4", 3, 0.3, "no_face"),
            Row("photo.jpg", 0, None, "ok", 0, Face(Box(0, 0, 5, 5), 0.9))]
    (video,) = summarize(rows)  # the photo has no track: not a video
    assert video.source == "clip.mp4" and video.frames == 4 and video.face_frames == 5
    assert video.shares == {"expression": {"happy": 0.6, "sad": 0.4}}
    by_id = {t.track_id: t for t in video.tracks}
    assert by_id[1].shares["expression"] == pytest.approx({"happy": 2 / 3, "sad": 1 / 3})
    assert by_id[2].shares["expression"] == {"sad": 0.5, "happy": 0.5}


def test_timeline_has_a_panel_per_track(tmp_path):
    summarizer = VideoSummarizer()
    for frame in range(30):
        summarizer.add(row(frame, 1, "happy" if frame < 20 else "sad"))
        summarizer.add(row(frame, 2, "sad"))
    one = VideoSummarizer()
    for frame in range(30):
        one.add(row(frame, 1, "happy"))
    two_panels = Image.open(summarizer.plot_timeline("clip.mp4", tmp_path / "two.png"))
    one_panel = Image.open(one.plot_timeline("clip.mp4", tmp_path / "one.png"))
    assert two_panels.width == one_panel.width and two_panels.height > one_panel.height


def test_timeline_errors_name_the_source_or_attribute(tmp_path):
    summarizer = VideoSummarizer()
    summarizer.add(row(0, 1, "happy"))
    with pytest.raises(MienError, match="other.mp4: no tracked face"):
        summarizer.plot_timeline("other.mp4", tmp_path / "t.png")
    with pytest.raises(MienError, match="'smile' was not analysed in clip.mp4; choose one of "
                                        "expression"):
        summarizer.plot_timeline("clip.mp4", tmp_path / "t.png", attribute="smile")


def test_summary_of_a_real_video_through_the_pipeline(face_video, classifiers, tmp_path):
    (video,) = summarize(Pipeline("yunet", classifiers).run([face_video], every=4))
    assert video.frames == 9 and video.face_frames == 18 and len(video.tracks) == 2
    assert sum(video.shares["side"].values()) == pytest.approx(1.0)
