"""Every command's --help shows the defaults and ranges its options state (issue 18, item 7):
rich markup once swallowed "[default: ...]" written in option help."""

from __future__ import annotations

import click
import pytest
import typer
from typer.testing import CliRunner

from mien.cli.main import app

runner = CliRunner()


def bracketed_help(group: click.Group, path=()) -> list[tuple[tuple[str, ...], str]]:
    """(command path, option help) for every option whose help holds a [bracket]."""
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += bracketed_help(command, (*path, name))
        else:
            out += [((*path, name), " ".join(p.help.split())) for p in command.params
                    if "[" in (getattr(p, "help", None) or "")]
    return out


def help_text(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize(("path", "option_help"), bracketed_help(typer.main.get_command(app)),
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else v[:40])
def test_help_keeps_what_an_option_says_in_brackets(path, option_help):
    assert option_help in help_text(path)


def test_analyze_help_shows_defaults_and_ranges():
    text = help_text(("analyze",))
    assert "[default: every installed bundled model]" in text
    assert "Face detector: haar, yunet or mtcnn [default:" in text
    assert "[default: 64; x>=1]" in text  # --batch-size: typer's own default and range


def test_train_model_help_points_to_the_zoo():
    assert "mien models zoo" in help_text(("train",))
