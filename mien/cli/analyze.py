"""`mien analyze INPUT...`: faces and their attributes in photos, folders, videos, a camera."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mien.errors import MienError


def analyze_command(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="Image or video files, folders (searched recursively) or - for an image on stdin.",
        show_default=False)] = None,
    attributes: Annotated[str | None, typer.Option(
        help="Comma list: bundled names (expression,smile,glasses) or name=MODEL with MODEL a "
             "run folder, .onnx or .safetensors [default: every installed bundled model].")] = None,
    detector: Annotated[str | None, typer.Option(
        help="Face detector: haar, yunet or mtcnn [default: yunet when its file is present, "
             "else haar].")] = None,
    min_face: Annotated[int, typer.Option(min=1, help="Smallest face side, pixels.")] = 20,
    threshold: Annotated[float | None, typer.Option(
        help="Detector score threshold [default: the detector's own].")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for faces.<format>, tracks.json and annotated copies "
             "[default: JSON lines on stdout].")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or parquet.")] = "jsonl",
    annotate: Annotated[bool, typer.Option(
        help="Write annotated images/videos under OUT/annotated.")] = False,
    every: Annotated[int, typer.Option(min=1, help="Video: keep every N-th frame.")] = 1,
    fps: Annotated[float | None, typer.Option(
        help="Video: keep about F frames per second (overrides --every).")] = None,
    camera: Annotated[int | None, typer.Option(
        help="Read camera I (shown in a window when a display exists).")] = None,
    glob: Annotated[str | None, typer.Option(
        help="Folders: only files whose name matches, e.g. '*.jpg'.")] = None,
    smooth: Annotated[float | None, typer.Option(
        help="Video: EMA weight of the newest frame per tracked face, in (0, 1].")] = None,
    landmarks: Annotated[str, typer.Option(
        help="Landmarks that align the crops: detector, or mtcnn (follows head tilt; needs "
             "MTCNN's weights).")] = "detector",
    batch_size: Annotated[int, typer.Option(min=1, help="Faces per classifier call.")] = 64,
    max_frames: Annotated[int | None, typer.Option(
        help="Stop each video or camera after this many kept frames.")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        help="Label an answer 'uncertain' when its top probability is below P (its "
             "probabilities are still written).", metavar="P")] = None,
) -> None:
    """Find every face and tell its attributes, one row per face (or per input without one)."""
    import sys

    from mien.inference.pipeline import Pipeline
    from mien.inference.sources import camera_source
    from mien.inference.writers import FORMATS, RowWriter, output_path

    sources = list(inputs or [])
    if camera is not None:
        sources.append(camera_source(camera))
    if not sources:
        raise MienError("nothing to analyze: give image/video files, folders, - or --camera I")
    if fmt not in FORMATS:
        raise MienError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if annotate and out is None:
        raise MienError("--annotate writes files: add --out DIR")
    if out is None and fmt == "parquet":
        raise MienError("parquet cannot go to standard output: add --out DIR")
    if smooth is not None and not 0 < smooth <= 1:
        raise MienError(f"--smooth {smooth}: use a weight in (0, 1]")

    specs = None if attributes is None else [a for a in attributes.split(",") if a.strip()]
    pipeline = Pipeline(
        detector, specs, batch_size=batch_size, smoothing=smooth,
        prefetch=1 if camera is not None else 8,  # a live camera must not lag behind a queue
        landmarks=landmarks, min_confidence=min_confidence,
        detector_options={"min_face": min_face, "score_threshold": threshold},
    )
    if specs is None and not pipeline.attributes:
        print("note: no bundled classifiers are installed; writing detections only "
              "(use --attributes name=MODEL)", file=sys.stderr)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        writer = RowWriter(output_path(out, fmt), fmt, pipeline.labels)  # type: ignore[arg-type]
    else:
        writer = RowWriter(sys.stdout, fmt, pipeline.labels)  # type: ignore[arg-type]
    live = camera is not None and _window_available()
    counts = _run(pipeline, sources, writer, out, annotate, live,
                  dict(glob=glob, every=every, fps=fps, max_frames=max_frames))
    if out is not None:
        print(f"{counts['frames']} frames, {counts['faces']} faces, {counts['no_face']} without "
              f"a face, {counts['errors']} unreadable -> {output_path(out, fmt)}", file=sys.stderr)
    if counts["errors"]:
        # Every other input was still analysed and written; the exit code tells scripts.
        print(f"error: {counts['errors']} input(s) could not be read; see the rows with "
              "status 'error'", file=sys.stderr)
        raise typer.Exit(1)


def _run(pipeline, sources, writer, out, annotate, live, source_options) -> dict:
    import json
    import time
    from dataclasses import asdict

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mien.inference.draw import AnnotatedOutput, draw_faces
    from mien.inference.tracking import TrackSummarizer

    counts = dict(frames=0, faces=0, no_face=0, errors=0)
    sources_seen: set[str] = set()
    summarizer = TrackSummarizer()
    annotated = AnnotatedOutput(out / "annotated") if annotate else None
    err = Console(stderr=True)
    start = time.perf_counter()
    columns = (TextColumn("[bold]analyzing"), BarColumn(), TextColumn("{task.fields[stats]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("analyze", total=None, stats="")
        try:
            for frame, rows in pipeline.run_frames(sources, **source_options):
                sources_seen.add(frame.source)
                counts["frames"] += 1
                faces = [r.face for r in rows if r.face is not None]
                counts["faces"] += len(faces)
                counts["no_face"] += sum(r.status == "no_face" for r in rows)
                counts["errors"] += sum(r.status == "error" for r in rows)
                for row in rows:
                    writer.write(row)
                    if row.face is not None:
                        summarizer.add(row.source, row.frame, row.timestamp, row.face)
                if annotated is not None:
                    annotated.add(frame, faces)
                if live and frame.image is not None and not _show(draw_faces(frame.image, faces)):
                    break
                if out is None:
                    writer.flush()
                rate = counts["faces"] / max(time.perf_counter() - start, 1e-9)
                bar.update(task, stats=f"{len(sources_seen)} files · {counts['frames']} frames · "
                                       f"{counts['faces']} faces · {rate:.1f} faces/s")
        finally:
            writer.close()
            if annotated is not None:
                annotated.close()
            if live:
                _close_window()
    tracks = summarizer.summaries()
    if out is not None and tracks:
        (out / "tracks.json").write_text(json.dumps([asdict(t) for t in tracks], indent=1))
    return counts


WINDOW = "mien analyze (q to quit)"


def _window_available() -> bool:
    """A window needs a display and an OpenCV build with GUI support (not the headless wheel)."""
    import os
    import sys

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        import cv2

        cv2.namedWindow(WINDOW)
        return True
    except Exception:  # headless OpenCV raises cv2.error: "The function is not implemented"
        return False


def _show(rgb) -> bool:
    import cv2

    cv2.imshow(WINDOW, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)


def _close_window() -> None:
    import cv2

    cv2.destroyAllWindows()


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_command)
