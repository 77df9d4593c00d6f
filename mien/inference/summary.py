"""A video in numbers and one picture: for the whole video and for each face track, the share of
time in each label of an attribute (expression, say), and a PNG timeline of its probabilities."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mien.errors import MienError
from mien.inference.pipeline import Row
from mien.inference.tracking import TrackSummarizer, TrackSummary

MAX_PANELS = 6  # timeline panels, longest tracks first: more would be too thin to read


@dataclass(frozen=True, slots=True)
class VideoSummary:
    source: str
    frames: int  # kept frames, with or without a face
    face_frames: int  # faces seen: a frame with two faces counts twice
    shares: dict[str, dict[str, float]]  # attribute -> label -> share of face_frames
    tracks: tuple[TrackSummary, ...]


class VideoSummarizer:
    """Collects the rows of videos and camera streams (the rows with a track id), then gives
    each one's `VideoSummary` and draws its timeline. Rows of still pictures are ignored."""

    def __init__(self):
        self._tracks = TrackSummarizer()
        self._frames: dict[str, set[int]] = {}
        self._labels: dict[str, dict[str, Counter]] = {}
        # (source, track id) -> [(frame, seconds, {attribute: {label: probability}})]
        self._timeline: dict[tuple[str, int], list[tuple[int, float | None, dict]]] = {}

    def add(self, row: Row) -> None:
        self._frames.setdefault(row.source, set()).add(row.frame)
        face = row.face
        if face is None or face.track_id is None:
            return
        self._tracks.add(row.source, row.frame, row.timestamp, face)
        counts = self._labels.setdefault(row.source, {})
        for name, pred in face.attributes.items():
            counts.setdefault(name, Counter())[pred.label] += 1
        self._timeline.setdefault((row.source, face.track_id), []).append(
            (row.frame, row.timestamp,
             {name: pred.probabilities for name, pred in face.attributes.items()}))

    def tracks(self) -> list[TrackSummary]:
        return self._tracks.summaries()

    def summaries(self) -> list[VideoSummary]:
        tracks = self.tracks()
        out = []
        for source, labels in self._labels.items():
            seen = sum(next(iter(labels.values()), Counter()).values())
            shares = {name: {label: n / seen for label, n in counts.most_common()}
                      for name, counts in labels.items()}
            out.append(VideoSummary(source, len(self._frames[source]), seen, shares,
                                    tuple(t for t in tracks if t.source == source)))
        return out

    def plot_timeline(self, source: str, path: str | os.PathLike,
                      attribute: str | None = None) -> Path:
        """A PNG of `attribute`'s class probabilities over time, one panel per track (the
        `MAX_PANELS` longest). attribute None: `expression` when analysed, else the first."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names = list(self._labels.get(source, {}))
        if not names:
            raise MienError(f"{source}: no tracked face to draw a timeline of; is it a video?")
        if attribute is None:
            attribute = "expression" if "expression" in names else names[0]
        if attribute not in names:
            raise MienError(f"attribute {attribute!r} was not analysed in {source}; "
                            f"choose one of {', '.join(names)}")
        series = sorted(((t, samples) for (s, t), samples in self._timeline.items()
                         if s == source), key=lambda item: -len(item[1]))
        shown = sorted(series[:MAX_PANELS])
        figure = Figure(figsize=(10, 1.2 + 2.0 * len(shown)), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
        timed = all(when is not None for _, s in shown for _, when, _ in s)
        for ax, (track_id, samples) in zip(axes, shown, strict=True):
            times = [when if timed else frame for frame, when, _ in samples]
            for label in samples[0][2][attribute]:
                ax.plot(times, [probs[attribute][label] for _, _, probs in samples], label=label,
                        linewidth=1.2)
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"face #{track_id}")
            ax.grid(alpha=0.3)
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        axes[-1].set_xlabel("seconds" if timed else "frame")
        hidden = len(series) - len(shown)
        hidden = f" ({hidden} shorter tracks not shown)" if hidden else ""
        figure.suptitle(f"{Path(source).name}: {attribute} probability per face{hidden}")
        path = Path(path)
        figure.savefig(path, dpi=100)
        return path


def summarize(rows: Iterable[Row]) -> list[VideoSummary]:
    """The `VideoSummary` of each video among `rows` (e.g. `Pipeline.run(["clip.mp4"])`)."""
    summarizer = VideoSummarizer()
    for row in rows:
        summarizer.add(row)
    return summarizer.summaries()
