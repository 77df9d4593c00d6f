"""Terminal tables (rich) for an evaluation's metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from mien.evaluation.evaluate import Evaluation
    from mien.evaluation.metrics import ClassificationMetrics


def fmt(value: float | None, digits: int = 3) -> str:
    """A score for a table cell; an undefined one (class with no samples) shows as a dash."""
    return "-" if value is None else f"{value:.{digits}f}"


def summary_line(result: Evaluation) -> str:
    m = result.metrics
    split = f" [{result.split}]" if result.split else ""
    tta = f", tta {result.tta}" if result.tta != "none" else ""
    detect = ""
    if result.detect is not None:
        d = result.detect
        detect = (f"\nface crop: the largest face, {d.describe()}\n"
                  f"no face found: {d.no_face} of {d.photos} photos (each counted as wrong)")
    return (
        f"{result.model} on {result.data}{split}: {m.n} images{tta}\n"
        f"accuracy {m.accuracy:.4f}   balanced accuracy {m.balanced_accuracy:.4f}   "
        f"macro-F1 {m.macro_f1:.4f}   ECE {result.ece:.4f}   "
        f"({result.seconds:.1f} s, {result.images_per_second:.0f} images/s)"
        f"{detect}"
    )


def metrics_table(metrics: ClassificationMetrics) -> Table:
    from rich.table import Table

    table = Table(title="per class")
    table.add_column("class")
    for name in ("precision", "recall", "F1", "support", "predicted"):
        table.add_column(name, justify="right")
    for c in metrics.per_class:
        table.add_row(c.label, fmt(c.precision), fmt(c.recall), fmt(c.f1), str(c.support),
                      str(c.predicted))
    return table
