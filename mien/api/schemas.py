"""JSON shapes of the HTTP API (pydantic), built from the library's frozen results."""

from __future__ import annotations

import base64

from pydantic import BaseModel, Field

from mien.types import Face


class BoxOut(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class PredictionOut(BaseModel):
    label: str = Field(description="The most probable class, or 'uncertain' when its "
                                   "probability is below the request's min_confidence.")
    score: float = Field(description="The top probability.")
    probabilities: dict[str, float] = Field(description="Every class; they sum to 1.")


class FaceOut(BaseModel):
    box: BoxOut
    score: float = Field(description="Detector confidence in (0, 1].")
    landmarks: list[tuple[float, float]] = Field(
        description="(x, y): eye on the image's left, other eye, nose, mouth corners; "
                    "empty when the detector gives none.")
    attributes: dict[str, PredictionOut] = Field(
        description="Per attribute asked for; empty when the face is `small`.")
    small: bool = Field(description="Too small for the classifiers to judge (under 16 px): "
                                    "reported with its box and no attributes.")

    @classmethod
    def of(cls, face: Face) -> FaceOut:
        b = face.box
        return cls(
            box=BoxOut(x1=b.x1, y1=b.y1, x2=b.x2, y2=b.y2),
            score=face.score,
            landmarks=[(x, y) for x, y in face.landmarks],
            attributes={n: PredictionOut(label=p.label, score=p.score,
                                         probabilities=p.probabilities)
                        for n, p in face.attributes.items()},
            small=face.small,
        )


class ImageOut(BaseModel):
    width: int
    height: int


class AnnotatedOut(BaseModel):
    media_type: str
    base64: str


class AnalyzeOut(BaseModel):
    filename: str
    image: ImageOut
    detector: str = Field(description="The detector that ran: the one asked for, or the one "
                                      "that replaced it when it cannot run here.")
    attributes: list[str] = Field(description="Attributes given for every face.")
    faces: list[FaceOut] = Field(description="Best detector score first; empty: no face.")
    elapsed_ms: float
    annotated: AnnotatedOut | None = Field(
        None, description="With ?annotate=1: the picture with boxes and labels drawn.")

    @classmethod
    def of(cls, analysis) -> AnalyzeOut:
        annotated = None
        if analysis.annotated is not None:
            annotated = AnnotatedOut(media_type=analysis.annotated_type,
                                     base64=base64.b64encode(analysis.annotated).decode())
        return cls(
            filename=analysis.name,
            image=ImageOut(width=analysis.width, height=analysis.height),
            detector=analysis.detector,
            attributes=list(analysis.attributes),
            faces=[FaceOut.of(f) for f in analysis.faces],
            elapsed_ms=round(analysis.elapsed_ms, 2),
            annotated=annotated,
        )


class ErrorOut(BaseModel):
    error: str = Field(description="A short code, e.g. payload_too_large.")
    detail: str = Field(description="What was wrong and what to do.")


class BatchItemOut(BaseModel):
    filename: str
    status: int = Field(description="The HTTP status this image alone would have had.")
    result: AnalyzeOut | None = None
    error: str | None = None
    detail: str | None = None


class ModelOut(BaseModel):
    name: str
    labels: list[str]
    input_size: list[int] | None
    card: dict = Field(description="The bundled model card, or the metadata inside the file.")


class DetectorOut(BaseModel):
    default: str
    available: list[str]
    min_face: int
    threshold: float | None
    max_faces: int


class ModelsOut(BaseModel):
    detector: DetectorOut
    attributes: list[ModelOut]


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    attributes: list[str]
    detector: str
    workers: int
    queue_size: int
    in_flight: int
