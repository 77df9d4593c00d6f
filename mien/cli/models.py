"""`mien models ...`: model files. `fetch` downloads third-party detector files on request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="Model files: fetch detector weights.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
