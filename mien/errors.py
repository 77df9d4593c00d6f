"""Errors a user can act on: each message names the file or value at fault and what to do."""

from __future__ import annotations


class MienError(Exception):
    """Base class; the CLI prints its message as one line and exits non-zero."""

    exit_code = 2


class ImageReadError(MienError):
    """A file could not be decoded as an image."""


class DatasetError(MienError):
    """A dataset folder or CSV does not have the expected layout or content."""


class ModelFileError(MienError):
    """A model file is missing, corrupt, or not a mien model."""


class MissingDependencyError(MienError):
    """An optional dependency is not installed; the message gives the install command."""


class DeadlineExceeded(MienError):
    """Work stopped: its deadline passed or its caller gave up (`mien.deadline`)."""


class MienWarning(UserWarning):
    """Something the user should know, that did not stop the work; the CLI prints it as one
    line starting with `warning:`."""


def require(module: str, extra: str):
    """Import an optional dependency or fail with the command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed: run `pip install 'mien[{extra}]'`"
        ) from exc
