"""Side-by-side comparison of evaluation JSONs (`mien evaluate --json`), training run folders
and repeated runs (`RUN/repeats.json` + `RUN/seed-K/`): one row per entry, as a table,
Markdown, CSV or a bar chart.

A run folder is scored on its validation confusion matrix (best epoch) from `metrics.json`; a
repeats folder gives mean, sample standard deviation (ddof=1), min and max over its seeds.
Every row says which images it was scored on: figures on different images do not compare.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.errors import MienError
from mien.evaluation.metrics import metrics_from_confusion
from mien.runfiles import parameter_count  # noqa: F401  (callers import it here too)

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")
TITLES = {"accuracy": "accuracy", "balanced_accuracy": "balanced acc.", "macro_f1": "macro-F1",
          "parameters": "parameters", "images_per_second": "images/s",
          "train_seconds": "training s"}


class CompareError(MienError):
    """An entry to compare is not an evaluation JSON, a run folder or a repeats folder."""


@dataclass(frozen=True, slots=True)
class Stat:
    """One figure over one or more runs; std is the sample standard deviation (0 for one run)."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        v = np.asarray(values, dtype=np.float64)
        std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        return cls(float(v.mean()), std, float(v.min()), float(v.max()), len(v))

    def text(self, digits: int = 4, spread: bool = True) -> str:
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        out = f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        return out + f" [{self.min:.{digits}f}, {self.max:.{digits}f}]" if spread else out


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    source: str
    kind: str  # "evaluation" | "run" | "repeats"
    labels: tuple[str, ...]
    values: Mapping[str, Stat]  # HEADLINE keys, "f1:<label>", parameters, images_per_second, ...
    scored_on: str = "?"  # the images behind the figures, e.g. "data/smiles [test], 1,200 images"

    @property
    def runs(self) -> int:
        return max((s.n for s in self.values.values()), default=1)


def model_facts(spec: str | os.PathLike) -> dict[str, float]:
    """What a model's files tell beyond its predictions: `parameters` (from a safetensors
    checkpoint) and `train_seconds` (from a run folder's metrics.json). Empty for a bundled
    name or an ONNX file."""
    p = Path(spec)
    facts: dict[str, float] = {}
    weights = p / "model.safetensors" if p.is_dir() else p
    if weights.suffix == ".safetensors" and weights.is_file():
        facts["parameters"] = parameter_count(weights)
    metrics = p / "metrics.json" if p.is_dir() else None
    if metrics is not None and metrics.is_file():
        train_seconds = _read_json(metrics).get("train_seconds")
        if train_seconds is not None:
            facts["train_seconds"] = float(train_seconds)
    return facts


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: cannot read JSON ({exc}); give an evaluation JSON or a run "
                           "folder") from exc


def _run_values(run: Path) -> tuple[tuple[str, ...], dict[str, float], str]:
    """Figures of one training run folder (validation set, best epoch) and what they were
    scored on."""
    metrics_file = run / "metrics.json"
    if not metrics_file.is_file():
        raise CompareError(f"{run}: no metrics.json; is it a finished `mien train` run folder?")
    metrics = _read_json(metrics_file)
    if "confusion" not in metrics or "classes" not in metrics:
        raise CompareError(f"{metrics_file}: no validation confusion matrix; the run has no "
                           "validation set or did not finish an epoch")
    scores = metrics_from_confusion(np.array(metrics["confusion"]), metrics["classes"])
    values = {"accuracy": scores.accuracy, "balanced_accuracy": scores.balanced_accuracy,
              "macro_f1": scores.macro_f1}
    values |= {f"f1:{c.label}": c.f1 for c in scores.per_class if c.f1 is not None}
    if "train_seconds" in metrics:
        values["train_seconds"] = float(metrics["train_seconds"])
    if (run / "model.safetensors").is_file():
        values["parameters"] = parameter_count(run / "model.safetensors")
    data = metrics.get("measured", {}).get("data") or "its validation split"
    return scores.labels, values, f"{data}, {scores.n:,} images"


def _evaluation_values(path: Path, record: Mapping) -> tuple[tuple[str, ...], dict[str, float]]:
    missing = [k for k in (*HEADLINE, "labels", "per_class") if k not in record]
    if missing:
        raise CompareError(f"{path}: not a `mien evaluate --json` file (missing "
                           f"{', '.join(missing)})")
    values = {k: float(record[k]) for k in HEADLINE}
    values |= {f"f1:{c}": s["f1"] for c, s in record["per_class"].items()
               if s.get("f1") is not None}
    for key in ("images_per_second", "parameters", "train_seconds"):
        if record.get(key) is not None:
            values[key] = float(record[key])
    return tuple(record["labels"]), values


def _evaluation_scored_on(record: Mapping) -> str:
    split = f" [{record['split']}]" if record.get("split") else ""
    images = f", {record['n']:,} images" if record.get("n") is not None else ""
    return f"{record.get('data', '?')}{split}{images}"


def _stats(runs: Sequence[dict[str, float]]) -> dict[str, Stat]:
    keys = dict.fromkeys(k for r in runs for k in r)
    return {k: Stat.of([r[k] for r in runs if k in r]) for k in keys}


def load_entry(path: str | os.PathLike) -> Entry:
    """An evaluation JSON, a run folder or a repeats folder (its metrics.json / repeats.json
    may be given instead of the folder)."""
    p = Path(path)
    if p.is_file() and p.name in ("metrics.json", "repeats.json"):
        p = p.parent
    if p.is_dir():
        if (p / "repeats.json").is_file():
            rep = _read_json(p / "repeats.json")
            subs = [p / r for r in rep.get("runs", [])] or sorted(p.glob("seed-*"))
            if not subs:
                raise CompareError(f"{p}/repeats.json lists no runs")
            per_run = [_run_values(s) for s in subs]
            return Entry(p.name, str(p), "repeats", per_run[0][0],
                         _stats([v for _, v, _ in per_run]), per_run[0][2])
        labels, values, scored_on = _run_values(p)
        return Entry(p.name, str(p), "run", labels, _stats([values]), scored_on)
    if not p.is_file():
        raise CompareError(f"{p}: no such file or folder")
    record = _read_json(p)
    labels, values = _evaluation_values(p, record)
    return Entry(p.stem, str(p), "evaluation", labels, _stats([values]),
                 _evaluation_scored_on(record))


def load_entries(paths: Sequence[str | os.PathLike]) -> list[Entry]:
    entries = [load_entry(p) for p in paths]
    names = [e.name for e in entries]
    if len(set(names)) < len(names):  # same stem twice: fall back to the paths given
        entries = [dataclasses.replace(e, name=str(p)) for p, e in zip(paths, entries, strict=True)]
    return entries


def _labels(entries: Sequence[Entry]) -> list[str]:
    return list(dict.fromkeys(c for e in entries for c in e.labels))


def _cell(stat: Stat | None, key: str, spread: bool) -> str:
    if stat is None:
        return "-"
    if key == "parameters":
        return f"{stat.mean / 1e6:.2f} M" if stat.mean >= 1e5 else f"{stat.mean:,.0f}"
    if key in ("images_per_second", "train_seconds"):
        digits = 0 if stat.mean >= 100 else 1
        return f"{stat.mean:.{digits}f}" + (f" ± {stat.std:.{digits}f}" if stat.n > 1 else "")
    return stat.text(4 if key in HEADLINE else 3, spread=spread and key in HEADLINE)


def table_rows(entries: Sequence[Entry]) -> tuple[list[str], list[list[str]]]:
    """Header and text rows: the images scored, headline metrics (mean ± std [min, max] for
    repeats), per-class F1, parameters, images/s (evaluation throughput) and training time."""
    labels = _labels(entries)
    keys = [*HEADLINE, *[f"f1:{c}" for c in labels], "parameters", "images_per_second",
            "train_seconds"]
    header = ["entry", "runs", "scored on", *[TITLES.get(k, "F1 " + k[3:]) for k in keys]]
    rows = [[e.name, str(e.runs), e.scored_on, *[_cell(e.values.get(k), k, True) for k in keys]]
            for e in entries]
    return header, rows


def to_markdown(entries: Sequence[Entry]) -> str:
    header, rows = table_rows(entries)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(entries: Sequence[Entry]) -> str:
    """Numbers only: per figure its mean, and _std/_min/_max columns; empty when unknown."""
    labels = _labels(entries)
    keys = [*HEADLINE, *[f"f1:{c}" for c in labels], "parameters", "images_per_second",
            "train_seconds"]
    cols = [f"{k}{suffix}" for k in keys for suffix in ("", "_std", "_min", "_max")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["entry", "kind", "source", "scored_on", "runs",
                     *[c.replace(":", "_") for c in cols]])
    for e in entries:
        row: list[object] = [e.name, e.kind, e.source, e.scored_on, e.runs]
        for k in keys:
            s = e.values.get(k)
            row += ["", "", "", ""] if s is None else [s.mean, s.std, s.min, s.max]
        writer.writerow(row)
    return buf.getvalue()


def rich_table(entries: Sequence[Entry]):
    """The table transposed for a terminal: one row per figure, one column per entry."""
    from rich.table import Table

    header, rows = table_rows(entries)
    table = Table(title="comparison")
    table.add_column("")
    for row in rows:
        table.add_column(row[0], justify="right")
    for i, name in enumerate(header[1:], start=1):
        table.add_row(name, *[row[i] for row in rows])
    return table


def bar_chart_png(entries: Sequence[Entry]) -> bytes:
    """Headline metrics per entry (error bars: std over repeats) and per-class F1."""
    from mien.evaluation.plots import new_figure, to_png

    labels = _labels(entries)
    n = len(entries)
    width = 0.8 / n
    fig = new_figure(max(9.0, 3 + 0.9 * (len(labels) + 3)), 4.2)
    ax_head, ax_cls = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, max(len(labels), 1)]})
    for i, e in enumerate(entries):
        for ax, keys in ((ax_head, HEADLINE), (ax_cls, [f"f1:{c}" for c in labels])):
            stats = [e.values.get(k) for k in keys]
            x = np.arange(len(keys)) - 0.4 + width * (i + 0.5)
            ax.bar(x, [s.mean if s else np.nan for s in stats], width,
                   yerr=[s.std if s else 0 for s in stats] if e.runs > 1 else None, capsize=2,
                   label=e.name, color=f"C{i % 10}")
    ax_head.set_xticks(range(3), [TITLES[k] for k in HEADLINE])
    ax_cls.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax_head.set_title("overall")
    ax_cls.set_title("F1 per class")
    for ax in (ax_head, ax_cls):
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    ax_head.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return to_png(fig)
