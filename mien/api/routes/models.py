"""GET /v1/models, /healthz and /readyz."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from mien.api.routes.deps import loaded_service, require_api_key, service
from mien.api.schemas import DetectorOut, HealthOut, ModelOut, ModelsOut, ReadyOut
from mien.api.service import Service

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_api_key)])
health = APIRouter(tags=["health"])


def model_card(classifier) -> dict:
    """The bundled model's card when the classifier is a bundled model, else the metadata
    stored in its file."""
    import json
    from pathlib import Path

    from mien.runfiles import weights_dir

    weights = Path(str(weights_dir()))
    path = getattr(classifier, "path", None)
    card = weights / f"{getattr(classifier, 'name', '')}.json"
    if path is not None and Path(path).parent == weights and card.is_file():
        try:
            return json.loads(card.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    record = getattr(classifier, "record", None)
    return dict(record) if isinstance(record, dict) else {}


@router.get("/models", response_model=ModelsOut)
def models(svc: Annotated[Service, Depends(loaded_service)]) -> ModelsOut:
    """The detector and the attribute classifiers this server loaded, with their cards."""
    from mien.detection import list_detectors

    settings = svc.settings
    attributes = []
    for name, c in svc.classifiers.items():
        size = getattr(c, "input_size", None) or getattr(c.preprocess, "input_size", None)
        attributes.append(ModelOut(name=name, labels=list(c.labels),
                                   input_size=list(size) if size else None,
                                   card=model_card(c)))
    return ModelsOut(
        detector=DetectorOut(default=svc.default_detector, available=list_detectors(True),
                             min_face=settings.min_face, threshold=settings.threshold,
                             max_faces=settings.max_faces),
        attributes=attributes)


@health.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """The process answers."""
    return HealthOut(status="ok")


@health.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def readyz(request: Request):
    """Models loaded and the queue not full: 200; otherwise 503."""
    svc = service(request)
    pool = svc.pool
    full = pool.in_flight >= pool.workers + pool.queue_size
    status = "ready" if svc.ready and not full else ("busy" if svc.ready else "loading")
    body = ReadyOut(status=status, attributes=list(svc.classifiers), detector=svc.default_detector,
                    workers=pool.workers, queue_size=pool.queue_size, in_flight=pool.in_flight)
    return JSONResponse(body.model_dump(), 200 if status == "ready" else 503)
