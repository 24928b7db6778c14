"""What is in an image: a Labeler protocol with Rekognition, local (offline) and none backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Labeler, NullLabeler
from .types import (
    DETECTORS,
    Box,
    Face,
    Label,
    LabelRequest,
    LabelResult,
    LabelSettings,
    ModerationLabel,
    TextLine,
)

BACKENDS = ("rekognition", "local", "none")


def make_labeler(settings: LabelSettings, rekognition: Callable[[], Any] | None = None) -> Labeler:
    """The configured backend. ``rekognition`` makes the boto3 client, only when needed."""
    if settings.backend == "none":
        return NullLabeler()
    if settings.backend == "rekognition":
        from .rekognition import RekognitionLabeler

        if rekognition is None:
            raise ValueError("the rekognition backend needs a client factory")
        return RekognitionLabeler(rekognition(), settings)
    if settings.backend == "local":
        from .local import LocalLabeler

        return LocalLabeler(settings)
    raise ValueError(f"unknown labeler {settings.backend!r}; expected one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "DETECTORS",
    "Box",
    "Face",
    "Label",
    "LabelRequest",
    "LabelResult",
    "LabelSettings",
    "Labeler",
    "ModerationLabel",
    "NullLabeler",
    "TextLine",
    "make_labeler",
]
