"""`create_app(settings)`: the FastAPI app. It only wires routers, limits and error handlers;
the work lives in `mien.api.service` over the library."""

from __future__ import annotations

from collections.abc import Mapping

from mien.api.settings import Settings
from mien.errors import require


def create_app(settings: Settings | None = None, *, classifiers: Mapping | None = None):
    """The app. `classifiers` ({attribute: Classifier}) replaces loading `settings.attributes`
    (tests inject small models this way)."""
    require("fastapi", "serve")
    import asyncio
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware

    from mien import __version__
    from mien.api import errors
    from mien.api.routes import analyze, models, page
    from mien.api.service import Service
    from mien.api.uploads import MULTIPART_OVERHEAD, BodyLimit

    settings = settings or Settings.from_env()
    service = Service(settings, classifiers)

    @asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(service.load)
        yield
        service.close()

    app = FastAPI(
        title="mien", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Faces in photos: boxes, landmarks and attributes (expression, smile, "
                    "glasses). Send images to /v1/analyze; the page at / does it in a browser.")
    app.state.service = service
    errors.install(app)
    for router in (analyze.router, models.router, models.health, page.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["X-API-Key",
                                                                         "Content-Type"])
    one = settings.max_upload_bytes + MULTIPART_OVERHEAD
    limits = {"/v1/analyze": one, "/v1/analyze/batch": one * settings.max_batch_images}
    app.add_middleware(BodyLimit, limit=lambda path: limits.get(path.rstrip("/"), 64 * 1024),
                       timeout_s=settings.upload_timeout_s)
    return app
