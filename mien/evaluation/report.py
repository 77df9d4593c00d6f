"""A self-contained HTML report of one evaluation: tables, plots embedded as base64 PNG (no
external CSS or JS, so the file can be mailed or archived alone), and the PNGs beside it."""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from mien.evaluation import plots
from mien.evaluation.evaluate import Evaluation
from mien.evaluation.tables import fmt

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 9px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f2f2f2} img{max-width:100%} pre{background:#f7f7f7;padding:1em;overflow:auto}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
"""


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def write_report(result: Evaluation, out_dir: str | os.PathLike, *,
                 run_dir: str | os.PathLike | None = None, max_mistakes: int = 24,
                 classifier: object | None = None) -> Path:
    """Write `report.html`, its PNGs and `predictions.csv` into `out_dir`; returns the HTML path.
    `run_dir` (a training run folder) adds its training curves and configuration; a
    `classifier` with `report_figures(result) -> [(file name, title, PNG)]` (the anomaly
    detector) adds its own figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    cm = m.confusion_matrix
    figures: dict[str, bytes] = {
        "confusion.png": plots.confusion_png(cm, m.labels),
        "confusion_normalized.png": plots.confusion_png(cm, m.labels, normalize=True),
        "class_counts.png": plots.class_counts_png(
            m.labels, [c.support for c in m.per_class], [c.predicted for c in m.per_class]),
        "reliability.png": plots.reliability_png(result.reliability),
    }
    mistakes = result.mistakes(max_mistakes) if result.dataset is not None else []
    if mistakes:
        pred = result.y_pred
        figures["mistakes.png"] = plots.image_grid_png(
            [result.image(r, None) for r in mistakes],
            [f"true {m.labels[result.y_true[r]]}\npred {m.labels[pred[r]]} "
             f"({result.proba[r, pred[r]]:.2f})" for r in mistakes])
    training = _training_section(Path(run_dir), figures) if run_dir is not None else ""
    extra = getattr(classifier, "report_figures", None)
    extra_figures = extra(result) if callable(extra) and result.dataset is not None else []
    figures.update({name: png for name, _, png in extra_figures})
    for name, png in figures.items():
        (out / name).write_bytes(png)
    _write_predictions(result, out / "predictions.csv")

    title = f"{result.model} on {result.data}"
    summary = _table(["", ""], [
        ["model", result.model],
        ["data", result.data + (f" [{result.split}]" if result.split else "")],
        ["images scored", m.n], ["unreadable images", len(result.unreadable)],
        *([["face crop", f"the largest face, {result.detect.describe()}"],
           ["no face found", f"{result.detect.no_face} of {result.detect.photos} photos "
                             "(each counted as wrong; left out of ECE)"]]
          if result.detect is not None else []),
        ["accuracy", fmt(m.accuracy, 4)], ["balanced accuracy", fmt(m.balanced_accuracy, 4)],
        ["macro-F1", fmt(m.macro_f1, 4)],
        *[[f"top-{k} accuracy", fmt(v, 4)] for k, v in m.top_k],
        ["expected calibration error", fmt(result.ece, 4)],
        ["test-time augmentation", result.tta],
        ["seconds", f"{result.seconds:.2f}"], ["images/s", f"{result.images_per_second:.1f}"],
    ])
    per_class = _table(["class", "precision", "recall", "F1", "support", "predicted"], [
        [c.label, fmt(c.precision), fmt(c.recall), fmt(c.f1), c.support, c.predicted]
        for c in m.per_class
    ])
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Summary</h2>", summary,
        "<h2>Per class</h2>",
        "<p>Recall and F1 of a class with no samples are undefined (-) and left out of balanced "
        "accuracy and macro-F1; a class never predicted has precision 0.</p>", per_class,
        "<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted.</p>",
        '<div class="figs">', _img(figures["confusion.png"], "confusion matrix, counts"),
        _img(figures["confusion_normalized.png"], "confusion matrix, row-normalised"), "</div>",
        "<h2>Actual vs predicted</h2>", _img(figures["class_counts.png"], "actual vs predicted"),
        "<h2>Calibration</h2><p>Per bin of top-label confidence, the share of right answers: a "
        "calibrated model's bars reach the diagonal. ECE is their count-weighted gap.</p>",
        _img(figures["reliability.png"], "reliability diagram"),
    ]
    if mistakes:
        parts += [f"<h2>Most confident mistakes ({len(mistakes)})</h2>",
                  _img(figures["mistakes.png"], "most confident mistakes")]
    for name, title, _ in extra_figures:
        parts += [f"<h2>{html.escape(title)}</h2>", _img(figures[name], title)]
    if result.unreadable:
        parts += [f"<h2>Unreadable images ({len(result.unreadable)})</h2>",
                  _table(["file", "error"], [[u.source, u.error] for u in result.unreadable])]
    parts.append(training)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p><small>written by mien evaluate, {stamp}</small></p>")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _training_section(run_dir: Path, figures: dict[str, bytes]) -> str:
    """Training curves, headline figures and configuration of a run folder (what it has)."""
    parts = [f"<h2>Training run {html.escape(str(run_dir))}</h2>"]
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
        except json.JSONDecodeError:
            metrics = {}
            parts.append(f"<p>{html.escape(str(metrics_file))} is not valid JSON.</p>")
        keys = ("best_val_accuracy", "best_epoch", "epochs_run", "stopped", "train_seconds",
                "num_train", "num_val")
        rows = [[k, metrics[k]] for k in keys if k in metrics]
        if rows:
            parts.append(_table(["", ""], rows))
        history = metrics.get("history") or []
        if history:
            figures["curves.png"] = plots.curves_png(history)
            parts.append(_img(figures["curves.png"], "training curves"))
    config = run_dir / "config.yaml"
    if config.is_file():
        parts += ["<h3>config.yaml</h3>", f"<pre>{html.escape(config.read_text())}</pre>"]
    return "".join(parts) if len(parts) > 1 else ""


def _write_predictions(result: Evaluation, path: Path) -> None:
    """One row per scored image: source, truth, prediction, confidence, every probability."""
    labels = result.labels
    pred = result.y_pred
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "true", "predicted", "confidence", *[f"p_{c}" for c in labels]])
        for i, source in enumerate(result.sources):
            writer.writerow([source, labels[result.y_true[i]], labels[pred[i]],
                             f"{result.proba[i, pred[i]]:.4f}",
                             *[f"{p:.4f}" for p in result.proba[i]]])
