"""Third-party detector files: where they are looked for, how they are verified and fetched.

A file mien ships (YuNet) is read from the package's bundled weights; others are looked for in
a models folder. Nothing is downloaded implicitly: `mien models fetch NAME` (or
`fetch_model_file`) is the only network access, and every file is checked against its SHA-256
before use."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mien.errors import MienError, ModelFileError
from mien.runfiles import sha256_of, weights_dir

MODELS_DIR_ENV = "MIEN_MODELS_DIR"


@dataclass(frozen=True, slots=True)
class ModelFile:
    name: str
    filename: str
    url: str | None  # None: mien makes the file (tools/), so there is nothing to fetch
    sha256: str
    licence: str
    aliases: tuple[str, ...] = ()  # the same bytes published under other names
    bundled: str | None = None  # its name in mien/models/weights when mien ships it


MODEL_FILES: dict[str, ModelFile] = {
    "yunet": ModelFile(
        name="yunet",
        filename="face_detection_yunet_2023mar.onnx",
        url=(
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx"
        ),
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        licence="Apache-2.0 (ShiqiYu/libfacedetection.train)",
        aliases=("yunet_s_640_640.onnx",),
        bundled="yunet_s_640_640.onnx",  # next to its licence notice, yunet_s_640_640.NOTICE.md
    ),
    # MTCNN's nets converted from facenet-pytorch 2.6.0's MIT weights by tools/export_mtcnn.py
    # (licence: mien/models/weights/mtcnn.NOTICE.md)
    **{f"mtcnn-{net}": ModelFile(
        name=f"mtcnn-{net}", filename=f"mtcnn_{net}.onnx", url=None, sha256=sha,
        licence="MIT (timesler/facenet-pytorch; kpzhang93/MTCNN_face_detection_alignment)",
        bundled=f"mtcnn_{net}.onnx",
    ) for net, sha in (
        ("pnet", "023f85ce85234e26d0dad10752c371c464e60abc99379f7670eb901a8191c81a"),
        ("rnet", "d8a9ec8a6aeb1eeca2e3a891567c0cf69dac820d02083472eab68e73e3ed4c23"),
        ("onet", "4b8455544145f3ea44d2b3c1b9b48f7886d48a31a4141ce492907e5e5a772162"),
    )},
}


def model_file(name: str) -> ModelFile:
    if name not in MODEL_FILES:
        raise MienError(f"unknown model file {name!r}: choose one of {', '.join(MODEL_FILES)}")
    return MODEL_FILES[name]


def user_models_dir() -> Path:
    """The per-user data folder (XDG on Linux, Application Support on macOS, LOCALAPPDATA)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mien" / "models"


def models_dir() -> Path:
    """$MIEN_MODELS_DIR when set, else the user data folder."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env).expanduser() if env else user_models_dir()


def bundled_model_file(name: str) -> Path | None:
    """Where mien ships `name` (whether or not the file is there), or None when it does not."""
    spec = model_file(name)
    if spec.bundled is None:
        return None
    return Path(str(weights_dir() / spec.bundled))


def find_model_file(name: str, directory: str | os.PathLike | None = None) -> Path | None:
    """The first file for `name` in `directory`, or None. Without a directory: the bundled copy
    of a file mien ships, else one in `models_dir()`."""
    spec = model_file(name)
    bundled = bundled_model_file(name)
    if directory is None and bundled is not None:
        return bundled if bundled.is_file() else None
    folder = Path(directory) if directory is not None else models_dir()
    for filename in (spec.filename, *spec.aliases):
        if (folder / filename).is_file():
            return folder / filename
    return None


def verified_model_file(
    name: str, path: str | os.PathLike | None = None, directory: str | os.PathLike | None = None
) -> Path:
    """A file for `name` whose SHA-256 matches, or a ModelFileError saying how to get one.
    Without `path` or `directory`, a file mien ships is its bundled copy."""
    spec = model_file(name)
    bundled = path is None and directory is None and spec.bundled is not None
    remedy = "reinstall mien" if bundled else f"run `mien models fetch {name}`"
    found = Path(path) if path is not None else find_model_file(name, directory)
    if found is None or not found.is_file():
        if bundled:
            raise ModelFileError(f"{bundled_model_file(name)}: {name}'s bundled file is "
                                 f"missing; {remedy}")
        where = path or directory or models_dir()
        raise ModelFileError(
            f"{name}: no {spec.filename} in {where}; {remedy} "
            f"or set {MODELS_DIR_ENV} to a folder that holds it"
        )
    actual = sha256_of(found)
    if actual != spec.sha256:
        raise ModelFileError(
            f"{found}: SHA-256 {actual} does not match the expected {spec.sha256}; "
            f"the file is damaged or replaced: {'' if bundled else 'delete it and '}{remedy}"
        )
    return found


def fetch_model_file(
    name: str,
    directory: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: float = 60.0,
    progress=None,
) -> Path:
    """Download `name` into `directory`, verify its SHA-256 and only then keep it.

    `progress(done_bytes, total_bytes_or_None)` is called while downloading."""
    import tempfile
    import urllib.error
    import urllib.request

    spec = model_file(name)
    source = url or spec.url
    if source is None:
        raise MienError(f"{name}: ships inside mien, made by mien's own tools; nothing to fetch "
                        "(reinstall mien if it is missing)")
    folder = Path(directory) if directory is not None else models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(source, timeout=timeout) as resp:
                    total = resp.headers.get("Content-Length")
                    total = int(total) if total and total.isdigit() else None
                    done = 0
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise MienError(
                    f"{source}: download failed ({exc}); check the network or pass --url "
                    "to a reachable copy"
                ) from exc
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise ModelFileError(
                f"{source}: SHA-256 {actual} does not match the expected {spec.sha256}; "
                "the file was not kept — check the URL"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
