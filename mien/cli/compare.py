"""`mien compare RUN_OR_JSON...`: several evaluations or training runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def compare_command(
    entries: Annotated[list[Path], typer.Argument(
        help="Evaluation JSONs (mien evaluate --json), run folders or repeats folders.")],
    markdown: Annotated[Path | None, typer.Option(help="Write the table as Markdown.")] = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the numbers (mean, std, min, max) as CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a bar chart PNG.")] = None,
) -> None:
    """Accuracy, balanced accuracy, macro-F1, per-class F1, parameters, images/s and training
    time; repeated runs show mean ± std [min, max]."""
    from rich.console import Console

    from mien.evaluation.compare import bar_chart_png, load_entries, rich_table, to_csv, to_markdown

    found = load_entries(entries)
    # markup off: names may hold [brackets]; piped output is not squeezed to 80 columns
    console = Console(markup=False, width=None if Console().is_terminal else 200)
    console.print(rich_table(found))
    for path, write in ((markdown, lambda p: p.write_text(to_markdown(found))),
                        (csv_path, lambda p: p.write_text(to_csv(found))),
                        (plot, lambda p: p.write_bytes(bar_chart_png(found)))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
            console.print(f"written {path}")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
