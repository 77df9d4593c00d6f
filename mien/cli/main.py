"""The `mien` command: wires one module per command; each module keeps its imports lazy."""

from __future__ import annotations

import sys

import typer

from mien.errors import MienError

app = typer.Typer(
    name="mien",
    help="Read faces (expression, smile, glasses) and train your own face-attribute classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines `register(app)`; keep them light to import (`mien --help` < 1 s).
from mien.cli import analyze as _analyze  # noqa: E402
from mien.cli import calibrate as _calibrate  # noqa: E402
from mien.cli import compare as _compare  # noqa: E402
from mien.cli import data as _data  # noqa: E402
from mien.cli import ensemble as _ensemble  # noqa: E402
from mien.cli import evaluate as _evaluate  # noqa: E402
from mien.cli import models as _models  # noqa: E402
from mien.cli import serve as _serve  # noqa: E402
from mien.cli import train as _train  # noqa: E402

for _module in (_data, _evaluate, _calibrate, _compare, _train, _ensemble, _analyze, _models,
                _serve):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    try:
        rc = app(args=argv, standalone_mode=False)
    except MienError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # usage errors and aborts, from click or typer's own copy of it
        import click

        usage = [click.exceptions.ClickException]
        try:  # typer >= 0.2x raises these from its vendored click
            from typer._click.exceptions import ClickException as TyperClickException

            usage.append(TyperClickException)
        except ImportError:
            pass
        if isinstance(exc, tuple(usage)):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, (click.exceptions.Exit, typer.Exit)):
            sys.exit(exc.exit_code)
        if isinstance(exc, (click.exceptions.Abort, typer.Abort)):
            sys.exit(1)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
