"""Amazon Rekognition: DetectLabels, DetectText, DetectFaces, DetectModerationLabels.

The original is read by Rekognition from S3 itself (no image bytes through Lambda) when it can:
a JPEG or PNG of at most 15 MB. Anything else (WebP, GIF, TIFF, AVIF, HEIC, larger files) is sent
as the 1024 px JPEG thumbnail, well under the 5 MB limit for bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError

from ..errors import Action, decide, error_code, translate
from .types import (
    Box,
    Face,
    Label,
    LabelRequest,
    LabelResult,
    LabelSettings,
    ModerationLabel,
    TextLine,
)

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_rekognition.type_defs import BoundingBoxTypeDef, ImageTypeDef

T = TypeVar("T")

S3_LIMIT = 15 * 1024 * 1024
S3_FORMATS = {"JPEG", "PNG"}


def _box(raw: BoundingBoxTypeDef) -> Box:
    return Box(
        left=float(raw.get("Left", 0.0)),
        top=float(raw.get("Top", 0.0)),
        width=float(raw.get("Width", 0.0)),
        height=float(raw.get("Height", 0.0)),
    )


class RekognitionLabeler:
    """``parallel``: the detectors of one image are asked at once (each is a ~0.3-1 s round
    trip, so an image with two detectors waits for one; the lanes overlap images, this
    overlaps one image's calls). The client is thread-safe; the calls are independent."""

    name = "rekognition"

    def __init__(
        self, client: RekognitionClient, settings: LabelSettings, *, parallel: bool = True
    ) -> None:
        self._client = client
        self._settings = settings
        self._parallel = parallel

    def _image(self, request: LabelRequest) -> tuple[ImageTypeDef, str]:
        if request.bucket and request.format in S3_FORMATS and request.size <= S3_LIMIT:
            return {"S3Object": {"Bucket": request.bucket, "Name": request.key}}, "s3"
        return {"Bytes": request.thumbnail}, "thumbnail"

    def detect(self, request: LabelRequest) -> LabelResult:
        started = time.perf_counter()
        image, source = self._image(request)
        errors: dict[str, str] = {}

        def run(detector: str, call: Callable[[ImageTypeDef], tuple[T, ...]]) -> tuple[T, ...]:
            if detector not in self._settings.detectors:
                return ()
            try:
                return call(image)
            except ClientError as exc:
                # A refusal of this image degrades the result (recorded, the image stays DONE);
                # throttling and 5xx are transient: the message is retried.
                if decide(translate("rekognition", exc)).action is not Action.DEGRADE:
                    raise
                errors[detector] = error_code(exc)
                return ()

        asked = len(self._settings.detectors)
        pool = None
        if self._parallel and asked > 1:
            pool = ThreadPoolExecutor(asked, thread_name_prefix="rekognition")

        def start(
            detector: str, call: Callable[[ImageTypeDef], tuple[T, ...]]
        ) -> Callable[[], tuple[T, ...]]:
            """The detector's answer, asked now on the pool (or, without one, when read)."""
            if pool is None or detector not in self._settings.detectors:
                return lambda: run(detector, call)
            return pool.submit(run, detector, call).result

        try:
            labels = start("labels", self._labels)
            text = start("text", self._text)
            faces = start("faces", self._faces)
            moderation = start("moderation", self._moderation)
            return LabelResult(
                backend=self.name,
                labels=labels(),
                text=text(),
                faces=faces(),
                moderation=moderation(),
                source=source,
                errors=errors,
                ms=round((time.perf_counter() - started) * 1000, 1),
            ).filtered(self._settings)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _labels(self, image: ImageTypeDef) -> tuple[Label, ...]:
        s = self._settings
        resp = self._client.detect_labels(
            Image=image, MaxLabels=s.max_labels, MinConfidence=s.min_confidence
        )
        return tuple(
            Label(
                name=x["Name"],
                confidence=round(float(x["Confidence"]), 2),
                boxes=tuple(_box(i["BoundingBox"]) for i in x.get("Instances", [])),
                parents=tuple(p["Name"] for p in x.get("Parents", []) if p.get("Name")),
            )
            for x in resp.get("Labels", [])
        )

    def _text(self, image: ImageTypeDef) -> tuple[TextLine, ...]:
        resp = self._client.detect_text(
            Image=image, Filters={"WordFilter": {"MinConfidence": self._settings.min_confidence}}
        )
        return tuple(
            TextLine(
                text=x["DetectedText"],
                confidence=round(float(x["Confidence"]), 2),
                box=_box(x["Geometry"]["BoundingBox"]) if "Geometry" in x else None,
            )
            for x in resp.get("TextDetections", [])
            if x.get("Type") == "LINE"
        )

    def _faces(self, image: ImageTypeDef) -> tuple[Face, ...]:
        resp = self._client.detect_faces(Image=image, Attributes=["DEFAULT"])
        return tuple(
            Face(box=_box(x["BoundingBox"]), confidence=round(float(x["Confidence"]), 2))
            for x in resp.get("FaceDetails", [])
        )

    def _moderation(self, image: ImageTypeDef) -> tuple[ModerationLabel, ...]:
        resp = self._client.detect_moderation_labels(
            Image=image, MinConfidence=self._settings.min_confidence
        )
        return tuple(
            ModerationLabel(name=x["Name"], confidence=round(float(x["Confidence"]), 2))
            for x in resp.get("ModerationLabels", [])
        )
