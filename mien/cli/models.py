"""`mien models ...`: model files. `fetch` downloads third-party detector files on request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="Model files: bundled classifiers (list, show), detector "
                         "weights (fetch) and the architectures to train (zoo).",
                         no_args_is_help=True)


@models_app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(help="Which file: yunet.")],
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where to keep it [default: $MIEN_MODELS_DIR, else the user data folder].")
    ] = None,
    url: Annotated[str | None, typer.Option(
        help="Download from here instead of the upstream address (a mirror).")] = None,
) -> None:
    """Download NAME, check its SHA-256, and keep it only if it matches."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from mien.detection.files import fetch_model_file, model_file

    spec = model_file(name)
    err = Console(stderr=True)
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"fetching {spec.filename}", total=None)
        path = fetch_model_file(
            name, directory, url, progress=lambda done, total: bar.update(task, completed=done,
                                                                          total=total))
    print(f"{path} (sha256 {spec.sha256}, {spec.licence})")


TABLE_WIDTH = 100  # columns: tables wrap their cells to fit a standard terminal


def _table_console():
    from rich.console import Console

    # markup off: labels and descriptions may hold [brackets]; piped output gets the full width
    terminal = Console()
    width = min(terminal.width, TABLE_WIDTH) if terminal.is_terminal else TABLE_WIDTH
    return Console(markup=False, width=width)


@models_app.command("list")
def list_command() -> None:
    """Bundled classifiers: size, checksum against the model card, validation accuracy."""
    from rich.table import Column, Table

    from mien.models.cards import installed_models

    models = installed_models()
    out = _table_console()
    if not models:
        out.print("no bundled classifiers installed")
        return
    table = Table("name", Column("labels", overflow="fold"), "input", "size", "sha256",
                  "accuracy (balanced)", "validation data")
    for m in models:
        size, v = m.card["input"]["size"], m.card["validation"]
        table.add_row(m.name, ", ".join(m.card["labels"]),
                      f"{size[0]}x{size[1]} {m.card['input']['color']}",
                      f"{m.size_bytes / 1024:.0f} KiB" if m.size_bytes else "missing",
                      "ok" if m.verified else "MISMATCH",
                      f"{v['accuracy']:.3f} ({v['balanced_accuracy']:.3f})",
                      f"{v['n']} {m.card['data'].get('validation_name', 'validation')}")
    out.print(table)
    bad = [m for m in models if not m.verified]
    if bad:
        from mien.errors import ModelFileError

        raise ModelFileError(f"{bad[0].file}: missing or its SHA-256 differs from its card; "
                             "reinstall mien")


@models_app.command("zoo")
def zoo_command(
    pattern: Annotated[str, typer.Argument(
        help="Shell-style pattern of names, e.g. 'mien-*'.")] = "*",
) -> None:
    """Architectures `mien train --model` builds: input size and colour, loss, description."""
    from rich.table import Table

    from mien.models.registry import list_models, model_info

    names = list_models(pattern)
    if not names:
        from mien.errors import MienError

        raise MienError(f"no architecture matches {pattern!r}; `mien models zoo` lists them all")
    out = _table_console()
    table = Table("name", "input", "loss", "description")
    for name in names:
        info = model_info(name)
        colour = {1: "gray", 3: "rgb"}.get(info.in_channels, f"{info.in_channels} channels")
        table.add_row(name, f"{info.input_size[0]}x{info.input_size[1]} {colour}", info.loss,
                      info.description)
    out.print(table)


@models_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Bundled classifier: expression, smile, glasses.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """The model card of NAME: data, training, validation per class, weaknesses."""
    import json

    from mien.models.cards import card_text, read_card

    card = read_card(name)
    if as_json:
        print(json.dumps(card, indent=1))
    else:
        print(card_text(card))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
