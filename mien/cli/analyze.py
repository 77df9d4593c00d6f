"""`mien analyze INPUT...`: faces and their attributes in photos, folders, videos, a camera."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mien.detection.base import DEFAULT_DETECTOR, DEFAULT_OPTIONS, MIN_SCORE_THRESHOLD
from mien.errors import MienError

DETECTOR_HELP = (f"Face detector: haar, yunet or mtcnn [default: {DEFAULT_DETECTOR}, bundled]. "
                 "One that cannot run here is replaced (a warning says so); the results name "
                 "the detector that ran.")
FINE_SCALE_HELP = ("YuNet: photos larger than 640 px are also searched at F times their size, "
                   "in tiles, for faces down to about 6 px (seconds for a 12 MP photo); 0 turns "
                   "that off [default: 3].")
THRESHOLD_HELP = (f"Detector score threshold, in [{MIN_SCORE_THRESHOLD}, 1] "
                  "[default: the detector's own].")


def analyze_command(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="Image or video files, folders (searched recursively) or - for an image on stdin.",
        show_default=False)] = None,
    attributes: Annotated[str | None, typer.Option(
        help="Comma list: bundled names (expression,smile,glasses) or name=MODEL with MODEL a "
             "run folder, .onnx or .safetensors [default: every installed bundled model].")] = None,
    detector: Annotated[str | None, typer.Option(
        help=DETECTOR_HELP)] = None,
    min_face: Annotated[int, typer.Option(
        min=1, help="Smallest face side, pixels.")] = DEFAULT_OPTIONS.min_face,
    threshold: Annotated[float | None, typer.Option(
        help=THRESHOLD_HELP)] = None,
    max_faces: Annotated[int, typer.Option(
        min=1, help="Most faces per picture, best scores first.")] = DEFAULT_OPTIONS.max_faces,
    fine_scale: Annotated[float | None, typer.Option(
        help=FINE_SCALE_HELP, metavar="F")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="CPU cores: 1 decodes, detects and classifies in turn on one thread; N "
                    "shares photos with N-1 worker processes and overlaps a video's stages on "
                    "threads [default: the machine's cores].")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for faces.<format>, tracks.json and annotated copies "
             "[default: JSON lines on stdout].")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="jsonl, csv or parquet [default: jsonl; parquet shards with --engine "
                         "ray].")] = None,
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
        help="Landmarks that align the crops: detector, or mtcnn (MTCNN's O-Net on the "
             "detector's boxes: follows head tilt).")] = "detector",
    batch_size: Annotated[int, typer.Option(min=1, help="Faces per classifier call.")] = 64,
    max_frames: Annotated[int | None, typer.Option(
        help="Stop each video or camera after this many kept frames.")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        help="Label an answer 'uncertain' when its top probability is below P (its "
             "probabilities are still written).", metavar="P")] = None,
    save_crops: Annotated[Path | None, typer.Option(
        "--save-crops", metavar="DIR",
        help="Also save every face crop here as SOURCE_FACE.png (videos: SOURCE_fFRAME_FACE.png), "
             "cut as the first attribute's model reads faces.")] = None,
    summary: Annotated[bool, typer.Option(
        help="Videos: write OUT/summary.json (share of time in each label, per video and per "
             "face track) and OUT/SOURCE_timeline.png (expression probabilities over time).")
    ] = False,
    engine: Annotated[str, typer.Option(
        help="local (this process) or ray: Ray Data stages on a local Ray or a cluster, rows as "
             "Parquet shards in OUT/faces/, resumable (needs pip install 'mien[ray]').")
    ] = "local",
    address: Annotated[str | None, typer.Option(
        help="Ray: the cluster to use (HOST:PORT, or auto for the one on this machine) "
             "[default: start Ray in this process].")] = None,
    num_cpus: Annotated[int | None, typer.Option(
        min=1, help="Ray: CPUs of the Ray started here [default: all].")] = None,
    detect_actors: Annotated[int | None, typer.Option(
        min=1, help="Ray: detector actors [default: half the cluster's CPUs].")] = None,
    classify_actors: Annotated[int | None, typer.Option(
        min=1, help="Ray: classifier actors [default: the other CPUs].")] = None,
    cpus_per_actor: Annotated[float, typer.Option(
        min=0.01, help="Ray: CPUs reserved per actor.")] = 1.0,
    gpus_per_actor: Annotated[float, typer.Option(
        min=0.0, help="Ray: GPUs reserved per classifier actor.")] = 0.0,
    shard_frames: Annotated[int, typer.Option(
        min=1, help="Ray: photos per output shard (each video is a shard of its own).")] = 1000,
    range_frames: Annotated[int, typer.Option(
        min=1, help="Ray: kept video frames per task; a longer video is split.")] = 256,
    path_column: Annotated[str, typer.Option(
        help="Ray: the column of file paths or URIs in a .parquet input.")] = "path",
    memory_mb: Annotated[int | None, typer.Option(
        min=1, help="Ray: object-store MB for blocks in flight [default: Ray's].")] = None,
) -> None:
    """Find every face and tell its attributes, one row per face (or per input without one)."""
    import sys

    from mien.inference.pipeline import Pipeline
    from mien.inference.sources import camera_source
    from mien.inference.writers import FORMATS

    if engine == "ray":
        _check_ray_options(inputs, out, fmt, annotate, save_crops, summary, camera, threads)
    elif engine != "local":
        raise MienError(f"--engine {engine!r}: use local or ray")
    fmt = fmt or ("parquet" if engine == "ray" else "jsonl")
    sources = list(inputs or [])
    if camera is not None:
        sources.append(camera_source(camera))
    if not sources:
        raise MienError("nothing to analyze: give image/video files, folders, - or --camera I")
    if fmt not in FORMATS:
        raise MienError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if annotate and out is None:
        raise MienError("--annotate writes files: add --out DIR")
    if summary and out is None:
        raise MienError("--summary writes files: add --out DIR")
    if out is None and fmt == "parquet":
        raise MienError("parquet cannot go to standard output: add --out DIR")
    if smooth is not None and not 0 < smooth <= 1:
        raise MienError(f"--smooth {smooth}: use a weight in (0, 1]")

    detector_options = {"min_face": min_face, "score_threshold": threshold,
                        "max_faces": max_faces}
    if fine_scale is not None:
        if (detector or DEFAULT_DETECTOR) != "yunet":
            raise MienError(f"--fine-scale is YuNet's; detector {detector!r} has no fine view")
        if fine_scale < 0:
            raise MienError(f"--fine-scale {fine_scale}: use a positive scale, or 0 for none")
        detector_options["fine_scale"] = fine_scale or None

    if threads is not None:
        import cv2

        cv2.setNumThreads(threads)  # OpenCV's own pool (decoding, resizing)

    specs = None if attributes is None else [a for a in attributes.split(",") if a.strip()]
    pipeline = Pipeline(
        detector, specs, batch_size=batch_size, smoothing=smooth,
        prefetch=1 if camera is not None else 8,  # a live camera must not lag behind a queue
        landmarks=landmarks, min_confidence=min_confidence, threads=threads,
        detector_options=detector_options,
    )
    if specs is None and not pipeline.attributes:
        print("note: no bundled classifiers are installed; writing detections only "
              "(use --attributes name=MODEL)", file=sys.stderr)
    source_options = dict(glob=glob, every=every, fps=fps, max_frames=max_frames)
    if engine == "ray":
        from mien.inference.ray_engine import RayOptions

        counts = _run_ray(pipeline, sources, out, specs, source_options, path_column, dict(
            detector=detector, landmarks=landmarks, detector_options=detector_options),
            RayOptions(address, num_cpus, detect_actors, classify_actors, cpus_per_actor,
                       gpus_per_actor, shard_frames, range_frames, memory_mb))
    else:
        counts = _run_local(pipeline, sources, out, fmt, annotate, camera, save_crops, summary,
                            source_options)
    if counts["errors"]:
        # Every other input was still analysed and written; the exit code tells scripts.
        print(f"error: {counts['errors']} input(s) could not be read; see the rows with "
              "status 'error'", file=sys.stderr)
        raise typer.Exit(1)


def _check_ray_options(inputs, out, fmt, annotate, save_crops, summary, camera,
                       threads) -> None:
    if out is None:
        raise MienError("--engine ray writes Parquet shards: add --out DIR")
    if fmt not in (None, "parquet"):
        raise MienError(f"--engine ray writes Parquet shards, not {fmt}: drop --format")
    for flag, used in (("--annotate", annotate), ("--save-crops", save_crops),
                       ("--summary", summary), ("--camera", camera is not None)):
        if used:
            raise MienError(f"{flag} needs the local engine: drop it or --engine ray")
    if threads is not None:
        raise MienError("--threads is the local engine's: with --engine ray, size the actor "
                        "pools (--detect-actors, --classify-actors, --cpus-per-actor)")
    if not inputs:
        raise MienError("nothing to analyze: give files, folders, URIs or a .parquet table")


def _run_ray(pipeline, sources, out, specs, source_options, path_column, workers,
             options) -> dict:
    """Shards of rows in OUT/faces/ with Ray; shards already there are skipped."""
    import sys

    from mien.inference.ray_engine import plan_shards, run_shards

    # The workers load the driver's models: bundled names, or absolute paths to its files.
    specs = list(pipeline.attributes) if specs is None else [_absolute(s) for s in specs]
    settings = dict(specs=specs, min_confidence=pipeline.min_confidence,
                    smoothing=pipeline.smoothing, min_judged_face=pipeline.min_judged_face,
                    **workers)
    plan = plan_shards(sources, **source_options, path_column=path_column, options=options,
                       settings=settings)
    folder = out / "faces"
    every, fps, max_frames = (source_options[k] for k in ("every", "fps", "max_frames"))
    with _bar(sum(plan.frames)) as advance:
        try:
            counts = run_shards(plan, folder, pipeline, specs, every=every, fps=fps,
                                max_frames=max_frames, options=options, progress=advance,
                                **workers)
        except KeyboardInterrupt:
            done = sum(1 for _ in folder.glob("part-*.parquet"))
            print(f"interrupted: {done} of {plan.shards} shards are in {folder}; run the same "
                  "command again to do the rest", file=sys.stderr)
            raise
    print(f"{counts.frames} frames, {counts.faces} faces, {counts.no_face} without a face -> "
          f"{counts.shards_written} shards written, {counts.shards_skipped} already there "
          f"({plan.shards} in all) in {folder}", file=sys.stderr)
    return {"errors": counts.errors}


def _absolute(spec: str) -> str:
    """`name=model` with `model` an absolute path when it names a file or folder here."""
    name, sep, model = spec.partition("=")
    if sep and Path(model.strip()).exists():
        return f"{name}={Path(model.strip()).resolve()}"
    return spec


@contextmanager
def _bar(total: int):
    """`advance(frames)` for the progress bar of a Ray run."""
    from rich.console import Console

    err = Console(stderr=True)
    with _progress(err) as progress:
        task = progress.add_task("analyze", total=total, stats="")
        yield lambda n: progress.advance(task, n)


def _progress(err):
    """The bar on a terminal: frames done of the total, a `stats` field, the time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]analyzing"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err, transient=True,
                    disable=not err.is_terminal)


def _run_local(pipeline, sources, out, fmt, annotate, camera, save_crops, summary,
               source_options) -> dict:
    import sys

    from mien.inference.writers import RowWriter, output_path

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        writer = RowWriter(output_path(out, fmt), fmt, pipeline.labels)  # type: ignore[arg-type]
    else:
        writer = RowWriter(sys.stdout, fmt, pipeline.labels)  # type: ignore[arg-type]
    live = camera is not None and _window_available()
    counts = _run(pipeline, sources, writer, out, annotate, live, save_crops, summary,
                  source_options)
    if out is not None:
        print(f"{counts['frames']} frames, {counts['faces']} faces, {counts['no_face']} without "
              f"a face, {counts['errors']} unreadable -> {output_path(out, fmt)}", file=sys.stderr)
    if save_crops is not None:
        print(f"{counts['crops']} face crops -> {save_crops}", file=sys.stderr)
    return counts


def _run(pipeline, sources, writer, out, annotate, live, save_crops, summary,
         source_options) -> dict:
    import json
    import time
    from dataclasses import asdict

    from rich.console import Console

    from mien.inference.crops import CropWriter
    from mien.inference.draw import AnnotatedOutput, draw_faces
    from mien.inference.sources import expected_frames
    from mien.inference.summary import VideoSummarizer

    counts = dict(frames=0, faces=0, no_face=0, errors=0)
    sources_seen: set[str] = set()
    summarizer = VideoSummarizer()
    annotated = AnnotatedOutput(out / "annotated") if annotate else None
    crops = CropWriter(save_crops, pipeline) if save_crops is not None else None
    err = Console(stderr=True)
    start = time.perf_counter()
    with _progress(err) as bar:
        # Counting opens every video once more, so only for a bar someone sees.
        total = expected_frames(sources, **source_options) if err.is_terminal else None
        task = bar.add_task("analyze", total=total, stats="")
        try:
            images = annotated is not None or crops is not None or live
            for frame, rows in pipeline.run_frames(sources, images=images, **source_options):
                sources_seen.add(frame.source)
                counts["frames"] += 1
                faces = [r.face for r in rows if r.face is not None]
                counts["faces"] += len(faces)
                counts["no_face"] += sum(r.status == "no_face" for r in rows)
                counts["errors"] += sum(r.status == "error" for r in rows)
                for row in rows:
                    writer.write(row)
                    summarizer.add(row)
                if annotated is not None:
                    annotated.add(frame, faces)
                if crops is not None:
                    crops.add(frame, faces)
                if live and frame.image is not None and not _show(draw_faces(frame.image, faces)):
                    break
                if out is None:
                    writer.flush()
                rate = counts["faces"] / max(time.perf_counter() - start, 1e-9)
                bar.update(task, completed=counts["frames"],
                           stats=f"{len(sources_seen)} files · {counts['faces']} faces · "
                                 f"{rate:.1f} faces/s")
        except KeyboardInterrupt:
            kept = f" are in {out}" if out is not None else " were printed"
            err.print(f"interrupted after {counts['frames']} frames: their rows{kept}; run "
                      "the command again to analyse everything", markup=False, highlight=False,
                      soft_wrap=True)
            raise
        finally:
            writer.close()
            if annotated is not None:
                annotated.close()
            if live:
                _close_window()
    if crops is not None:
        counts["crops"] = crops.written
    tracks = summarizer.tracks()
    if out is not None and tracks:
        (out / "tracks.json").write_text(json.dumps([asdict(t) for t in tracks], indent=1))
    if summary:
        _write_summary(summarizer, out)
    return counts


def _write_summary(summarizer, out: Path) -> None:
    import json
    import sys
    from dataclasses import asdict

    from mien.inference.writers import SourceNames

    videos = summarizer.summaries()
    (out / "summary.json").write_text(json.dumps([asdict(v) for v in videos], indent=1))
    stems = SourceNames()
    for video in videos:
        summarizer.plot_timeline(video.source, out / f"{stems(video.source)}_timeline.png")
    print(f"{len(videos)} video summaries -> {out / 'summary.json'}"
          + (", *_timeline.png" if videos else " (no tracked face in a video)"), file=sys.stderr)


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
