"""`mien data ...`: dataset checks and statistics."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Check and summarise image datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
