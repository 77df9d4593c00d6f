"""The `mien` command: wires one module per command; each module keeps its imports lazy."""

from __future__ import annotations

import errno
import sys
import warnings

import typer

from mien.errors import MienError, MienWarning

app = typer.Typer(
    name="mien",
    help="Read faces (expression, smile, glasses) and train your own face-attribute classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich markup would swallow "[default: ...]" in option help as a style tag.
    rich_markup_mode=None,
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


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, MienWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


# What to do about a file or stream a command could not open or write, by errno.
OS_ERROR_FIXES = {
    errno.EEXIST: "a file is in the way of a folder: give another path or move the file",
    errno.ENOTDIR: "part of the path is a file, not a folder: give another path",
    errno.EISDIR: "it is a folder: give a file path",
    errno.ENOENT: "check the path: its folder must exist or be one that can be made",
    errno.EACCES: "no permission: change its permissions or give another path",
    errno.EPERM: "not permitted: change its permissions or give another path",
    errno.EROFS: "read-only file system: give another path",
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
}
STDOUT = "standard output"


class _NamedStdout:
    """sys.stdout, except that a failed write names it: `mien analyze photo.jpg > /dev/full`
    otherwise ends in an OSError that names no file."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def _named(self, call, *args):
        try:
            return call(*args)
        except OSError as exc:
            exc.filename = exc.filename or STDOUT
            raise

    def write(self, text):
        return self._named(self._stream.write, text)

    def flush(self):
        return self._named(self._stream.flush)


def _os_error_line(exc: OSError) -> str:
    """One line naming the file or stream at fault and what to do about it."""
    fix = OS_ERROR_FIXES.get(exc.errno, "check the path and try again")
    return f"error: {exc.filename or 'an output file'}: {exc.strerror or exc}; {fix}"


def main(argv: list[str] | None = None) -> None:
    warnings.showwarning = _show_warning  # mien's warnings as one line, like its errors
    stdout, sys.stdout = sys.stdout, _NamedStdout(sys.stdout)
    try:
        rc = app(args=argv, standalone_mode=False)
    except MienError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:  # output-side failures: a path in the way, a full disk
        # (a reader that left, `mien analyze DIR | head`, is click's: a quiet exit 1)
        if exc.errno is None:  # not the system's answer about a file: a bug, keep its traceback
            raise
        print(_os_error_line(exc), file=sys.stderr)
        sys.exit(MienError.exit_code)
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
    finally:
        sys.stdout = stdout
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
