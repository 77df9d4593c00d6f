"""`mien serve`: the HTTP API and the web page (needs the `serve` extra)."""

from __future__ import annotations

from typing import Annotated

import typer

from mien.cli.analyze import DETECTOR_HELP, FINE_SCALE_HELP, THRESHOLD_HELP
from mien.detection.base import DEFAULT_OPTIONS


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every "
                                           "interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Analysis threads [default: CPU cores, at most 4].")] = None,
    queue: Annotated[int, typer.Option(
        min=0, help="Requests that may wait for a thread before the server answers 503.")] = 32,
    timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds a request may take, waiting included, before 504.")] = 30.0,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest image file, MiB.")] = 16,
    upload_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds a request body may take to arrive before 408.")] = 120.0,
    header_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds the request line and headers may take to arrive before 408 "
                        "(slow-header clients).")] = 10.0,
    max_pixels: Annotated[int, typer.Option(
        min=1, help="Largest image, width x height (decompression bombs get 413).")] = 50_000_000,
    pixel_budget: Annotated[int | None, typer.Option(
        min=1, help="Decoded pixels all workers may hold at once (7 bytes each while "
                    "decoded); a worker waits for its image's share [default: 2 x "
                    "--max-pixels].")] = None,
    max_request_pixels: Annotated[int | None, typer.Option(
        min=1, help="Pixels of all the images of one request (more gets 413) [default: 4 x "
                    "--max-pixels].")] = None,
    cors: Annotated[list[str] | None, typer.Option(
        help="Allow browser pages from this origin (repeatable), e.g. http://localhost:3000 "
             "[default: none].")] = None,
    attributes: Annotated[str | None, typer.Option(
        help="Comma list as in `mien analyze --attributes` [default: every installed bundled "
             "model].")] = None,
    detector: Annotated[str | None, typer.Option(help=DETECTOR_HELP)] = None,
    min_face: Annotated[int, typer.Option(
        min=1, help="Smallest face side, pixels.")] = DEFAULT_OPTIONS.min_face,
    threshold: Annotated[float | None, typer.Option(help=THRESHOLD_HELP)] = None,
    max_faces: Annotated[int, typer.Option(
        min=1, help="Most faces per picture, best scores first.")] = DEFAULT_OPTIONS.max_faces,
    fine_scale: Annotated[float | None, typer.Option(
        min=0.0, help=FINE_SCALE_HELP, metavar="F")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve POST /v1/analyze, /v1/analyze/batch, GET /v1/models and the web page at /.
    Set MIEN_API_KEY to require the header X-API-Key on /v1 routes."""
    import sys

    from mien.api.settings import MIB, Settings
    from mien.errors import require

    require("uvicorn", "serve")
    from mien.api.app import create_app
    from mien.api.server import run_server

    options = dict(
        detector=detector, min_face=min_face, threshold=threshold, max_faces=max_faces,
        fine_scale=fine_scale, queue_size=queue,
        timeout_s=timeout, upload_timeout_s=upload_timeout, header_timeout_s=header_timeout,
        max_upload_bytes=int(max_upload_mb * MIB), max_pixels=max_pixels,
        pixel_budget=pixel_budget, max_request_pixels=max_request_pixels,
        cors_origins=tuple(cors or ()),
        attributes=None if attributes is None else tuple(
            a.strip() for a in attributes.split(",") if a.strip()),
    )
    if workers is not None:
        options["workers"] = workers
    settings = Settings.from_env(**options)
    app = create_app(settings)
    service = app.state.service
    service.load()  # a broken model file stops here with a one-line error, before listening
    loaded = ", ".join(service.classifiers) or "none (detection only)"
    key = "X-API-Key required" if settings.api_key else "no API key"
    print(f"mien serve: detector {service.default_detector}, attributes {loaded}, "
          f"{settings.workers} workers, {key}; http://{host}:{port}/", file=sys.stderr)
    run_server(app, host=host, port=port, header_timeout_s=settings.header_timeout_s,
               log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
