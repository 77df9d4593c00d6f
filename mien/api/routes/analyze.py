"""POST /v1/analyze and /v1/analyze/batch."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from mien.api.errors import ApiError
from mien.api.routes.deps import loaded_service, read_uploads, require_api_key
from mien.api.schemas import AnalyzeOut, BatchItemOut, ErrorOut
from mien.api.service import AnalyzeOptions, Service
from mien.detection.base import MIN_SCORE_THRESHOLD

router = APIRouter(prefix="/v1", tags=["analyze"], dependencies=[Depends(require_api_key)])

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {"files": {"type": "array",
                                     "items": {"type": "string", "format": "binary"}}}}}},
    }
}
ERRORS = {code: {"model": ErrorOut, "description": text} for code, text in {
    401: "missing or wrong X-API-Key", 413: "file or image dimensions over the limit",
    415: "not an image", 422: "unreadable image or bad option", 503: "queue full",
    504: "took longer than the server's timeout"}.items()}


def analyze_options(
    attributes: Annotated[str | None, Query(
        description="Comma list of loaded attributes [default: all of them]; '' for none.")] = None,
    detector: Annotated[str | None, Query(
        description="haar, yunet or mtcnn [default: the server's]; one that cannot run here is "
                    "replaced, and the answer's `detector` names the one that ran.")] = None,
    min_face: Annotated[int | None, Query(ge=1, le=100_000,
                                          description="Smallest face side, pixels.")] = None,
    threshold: Annotated[float | None, Query(
        ge=MIN_SCORE_THRESHOLD, le=1.0, description="Detector score threshold.")] = None,
    max_faces: Annotated[int | None, Query(
        ge=1, le=100_000, description="Most faces per image, best scores first.")] = None,
    annotate: Annotated[bool, Query(
        description="Also return the picture with boxes and labels drawn.")] = False,
    annotate_format: Annotated[Literal["jpeg", "png"], Query()] = "jpeg",
    min_confidence: Annotated[float | None, Query(
        ge=0.0, le=1.0, description="Label an answer 'uncertain' when its top probability is "
                                    "below this; its probabilities are still given.")] = None,
) -> AnalyzeOptions:
    names = None
    if attributes is not None:
        names = tuple(a.strip() for a in attributes.split(",") if a.strip())
    return AnalyzeOptions(names, detector, min_face, threshold, max_faces, annotate,
                          annotate_format, min_confidence)


@router.post("/analyze", response_model=AnalyzeOut, responses=ERRORS, openapi_extra=IMAGE_BODY)
async def analyze(
    request: Request,
    options: Annotated[AnalyzeOptions, Depends(analyze_options)],
    svc: Annotated[Service, Depends(loaded_service)],
) -> AnalyzeOut:
    """Faces in one image: multipart field `file`, or the image bytes as the body."""
    options = svc.resolve(options)
    async with svc.pool.admitted() as slot:  # 503 before the body is read
        [(name, data)] = svc.check_pixels(
            await read_uploads(request, 1, svc.settings.max_upload_bytes))
        if isinstance(data, ApiError):
            raise data
        return AnalyzeOut.of(await svc.run(slot, svc.analyze, data, name, options))


@router.post("/analyze/batch", response_model=list[BatchItemOut], responses=ERRORS,
             openapi_extra=BATCH_BODY)
async def analyze_batch(
    request: Request,
    options: Annotated[AnalyzeOptions, Depends(analyze_options)],
    svc: Annotated[Service, Depends(loaded_service)],
) -> list[BatchItemOut]:
    """Several images (multipart, one file part each) -> one result or error per image, in
    order; a bad image does not fail the others."""
    options = svc.resolve(options)
    settings = svc.settings
    async with svc.pool.admitted() as slot:  # 503 before the body is read
        items = svc.check_pixels(await read_uploads(request, settings.max_batch_images,
                                                    settings.max_upload_bytes))
        if any(not isinstance(data, ApiError) for _, data in items):
            results = await svc.run(slot, svc.analyze_many, items, options)
        else:  # every file refused already: nothing to wait for a worker for
            results = [data for _, data in items]
    out = []
    for (name, _), result in zip(items, results, strict=True):
        if isinstance(result, ApiError):
            out.append(BatchItemOut(filename=name, status=result.status, error=result.error,
                                    detail=result.detail))
        else:
            out.append(BatchItemOut(filename=name, status=200, result=AnalyzeOut.of(result)))
    return out
