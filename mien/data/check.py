"""Integrity checks for image-folder datasets, and a reversible quarantine for what they find.

`check_dataset(root)` scans every split of `ROOT/<class>/*` or `ROOT/{train,val,test}/<class>/*`
and reports, as frozen `Finding`s: files that are not images or do not decode, blank images,
blurred images, byte-identical copies and near-duplicates (64-bit DCT perceptual hash) within a
class, across classes (label conflicts) and across splits (leakage), plus class balance and
sharpness differences between splits or classes. `quarantine` moves flagged files aside (one copy
of each duplicate group stays) and writes a log that `restore` replays backwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mien.data.datasets import split_folders
from mien.data.io import decode_image, is_image_path
from mien.errors import DatasetError, ImageReadError

# Grey-level standard deviation below which an image carries no face: all-black frames are 0,
# a flat grey with JPEG noise is < 1, the dimmest real FER2013 face is above 4.
NEAR_CONSTANT_STD = 2.0
# Variance of the Laplacian at <= 64 px: sharp 48-109 px face crops score in the hundreds or
# thousands, a face smeared by a strong blur scores below 20.
BLUR_THRESHOLD = 20.0
# Medians of two splits (or two classes) this far apart mean they are different kinds of image.
SHARPNESS_RATIO = 10.0
IMBALANCE_RATIO = 10.0
# pHash distances are even (32 of the 64 bits are set). The hash only proposes candidates: aligned
# face crops of one person in two different photos share low frequencies too, so each candidate
# pair is confirmed by `match_score`, which separates true copies (re-encoded, shifted, blurred:
# >= 0.95) from different photos (LFW crops of one person: mostly < 0.9).
DEFAULT_NEAR_THRESHOLD = 6
NEAR_MIN_SCORE = 0.95
SPLIT_ORDER = {"train": 0, "all": 0, "val": 1, "test": 2}

ERROR, WARNING, NOTE = "error", "warning", "note"
SEVERITY = {
    "unreadable": ERROR,
    "not_image": ERROR,
    "misplaced": ERROR,
    "empty_class": ERROR,
    "label_conflict": ERROR,
    "leakage": ERROR,
    "near_label_conflict": ERROR,
    "near_leakage": ERROR,
    "near_constant": WARNING,
    "duplicate": WARNING,
    "near_duplicate": WARNING,
    "blurry": WARNING,
    "sharpness_shift": WARNING,
    "class_imbalance": NOTE,
}
# Kinds whose files `quarantine` moves; duplicate-like kinds keep their first file in place.
MOVE_ALL = frozenset({"unreadable", "not_image", "misplaced", "near_constant"})
KEEP_ONE = frozenset(
    {
        "duplicate",
        "label_conflict",
        "leakage",
        "near_duplicate",
        "near_label_conflict",
        "near_leakage",
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: its kind (see `SEVERITY`), the files involved (relative to the dataset root,
    in keep-first order), and a one-line explanation."""

    kind: str
    files: tuple[str, ...]
    detail: str
    classes: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    distance: int | None = None  # largest pHash distance inside a near-duplicate group

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]


@dataclass(frozen=True, slots=True)
class FileScan:
    """What one file's scan learnt; `error` is set (and the rest empty) when it did not decode."""

    path: str  # relative to the root, posix separators
    split: str
    label: str
    digest: str = ""
    phash: int = 0
    size: tuple[int, int] | None = None  # (width, height)
    std: float = 0.0
    sharpness: float = 0.0
    error: str | None = None
    thumb: bytes = field(default=b"", repr=False, compare=False)  # 32x32 uint8, for match_score


@dataclass(frozen=True, slots=True)
class CheckReport:
    root: str
    counts: Mapping[str, Mapping[str, int]]  # split -> class -> images
    sizes: Mapping[str, int]  # "WxH" -> images
    sharpness: Mapping[str, float]  # split -> median sharpness
    findings: tuple[Finding, ...]
    files_scanned: int
    near_threshold: int
    seconds: float

    def summary(self) -> dict[str, int]:
        """Findings per kind, in severity order."""
        c = Counter(f.kind for f in self.findings)
        return {k: c[k] for k in SEVERITY if c[k]}

    def failed(self, strict: bool = False) -> bool:
        """True when any error or warning was found (with `strict`, notes count too)."""
        return any(strict or f.severity != NOTE for f in self.findings)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["summary"] = self.summary()
        d["findings"] = [dict(asdict(f), severity=f.severity) for f in self.findings]
        return d


# ---------------------------------------------------------------------------------------------
# Pure functions


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_DCT32 = _dct_matrix(32)


def phash(thumbs: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes of (N, 32, 32) gray thumbnails: the 8x8 lowest DCT frequencies,
    each bit set where the coefficient exceeds the median of the 63 non-DC ones."""
    x = np.asarray(thumbs, dtype=np.float32).reshape(-1, 32, 32)
    low = (_DCT32[:8] @ x @ _DCT32[:8].T).reshape(len(x), 64)
    bits = low > np.median(low[:, 1:], axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def hamming_pairs(
    hashes: np.ndarray, threshold: int, block: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs i < j with popcount(h_i ^ h_j) <= threshold, as arrays (i, j, distance).
    Vectorised block by block over the upper triangle: n = 32k takes a few seconds."""
    h = np.asarray(hashes, dtype=np.uint64).ravel()
    n = len(h)
    out_i, out_j, out_d = [], [], []
    for start in range(0, n, block):
        rows = h[start : start + block]
        dist = np.bitwise_count(rows[:, None] ^ h[None, start:])
        ri, cj = np.nonzero(dist <= threshold)
        keep = cj > ri  # column offset is relative to `start`: strictly above the diagonal
        ri, cj = ri[keep], cj[keep]
        out_i.append(ri + start)
        out_j.append(cj + start)
        out_d.append(dist[ri, cj])
    if not out_i:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    return (
        np.concatenate(out_i).astype(np.int64),
        np.concatenate(out_j).astype(np.int64),
        np.concatenate(out_d).astype(np.int64),
    )


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian after shrinking the longer side to at most 64 px, so crops of
    different sizes are comparable."""
    import cv2

    h, w = gray.shape
    scale = 64.0 / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def match_score(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 32x32 gray thumbnails after blurring the sharper one to best match
    the other: 1.0 for a copy, also when one copy was blurred; lower for different photos."""
    import cv2

    x, y = a.astype(np.float32), b.astype(np.float32)
    if cv2.Laplacian(x, cv2.CV_32F).var() < cv2.Laplacian(y, cv2.CV_32F).var():
        x, y = y, x
    y = (y - y.mean()).ravel()
    y /= np.linalg.norm(y) + 1e-6
    best = -1.0
    for sigma in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        xs = cv2.GaussianBlur(x, (0, 0), sigma) if sigma else x
        xs = (xs - xs.mean()).ravel()
        best = max(best, float(xs @ y) / (float(np.linalg.norm(xs)) + 1e-6))
    return best


def _components(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    return [g for g in groups.values() if len(g) > 1]


# ---------------------------------------------------------------------------------------------
# Scanning


@dataclass(frozen=True, slots=True)
class _Entry:
    path: Path
    rel: str
    split: str
    label: str


def _walk(root: Path) -> tuple[list[_Entry], list[Finding]]:
    """Every non-hidden file under each class folder of each split; files outside class folders
    and empty class folders become findings."""
    entries: list[_Entry] = []
    findings: list[Finding] = []
    n_classes = 0
    for split, folder in split_folders(root).items():
        for child in sorted(folder.iterdir()):
            if child.name.startswith("."):
                continue
            rel = child.relative_to(root).as_posix()
            if child.is_file():
                findings.append(
                    Finding(
                        "misplaced",
                        (rel,),
                        f"{rel}: file outside any class folder; move it into one or remove it",
                        splits=(split,),
                    )
                )
                continue
            n_classes += 1
            files = sorted(
                p
                for p in child.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(child).parts)
            )
            if not files:
                findings.append(
                    Finding(
                        "empty_class",
                        (rel,),
                        f"{rel}: class folder has no files; add images or remove it",
                        classes=(child.name,),
                        splits=(split,),
                    )
                )
            entries += [_Entry(p, p.relative_to(root).as_posix(), split, child.name) for p in files]
    if n_classes == 0:
        raise DatasetError(
            f"{root}: no class folders inside; lay images out as {root}/<class>/<image files>"
        )
    return entries, findings


def _scan_chunk(entries: Sequence[_Entry]) -> list[FileScan]:
    import cv2

    out, thumbs, readable = [], [], []
    for e in entries:
        try:
            data = e.path.read_bytes()
        except OSError as exc:
            out.append(FileScan(e.rel, e.split, e.label, error=f"cannot read ({exc.strerror})"))
            continue
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        try:
            gray = decode_image(data, "gray", name=e.rel)
        except ImageReadError as exc:
            reason = str(exc).removeprefix(f"{e.rel}: ")
            out.append(FileScan(e.rel, e.split, e.label, digest=digest, error=reason))
            continue
        thumbs.append(cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA))
        readable.append(len(out))
        out.append(
            FileScan(
                e.rel,
                e.split,
                e.label,
                digest=digest,
                size=(gray.shape[1], gray.shape[0]),
                std=float(gray.std()),
                sharpness=sharpness(gray),
                thumb=thumbs[-1].tobytes(),
            )
        )
    if thumbs:
        for k, h in zip(readable, phash(np.stack(thumbs)), strict=True):
            s = out[k]
            out[k] = FileScan(
                s.path,
                s.split,
                s.label,
                s.digest,
                int(h),
                s.size,
                s.std,
                s.sharpness,
                None,
                s.thumb,
            )
    return out


def scan_files(
    entries: Sequence[_Entry],
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 256,
) -> list[FileScan]:
    """Scan in chunks on a thread pool (Pillow and OpenCV release the GIL while decoding);
    `progress(done, total)` is called after each chunk."""
    chunks = [entries[i : i + chunk] for i in range(0, len(entries), chunk)]
    out: list[FileScan] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result in pool.map(_scan_chunk, chunks):
            out += result
            if progress is not None:
                progress(len(out), len(entries))
    return out


# ---------------------------------------------------------------------------------------------
# Findings


def _order(s: FileScan) -> tuple:
    return (SPLIT_ORDER.get(s.split, 3), s.path)


def _group_finding(members: list[FileScan], exact: bool, distance: int | None) -> Finding:
    members = sorted(members, key=_order)
    classes = tuple(sorted({m.label for m in members}))
    splits = tuple(sorted({m.split for m in members}, key=lambda s: SPLIT_ORDER.get(s, 3)))
    prefix = "" if exact else "near_"
    what = "byte-identical copies" if exact else f"near-identical images (pHash <= {distance})"
    if len(splits) > 1:
        kind, why = "leakage", f"in splits {', '.join(splits)}"
        if len(classes) > 1:
            why += f" with conflicting labels {', '.join(classes)}"
    elif len(classes) > 1:
        kind, why = "label_conflict", f"labelled {', '.join(classes)}"
    else:
        kind, why = "duplicate", f"in {splits[0]}/{classes[0]}"
    return Finding(
        prefix + kind,
        tuple(m.path for m in members),
        f"{len(members)} {what} {why}: {members[0].path} ...",
        classes,
        splits,
        distance,
    )


def _duplicates(scans: list[FileScan], near_threshold: int | None) -> list[Finding]:
    by_digest: dict[str, list[FileScan]] = defaultdict(list)
    for s in scans:
        by_digest[s.digest].append(s)
    findings = [
        _group_finding(g, exact=True, distance=None) for g in by_digest.values() if len(g) > 1
    ]
    if near_threshold is None or near_threshold < 0:
        return findings
    # One representative per byte-identical group; blank images all hash alike, so leave them out.
    groups = [sorted(g, key=_order) for g in by_digest.values() if g[0].std >= NEAR_CONSTANT_STD]
    hashes = np.array([g[0].phash for g in groups], dtype=np.uint64)
    i, j, d = hamming_pairs(hashes, near_threshold)
    thumbs = [np.frombuffer(g[0].thumb, np.uint8).reshape(32, 32) for g in groups]
    scores = [match_score(thumbs[a], thumbs[b]) for a, b in zip(i, j, strict=True)]
    ok = np.asarray(scores, dtype=np.float64) >= NEAR_MIN_SCORE
    dist = {(int(a), int(b)): int(c) for a, b, c in zip(i[ok], j[ok], d[ok], strict=True)}
    for comp in _components(len(groups), dist):
        comp_set = set(comp)
        worst = max(v for (a, b), v in dist.items() if a in comp_set and b in comp_set)
        members = [s for k in comp for s in groups[k]]
        findings.append(_group_finding(members, exact=False, distance=worst))
    return findings


def _sharpness_findings(scans: list[FileScan]) -> tuple[list[Finding], dict[str, float]]:
    findings = []
    per_group: dict[tuple[str, str], list[FileScan]] = defaultdict(list)
    for s in scans:
        per_group[(s.split, s.label)].append(s)
    for (split, label), members in sorted(per_group.items()):
        blurry = [m for m in members if m.std >= NEAR_CONSTANT_STD and m.sharpness < BLUR_THRESHOLD]
        if blurry:
            findings.append(
                Finding(
                    "blurry",
                    tuple(m.path for m in blurry),
                    f"{len(blurry)} of {len(members)} images in {split}/{label} are blurred "
                    f"(Laplacian variance < {BLUR_THRESHOLD:g})",
                    (label,),
                    (split,),
                )
            )
    medians: dict[str, float] = {}
    for split in sorted({s.split for s in scans}, key=lambda s: SPLIT_ORDER.get(s, 3)):
        medians[split] = float(np.median([s.sharpness for s in scans if s.split == split]))
    if len(medians) > 1:
        lo, hi = min(medians, key=medians.get), max(medians, key=medians.get)
        if medians[hi] > SHARPNESS_RATIO * max(medians[lo], 1e-9):
            findings.append(
                Finding(
                    "sharpness_shift",
                    (),
                    f"{lo} images are far blurrier than {hi} (median sharpness "
                    f"{medians[lo]:.1f} vs {medians[hi]:.1f}); a model trained on one sees a "
                    "different kind of image in the other",
                    splits=(lo, hi),
                )
            )
    for split in medians:
        per_class = {
            label: float(np.median([m.sharpness for m in members]))
            for (sp, label), members in per_group.items()
            if sp == split
        }
        if len(per_class) > 1:
            lo, hi = min(per_class, key=per_class.get), max(per_class, key=per_class.get)
            if per_class[hi] > SHARPNESS_RATIO * max(per_class[lo], 1e-9):
                findings.append(
                    Finding(
                        "sharpness_shift",
                        (),
                        f"in {split}, class {lo} is far blurrier than {hi} (median sharpness "
                        f"{per_class[lo]:.1f} vs {per_class[hi]:.1f}); a model can learn blur "
                        "instead of the label",
                        (lo, hi),
                        (split,),
                    )
                )
    return findings, medians


def _balance_findings(counts: Mapping[str, Mapping[str, int]]) -> list[Finding]:
    findings = []
    for split, per in counts.items():
        present = {c: n for c, n in per.items() if n > 0}
        if len(present) < 2:
            continue
        lo, hi = min(present, key=present.get), max(present, key=present.get)
        if present[hi] >= IMBALANCE_RATIO * present[lo]:
            findings.append(
                Finding(
                    "class_imbalance",
                    (),
                    f"{split}: {hi} has {present[hi]} images, {lo} only {present[lo]} "
                    f"({present[hi] / present[lo]:.1f}x); weight the loss or merge classes",
                    (lo, hi),
                    (split,),
                )
            )
    return findings


def check_dataset(
    root: str | os.PathLike,
    *,
    near_threshold: int | None = DEFAULT_NEAR_THRESHOLD,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Scan every split of an image-folder dataset; `near_threshold=None` skips the
    near-duplicate search."""
    t0 = time.perf_counter()
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    entries, findings = _walk(root)
    scans = scan_files(entries, workers=workers, progress=progress)

    good: list[FileScan] = []
    for s in scans:
        if not is_image_path(s.path):
            findings.append(
                Finding(
                    "not_image",
                    (s.path,),
                    f"{s.path}: not an image file; remove it",
                    (s.label,),
                    (s.split,),
                )
            )
        elif s.error is not None:
            findings.append(
                Finding("unreadable", (s.path,), f"{s.path}: {s.error}", (s.label,), (s.split,))
            )
        else:
            good.append(s)
    for s in good:
        if s.std < NEAR_CONSTANT_STD:
            findings.append(
                Finding(
                    "near_constant",
                    (s.path,),
                    f"{s.path}: blank image (grey-level std {s.std:.2f}); remove it",
                    (s.label,),
                    (s.split,),
                )
            )
    findings += _duplicates(good, near_threshold)
    sharp_findings, medians = _sharpness_findings(good)
    findings += sharp_findings

    counts: dict[str, dict[str, int]] = {}
    labels = sorted(
        {e.label for e in entries} | {f.classes[0] for f in findings if f.kind == "empty_class"}
    )
    for split in dict.fromkeys(e.split for e in entries):
        counts[split] = dict.fromkeys(labels, 0)
    for s in good:
        counts[s.split][s.label] += 1
    findings += _balance_findings(counts)
    sizes = Counter(f"{s.size[0]}x{s.size[1]}" for s in good)
    rank = list(SEVERITY)
    findings.sort(key=lambda f: (rank.index(f.kind), f.files))
    return CheckReport(
        root=str(root),
        counts=counts,
        sizes=dict(sizes.most_common()),
        sharpness=medians,
        findings=tuple(findings),
        files_scanned=len(scans),
        near_threshold=-1 if near_threshold is None else near_threshold,
        seconds=round(time.perf_counter() - t0, 2),
    )


# ---------------------------------------------------------------------------------------------
# Quarantine


@dataclass(frozen=True, slots=True)
class QuarantineResult:
    log: Path
    moved: tuple[str, ...] = field(default_factory=tuple)


def files_to_quarantine(report: CheckReport) -> dict[str, str]:
    """{relative path: kind} of every flagged file, except the first file of each duplicate
    group (train first, then by path, so the training copy stays). Near-duplicate groups hold
    whole byte-identical groups and share their first file, so one copy of the content stays."""
    move: dict[str, str] = {}
    for f in report.findings:
        if f.kind in MOVE_ALL:
            for p in f.files:
                move.setdefault(p, f.kind)
        elif f.kind in KEEP_ONE:
            for p in f.files[1:]:
                move.setdefault(p, f.kind)
    return move


def quarantine(report: CheckReport, dest: str | os.PathLike) -> QuarantineResult:
    """Move flagged files from the dataset into `dest`, keeping their relative paths; never
    deletes. The JSON log written into `dest` lets `restore` put every file back."""
    root = Path(report.root).resolve()
    dest = Path(dest).resolve()
    if dest == root or root in dest.parents:
        raise DatasetError(
            f"{dest}: quarantine folder is inside the dataset {root}; choose a folder outside it"
        )
    plan = files_to_quarantine(report)
    for rel in plan:
        if (dest / rel).exists():
            raise DatasetError(
                f"{dest / rel}: already exists in the quarantine folder; restore or empty it first"
            )
    dest.mkdir(parents=True, exist_ok=True)
    log = dest / f"quarantine-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    n = 1
    while log.exists():
        n += 1
        log = log.with_name(f"{log.stem.split('.')[0]}.{n}.json")
    moved: list[dict] = []

    def write_log() -> None:
        log.write_text(
            json.dumps(
                {"format": 1, "root": str(root), "quarantine": str(dest), "moved": moved}, indent=1
            )
        )

    try:
        for rel, kind in plan.items():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(root / rel), str(target))
            moved.append({"file": rel, "kind": kind})
    finally:
        write_log()  # a failure half-way still leaves an exact record of what moved
    return QuarantineResult(log, tuple(m["file"] for m in moved))


def restore(log_path: str | os.PathLike) -> list[str]:
    """Move every file a quarantine log lists back to where it was. Checks every file first and
    moves nothing when one is missing or its original place is taken."""
    log_path = Path(log_path)
    try:
        log = json.loads(log_path.read_text())
        root, dest, moved = Path(log["root"]), Path(log["quarantine"]), log["moved"]
    except FileNotFoundError as exc:
        raise DatasetError(f"{log_path}: no such quarantine log") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{log_path}: not a mien quarantine log ({exc})") from exc
    if log.get("restored"):
        raise DatasetError(f"{log_path}: already restored on {log['restored']}")
    for m in moved:
        if not (dest / m["file"]).is_file():
            raise DatasetError(f"{dest / m['file']}: missing from the quarantine; nothing restored")
        if (root / m["file"]).exists():
            raise DatasetError(
                f"{root / m['file']}: a file is already there; move it away, nothing restored"
            )
    for m in moved:
        (root / m["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(dest / m["file"]), str(root / m["file"]))
    # Remove the now-empty folders the quarantine created.
    for d in sorted({(dest / m["file"]).parent for m in moved}, key=lambda p: -len(p.parts)):
        while d != dest and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent
    log["restored"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log_path.write_text(json.dumps(log, indent=1))
    return [m["file"] for m in moved]
