"""Amazon Rekognition: DetectLabels, DetectText, DetectFaces, DetectModerationLabels.

The original is read by Rekognition from S3 itself (no image bytes through Lambda) when it can:
a JPEG or PNG of at most 15 MB. Anything else (WebP, GIF, TIFF, AVIF, HEIC, larger files) is sent
as the 1024 px JPEG thumbnail, well under the 5 MB limit for bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

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
    from mypy_boto3_rekognition.type_defs import ImageTypeDef

S3_LIMIT = 15 * 1024 * 1024
S3_FORMATS = {"JPEG", "PNG"}
# Input-caused refusals: the image stays DONE, the detector's error is recorded.
_PERMANENT = {
    "InvalidImageFormatException",
    "ImageTooLargeException",
    "InvalidParameterException",
    "InvalidS3ObjectException",
}


def _box(raw: Any) -> Box:
    return Box(
        left=float(raw.get("Left", 0.0)),
        top=float(raw.get("Top", 0.0)),
        width=float(raw.get("Width", 0.0)),
        height=float(raw.get("Height", 0.0)),
    )


class RekognitionLabeler:
    name = "rekognition"

    def __init__(self, client: RekognitionClient, settings: LabelSettings) -> None:
        self._client = client
        self._settings = settings

    def _image(self, request: LabelRequest) -> tuple[ImageTypeDef, str]:
        if request.bucket and request.format in S3_FORMATS and request.size <= S3_LIMIT:
            return {"S3Object": {"Bucket": request.bucket, "Name": request.key}}, "s3"
        return {"Bytes": request.thumbnail}, "thumbnail"

    def detect(self, request: LabelRequest) -> LabelResult:
        started = time.perf_counter()
        image, source = self._image(request)
        s = self._settings
        found: dict[str, Any] = {}
        errors: dict[str, str] = {}
        calls: dict[str, Callable[[], Any]] = {
            "labels": lambda: self._client.detect_labels(
                Image=image, MaxLabels=s.max_labels, MinConfidence=s.min_confidence
            ),
            "text": lambda: self._client.detect_text(
                Image=image, Filters={"WordFilter": {"MinConfidence": s.min_confidence}}
            ),
            "faces": lambda: self._client.detect_faces(Image=image, Attributes=["DEFAULT"]),
            "moderation": lambda: self._client.detect_moderation_labels(
                Image=image, MinConfidence=s.min_confidence
            ),
        }
        for detector, call in calls.items():
            if detector not in s.detectors:
                continue
            try:
                found[detector] = call()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in _PERMANENT:
                    raise  # throttling, 5xx: transient, the message is retried
                errors[detector] = code
        return LabelResult(
            backend=self.name,
            ms=round((time.perf_counter() - started) * 1000, 1),
            labels=tuple(
                Label(
                    name=x["Name"],
                    confidence=round(float(x["Confidence"]), 2),
                    boxes=tuple(_box(i["BoundingBox"]) for i in x.get("Instances", [])),
                )
                for x in found.get("labels", {}).get("Labels", [])
            ),
            text=tuple(
                TextLine(
                    text=x["DetectedText"],
                    confidence=round(float(x["Confidence"]), 2),
                    box=_box(x["Geometry"]["BoundingBox"]) if "Geometry" in x else None,
                )
                for x in found.get("text", {}).get("TextDetections", [])
                if x.get("Type") == "LINE"
            ),
            faces=tuple(
                Face(box=_box(x["BoundingBox"]), confidence=round(float(x["Confidence"]), 2))
                for x in found.get("faces", {}).get("FaceDetails", [])
            ),
            moderation=tuple(
                ModerationLabel(name=x["Name"], confidence=round(float(x["Confidence"]), 2))
                for x in found.get("moderation", {}).get("ModerationLabels", [])
            ),
            source=source,
            errors=errors,
        ).filtered(s)
