"""HTTP API and web page: `create_app(settings)` (needs the `serve` extra) or `mien serve`."""

from mien.api.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings | None = None, **kwargs):
    """See `mien.api.app.create_app`."""
    from mien.api.app import create_app as _create

    return _create(settings, **kwargs)
