"""`mien analyze --engine ray`: the analysis pipeline as Ray Data stages, for more photos or
video than one process gets through, on one machine or a Ray cluster (`pip install 'mien[ray]'`).

Plan (driver, `plan_shards`): inputs are expanded as the local engine expands them (folders,
fsspec URIs) or read from a Parquet table's path column; videos are cut into frame ranges
(`video_ranges`) so one long video spreads over workers; the work is grouped into shards, each
written once as OUT/part-NNNNN.parquet.
Stages (workers): decode (`source_frames`, `video_frames`) -> detect and crop (an actor pool,
one detector load per actor) -> classify (an actor pool, one load of the classifiers per actor,
batches of faces). Ray Data's streaming executor keeps the objects in flight within its memory
budget, so a slow stage holds the others back instead of filling memory.
Rows (driver): results come back in input order, small (faces without pixels); track ids,
smoothing and the rows themselves come from the local pipeline's `Pipeline.frame_rows` and
`RowWriter`, so the shards hold the local engine's rows. A shard is written when its last row
has arrived (to a temporary name, then renamed): after a crash or Ctrl-C the same command skips
the shards already on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.data.preprocess import Framing
from mien.errors import MienError, require
from mien.inference.pipeline import ANALYSIS_THREADS, Pipeline, Row, classify, load_attributes
from mien.inference.sources import (
    STDIN,
    Frame,
    expand_inputs,
    expected_frames,
    is_uri,
    is_video_path,
    source_frames,
    video_frames,
    video_ranges,
)
from mien.inference.writers import RowWriter
from mien.types import Face

PLAN_FILE = "_plan.json"
NO_PIXELS = np.zeros((0, 0, 3), np.uint8)  # the image of an error frame, the crop of no face
FRAMES_PER_DECODE_BATCH = 16  # decoded frames handed on together: ~100 MB at 1080p
# Photos per decoding task (a video range is a task alone): fewer, larger Ray tasks; against 8
# the CPU per photo moved by less than the noise of a shared machine.
PHOTOS_PER_TASK = 32
BLOCK_BYTES = (64 * 2**10, 4 * 2**20)  # Ray Data's smallest and largest block for this run
# Columns that travel from decoding to the driver (the pixels and crops stay on the workers).
FRAME_COLUMNS = ("seq", "shard", "source", "frame", "timestamp", "stream", "error")


@dataclass(frozen=True, slots=True)
class RayOptions:
    """Where and how wide the stages run. Pool sizes None: half the cluster's CPUs detect
    (decoding with it), the rest classify."""

    address: str | None = None  # an existing cluster (HOST:PORT or "auto"); None: start one
    num_cpus: int | None = None  # CPUs of the Ray instance started here (None: all)
    detect_actors: int | None = None
    classify_actors: int | None = None
    cpus_per_actor: float = 1.0  # each network runs on one ONNX Runtime thread
    gpus_per_actor: float = 0.0  # reserved per classify actor
    shard_frames: int = 1000  # photos or video frames per output shard (a video is one shard)
    range_frames: int = 256  # kept video frames per decode task
    memory_mb: int | None = None  # Ray Data's object-store budget for blocks in flight


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A photo, or a range of a video's frames ([start, stop), stop -1: to the end)."""

    seq: int
    shard: int
    source: str
    start: int = 0
    stop: int = -1


@dataclass(frozen=True, slots=True)
class Plan:
    """The shards of a run; the same inputs and options give the same plan (its `digest`)."""

    items: tuple[WorkItem, ...]
    frames: tuple[int, ...]  # expected frames per shard (a progress bar's total)
    digest: str

    @property
    def shards(self) -> int:
        return len(self.frames)


@dataclass
class RayCounts:
    frames: int = 0
    faces: int = 0
    no_face: int = 0
    errors: int = 0  # rows with status error, skipped shards included
    shards_written: int = 0
    shards_skipped: int = 0


def shard_path(out: Path, shard: int) -> Path:
    return out / f"part-{shard:05d}.parquet"


def _partial_path(out: Path, shard: int) -> Path:
    """Where a shard is written before it is complete (Parquet readers skip dot files)."""
    return out / f".part-{shard:05d}.parquet.tmp"


def table_paths(table: str, column: str) -> list[str]:
    """The paths or URIs in a Parquet table's `column`, in row order."""
    pq = require("pyarrow.parquet", "parquet")
    try:
        if is_uri(table):
            with require("fsspec", "ray").open(table, "rb") as fh:
                data = pq.read_table(fh)
        else:
            data = pq.read_table(table)
    except FileNotFoundError as exc:
        raise MienError(f"{table}: file not found; check the path") from exc
    except OSError as exc:
        raise MienError(f"{table}: not a readable Parquet table ({exc}); check the file") from exc
    if column not in data.column_names:
        raise MienError(f"{table}: no column {column!r} (it has {', '.join(data.column_names)}); "
                        "pass --path-column NAME")
    values = data.column(column).to_pylist()
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise MienError(f"{table}: row {i} of column {column!r} is {value!r}, not a path; "
                            "fill or drop it")
    return values


def plan_shards(inputs: Sequence[str], *, glob: str | None = None, every: int = 1,
                fps: float | None = None, max_frames: int | None = None,
                path_column: str = "path", options: RayOptions = RayOptions(),
                settings: dict | None = None) -> Plan:
    """Expand `inputs` (files, folders, URIs; a `.parquet` file is a table of files or file
    URIs in `path_column`) into shards: photos gathered up to `options.shard_frames`, each
    video a shard of its own, cut into ranges of `options.range_frames` kept frames.
    `settings`: whatever else changes the rows (models, detector, thresholds), folded into the
    digest."""
    if options.shard_frames < 1 or options.range_frames < 1:
        raise MienError("--shard-frames and --range-frames: use 1 or more")
    sources: list[str] = []
    for given in inputs:
        if given == STDIN or given.startswith("camera:"):
            raise MienError(f"{given}: the ray engine reads files and URIs; analyze stdin or a "
                            "camera with the local engine (--engine local)")
        if given.lower().endswith(".parquet"):  # its rows name files: no listing per row
            sources.extend(table_paths(given, path_column))
        else:
            sources.extend(expand_inputs([given], glob))
    items: list[WorkItem] = []
    frames: list[int] = []
    photos = 0  # photos in the shard being filled
    for source in sources:
        if is_video_path(source):
            shard = len(frames)
            ranges = video_ranges(source, every=every, fps=fps, max_frames=max_frames,
                                  frames=options.range_frames)
            for start, stop in ranges:
                items.append(WorkItem(len(items), shard, source, start,
                                      -1 if stop is None else stop))
            frames.append(expected_frames([source], every=every, fps=fps, max_frames=max_frames)
                          or 1)
            photos = 0
            continue
        if photos == 0 or photos >= options.shard_frames:
            frames.append(0)
            photos = 0
        items.append(WorkItem(len(items), len(frames) - 1, source))
        frames[-1] += 1
        photos += 1
    if not items:
        raise MienError("nothing to analyze: the inputs hold no image or video files")
    record = {"items": [dataclasses.astuple(i) for i in items],
              "source_options": {"every": every, "fps": fps, "max_frames": max_frames},
              "settings": settings or {}}
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
    return Plan(tuple(items), tuple(frames), digest)


def check_out(out: Path, plan: Plan) -> list[int]:
    """The shards still to write in `out`, after checking that its shards are of this plan
    (a folder of another run's shards is refused, not mixed in)."""
    out.mkdir(parents=True, exist_ok=True)
    record = out / PLAN_FILE
    if record.exists():
        try:
            digest = json.loads(record.read_text())["digest"]
        except (ValueError, KeyError) as exc:
            raise MienError(f"{record}: unreadable; delete it and the shards beside it") from exc
        if digest != plan.digest:
            raise MienError(f"{out} holds the shards of another run (other inputs or options); "
                            "give another --out, or delete the folder to start over")
    elif any(out.glob("part-*.parquet")):
        raise MienError(f"{out} holds shards without {PLAN_FILE}; give another --out")
    else:
        record.write_text(json.dumps({"digest": plan.digest, "shards": plan.shards}) + "\n")
    return [s for s in range(plan.shards) if not shard_path(out, s).exists()]


def _tasks(items: Iterable[WorkItem]) -> list[dict]:
    """Work items as Ray Data rows, one block each: up to PHOTOS_PER_TASK photos, or one range
    of a video, so that a video's ranges go to several workers."""
    tasks: list[dict] = []
    photos: list[WorkItem] = []

    def add(group: list[WorkItem]) -> None:
        if group:
            tasks.append({"items": json.dumps([dataclasses.astuple(i) for i in group])})

    for item in items:
        if is_video_path(item.source):
            add(photos)
            photos = []
            add([item])
            continue
        photos.append(item)
        if len(photos) == PHOTOS_PER_TASK:
            add(photos)
            photos = []
    add(photos)
    return tasks


def _decode(batch: dict, *, every: int, fps: float | None, max_frames: int | None
            ) -> Iterator[dict]:
    """Tasks (`_tasks`) -> frames, handed on a few at a time (a long range is not held whole)."""
    out = _columns(FRAME_COLUMNS + ("image",))
    for seq, shard, source, start, stop in (item for task in batch["items"]
                                            for item in json.loads(task)):
        if start == 0 and stop < 0:
            frames = source_frames(str(source), every=every, fps=fps, max_frames=max_frames)
        else:
            frames = video_frames(str(source), every=every, fps=fps, max_frames=max_frames,
                                  start=int(start), stop=None if stop < 0 else int(stop))
        for frame in frames:
            for key, value in zip(FRAME_COLUMNS + ("image",), (
                    seq, shard, frame.source, frame.index,
                    math.nan if frame.timestamp is None else frame.timestamp, frame.stream,
                    frame.error or "", NO_PIXELS if frame.image is None else frame.image),
                    strict=True):
                out[key].append(value)
            if len(out["seq"]) >= FRAMES_PER_DECODE_BATCH:
                yield out
                out = _columns(FRAME_COLUMNS + ("image",))
    if out["seq"]:
        yield out


def _columns(names: Iterable[str]) -> dict[str, list]:
    return {name: [] for name in names}


# Every column keeps one type in every block, or Ray cannot put blocks together ("Failed to
# unify schemas": a block whose `error` held only None had become a float column): no message
# is "", no timestamp NaN, no face b"" and a face its pickle.


def _text(value) -> str | None:
    return str(value) or None


def _face(data: bytes) -> Face | None:
    return pickle.loads(data) if data else None  # written by this module's actors only


class Detect:
    """Ray actor: frames -> one row per face (or one per frame without a face), with the face
    cut once per framing the classifiers need (faces marked `small` are not); the pixels of the
    frame stop here."""

    def __init__(self, detector, detector_options: dict, landmarks: str | None,
                 framings: Sequence[Framing], min_judged_face: int):
        self.pipeline = Pipeline(detector, {}, detector_options=detector_options,
                                 landmarks=landmarks, min_judged_face=min_judged_face)
        self.framings = list(framings)

    def __call__(self, batch: dict) -> dict:
        crops = [f"crop{k}" for k in range(len(self.framings))]
        out = _columns(FRAME_COLUMNS + ("detector", "face", *crops))
        for i in range(len(batch["seq"])):
            image, readable = batch["image"][i], _text(batch["error"][i]) is None
            faces = self.pipeline.detect(image) if readable else []
            judged = [f for f in faces if not f.small]
            cut = [iter(self.pipeline.crop(image, judged, fr)) for fr in self.framings]
            for j in range(max(1, len(faces))):
                for key in FRAME_COLUMNS:
                    out[key].append(batch[key][i])
                out["detector"].append(self.pipeline.detector.name if readable else "")
                out["face"].append(pickle.dumps(faces[j]) if faces else b"")
                for k, name in enumerate(crops):
                    out[name].append(next(cut[k]) if faces and not faces[j].small
                                     else NO_PIXELS)
        return out


class Classify:
    """Ray actor: batches of faces -> the same faces with every attribute's prediction."""

    def __init__(self, specs: list[str], framings: dict[str, Framing],
                 distinct: Sequence[Framing], min_confidence: float | None):
        self.attributes = load_attributes(specs, threads=ANALYSIS_THREADS)
        self.framings = framings
        self.column = {fr: f"crop{k}" for k, fr in enumerate(distinct)}
        self.min_confidence = min_confidence

    def __call__(self, batch: dict) -> dict:
        faces = [_face(data) for data in batch["face"]]
        found = [i for i, f in enumerate(faces) if f is not None and not f.small]
        crops = {fr: [batch[col][i] for i in found] for fr, col in self.column.items()}
        if self.attributes:
            predictions = classify(self.attributes, self.framings, crops, self.min_confidence)
            for i, attrs in zip(found, predictions, strict=True):
                faces[i] = dataclasses.replace(faces[i], attributes=attrs)
        out = {key: batch[key] for key in FRAME_COLUMNS + ("detector",)}
        out["face"] = [b"" if f is None else pickle.dumps(f) for f in faces]
        return out


def _frames(batches: Iterable[dict]) -> Iterator[tuple[int, Frame, str | None, list]]:
    """(shard, frame, detector, its faces) from the rows of the last stage, in input order."""
    key = current = None
    for batch in batches:
        for i in range(len(batch["seq"])):
            error = _text(batch["error"][i])
            here = (int(batch["seq"][i]), int(batch["frame"][i]), error is None)
            if here != key:
                if current is not None:
                    yield current
                timestamp = float(batch["timestamp"][i])
                timestamp = None if math.isnan(timestamp) else timestamp
                frame = Frame(str(batch["source"][i]), int(batch["frame"][i]), timestamp,
                              error=error, stream=bool(batch["stream"][i]))
                current = (int(batch["shard"][i]), frame, _text(batch["detector"][i]), [])
                key = here
            face = _face(batch["face"][i])
            if face is not None:
                current[3].append(face)
    if current is not None:
        yield current


def connect(options: RayOptions) -> bool:
    """Ray, connected to `options.address` or started here; True when started here (the caller
    shuts it down). A Ray already initialized in this process is used as it is."""
    ray = require("ray", "ray")
    # Ray reports usage statistics to its makers by default, and Ray Data polls for them on a
    # thread that outlives `ray.shutdown()`; mien sends nothing anywhere unless asked
    # (RAY_USAGE_STATS_ENABLED=1 opts in). Ray Data reads it as each dataset runs, so it is set
    # before the check below: a Ray the caller initialized follows it too.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    # Failures reach the command as exceptions; Ray's own notes (token files, actor restarts)
    # would bury its one-line summary.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if options.address:
            ray.init(address=options.address, **kwargs)
        else:
            ray.init(address="local", num_cpus=options.num_cpus, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {options.address}" if options.address else "a local Ray"
        chain, cause = [], exc
        while cause is not None and len(chain) < 8:
            chain.append(str(cause))
            cause = cause.__cause__ or cause.__context__
        if any("InvalidAuthToken" in text for text in chain):
            raise MienError(f"{where} wants its auth token: set RAY_AUTH_MODE=token here, and "
                            "RAY_AUTH_TOKEN or ~/.ray/auth_token as on its head node") from exc
        raise MienError(f"cannot start or reach {where} ({str(exc).splitlines()[0]}); check "
                        "`ray status` on the head node, or drop --address to start one here"
                        ) from exc
    return True


def _worker_error(exc: BaseException) -> MienError:
    """A Ray failure as one line: a worker's MienError as it was raised (an actor that died in
    its constructor carries it only as text), else the innermost error that is not Ray's."""
    import re

    import ray.exceptions

    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain and len(chain) < 16:
        chain.append(cause)
        cause = getattr(cause, "cause", None) or cause.__cause__ or cause.__context__
    for cause in chain:
        if isinstance(cause, MienError):
            return cause
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(str(c) for c in chain))
    raised = re.findall(r"^mien\.errors\.\w+: (.+)$", text, re.MULTILINE)
    if raised:
        return MienError(raised[-1].strip())
    user = [c for c in chain if not isinstance(c, ray.exceptions.RayError) and str(c).strip()]
    errors = re.findall(r"^[\w.]*(?:Error|Exception): .+$", text, re.MULTILINE)
    detail = (f"{type(user[-1]).__name__}: {str(user[-1]).strip().splitlines()[0]}" if user
              else errors[-1] if errors else type(exc).__name__)
    return MienError(f"a Ray worker failed ({detail}); the shards written so far are kept: fix "
                     "the cause and run the same command again")


def _pool_sizes(options: RayOptions) -> tuple[int, int]:
    """(detect actors, classify actors) that fit the cluster: fixed pools that do not fit
    would wait for resources forever."""
    import ray

    have = ray.cluster_resources()
    slots = int(have.get("CPU", 0) // options.cpus_per_actor)
    detect = options.detect_actors or max(1, slots // 2)
    classify_ = options.classify_actors or max(1, slots - detect)
    if detect + classify_ > slots:
        raise MienError(f"{detect} detector and {classify_} classifier actors need "
                        f"{(detect + classify_) * options.cpus_per_actor:g} CPUs; the cluster has "
                        f"{have.get('CPU', 0):g}: lower --detect-actors, --classify-actors or "
                        "--cpus-per-actor")
    gpus = classify_ * options.gpus_per_actor
    if gpus > have.get("GPU", 0):
        raise MienError(f"{classify_} classifier actors at --gpus-per-actor "
                        f"{options.gpus_per_actor:g} need {gpus:g} GPUs; the cluster has "
                        f"{have.get('GPU', 0):g}")
    return detect, classify_


def run_shards(plan: Plan, out: Path, pipeline: Pipeline, specs: list[str], *,
               detector, detector_options: dict, landmarks: str | None,
               every: int = 1, fps: float | None = None, max_frames: int | None = None,
               options: RayOptions = RayOptions(),
               progress: Callable[[int], None] | None = None) -> RayCounts:
    """Write the shards of `plan` missing from `out` with Ray; `pipeline` (the driver's copy of
    the workers' one) builds the rows. `progress(frames)` after every frame."""
    import ray.data

    counts = RayCounts()
    todo = check_out(out, plan)
    skipped = sorted(set(range(plan.shards)) - set(todo))
    counts.shards_skipped = len(skipped)
    if skipped:
        pq = require("pyarrow.parquet", "parquet")
        for s in skipped:  # the exit code still tells about their unreadable inputs
            status = pq.read_table(shard_path(out, s), columns=["status"]).column(0)
            counts.errors += status.to_pylist().count("error")
    if not todo:
        return counts
    wanted = set(todo)
    tasks = _tasks(i for i in plan.items if i.shard in wanted)
    started = connect(options)
    # A worker's failure reaches the command as one MienError line (`_worker_error`), not as
    # Ray Data's log lines and stack traces.
    level = logging.getLogger("ray.data").level
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    saved = None
    try:
        context = ray.data.DataContext.get_current()
        # Set for this run and restored after it: the caller's own datasets keep theirs.
        saved = (context.execution_options.preserve_order, context.enable_progress_bars,
                 context.print_on_execution_start, context.execution_options.resource_limits,
                 context.target_min_block_size, context.target_max_block_size)
        context.execution_options.preserve_order = True  # rows in input order: tracks, shards
        context.enable_progress_bars = False  # the command draws its own bar
        context.print_on_execution_start = False
        # Rows are small: in blocks of Ray's default sizes (1 to 128 MiB) they reached the
        # driver in lumps of hundreds, late in the run; in these they stream.
        context.target_min_block_size, context.target_max_block_size = BLOCK_BYTES
        if options.memory_mb:
            context.execution_options.resource_limits = (
                context.execution_options.resource_limits.copy(
                    object_store_memory=options.memory_mb * 2**20))
        detect_actors, classify_actors = _pool_sizes(options)
        distinct = list(dict.fromkeys(pipeline.framings.values()))
        dataset = (
            ray.data.from_items(tasks, override_num_blocks=len(tasks))
            .map_batches(_decode, batch_size=1, num_cpus=options.cpus_per_actor,
                         fn_kwargs=dict(every=every, fps=fps, max_frames=max_frames))
            .map_batches(Detect, batch_size=FRAMES_PER_DECODE_BATCH,
                         compute=ray.data.ActorPoolStrategy(size=detect_actors),
                         num_cpus=options.cpus_per_actor,
                         fn_constructor_args=(detector, detector_options, landmarks, distinct,
                                              pipeline.min_judged_face))
            .map_batches(Classify, batch_size=pipeline.batch_size,
                         compute=ray.data.ActorPoolStrategy(size=classify_actors),
                         num_cpus=options.cpus_per_actor, num_gpus=options.gpus_per_actor or None,
                         fn_constructor_args=(specs, dict(pipeline.framings), distinct,
                                              pipeline.min_confidence))
        )
        batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))
        try:
            counts = _write(batches, out, pipeline, counts, progress)
        finally:  # stops the stages and frees their actors now, not when collected
            getattr(batches, "close", lambda: None)()
    except ray.exceptions.RayError as exc:
        raise _worker_error(exc) from None
    finally:
        logging.getLogger("ray.data").setLevel(level)
        if saved is not None:
            (context.execution_options.preserve_order, context.enable_progress_bars,
             context.print_on_execution_start, context.execution_options.resource_limits,
             context.target_min_block_size, context.target_max_block_size) = saved
        if started:
            ray.shutdown()
    missing = [s for s in todo if not shard_path(out, s).exists()]
    if missing:
        raise MienError(f"{len(missing)} shard(s) came back without rows (first: "
                        f"{shard_path(out, missing[0])}); run the command again")
    return counts


def _write(batches, out: Path, pipeline: Pipeline, counts: RayCounts, progress) -> RayCounts:
    """The rows of the last stage's batches into their shards, each renamed into place when
    the first row of the next one (or the end) arrives."""
    trackers: dict = {}
    smoothers: dict = {}
    writer: RowWriter | None = None
    shard = -1

    def finish() -> None:
        writer.close()
        os.replace(_partial_path(out, shard), shard_path(out, shard))
        counts.shards_written += 1

    try:
        for number, frame, detector, faces in _frames(batches):
            if number != shard:
                if number < shard:  # never expected: rows come back in input order
                    raise MienError(f"shard {number} came back after shard {shard}; run the "
                                    "command again (finished shards are kept)")
                if writer is not None:
                    finish()
                shard, trackers, smoothers = number, {}, {}  # a video never spans shards
                writer = RowWriter(_partial_path(out, shard), "parquet", pipeline.labels)
            if frame.error is not None:
                rows: list[Row] = [pipeline.error_row(frame)]
                counts.errors += 1
            else:
                rows = pipeline.frame_rows(frame, faces, trackers, smoothers, detector=detector)
                counts.faces += len(faces)
                counts.no_face += not faces
            counts.frames += 1
            for row in rows:
                writer.write(row)
            if progress is not None:
                progress(1)
        if writer is not None:
            finish()
            writer = None
    finally:
        if writer is not None:  # interrupted mid-shard: its rows are not kept
            writer.close()
            _partial_path(out, shard).unlink(missing_ok=True)
    return counts
