"""One typed answer to "what is in this image", whichever backend gave it."""

from __future__ import annotations

from dataclasses import dataclass, field

DETECTORS = frozenset({"labels", "text", "faces", "moderation"})


@dataclass(frozen=True, slots=True)
class Box:
    """Relative to the image, 0..1, as Rekognition reports it."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    confidence: float  # 0..100
    boxes: tuple[Box, ...] = ()
    # broader names this one implies, as Rekognition reports them ("Dog" -> "Animal", "Pet")
    parents: tuple[str, ...] = ()

    def matches(self, wanted: str) -> bool:
        """Is this label, or one of its parents, the name asked for (any case)?"""
        wanted = wanted.casefold()
        return self.name.casefold() == wanted or any(p.casefold() == wanted for p in self.parents)


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    confidence: float
    box: Box | None = None


@dataclass(frozen=True, slots=True)
class Face:
    box: Box
    confidence: float


@dataclass(frozen=True, slots=True)
class ModerationLabel:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class LabelSettings:
    backend: str = "none"  # rekognition | local | none
    min_confidence: float = 75.0
    max_labels: int = 10
    detectors: frozenset[str] = DETECTORS


@dataclass(frozen=True, slots=True)
class LabelRequest:
    """The image to label: where the original is (for backends that read S3 themselves) and a
    1024 px JPEG thumbnail (for backends that take bytes, and for oversized originals)."""

    bucket: str
    key: str
    size: int
    format: str
    thumbnail: bytes


@dataclass(frozen=True, slots=True)
class LabelResult:
    backend: str
    ms: float
    labels: tuple[Label, ...] = ()
    text: tuple[TextLine, ...] = ()
    faces: tuple[Face, ...] = ()
    moderation: tuple[ModerationLabel, ...] = ()
    source: str = ""  # "s3" or "thumbnail": what the backend looked at
    errors: dict[str, str] = field(default_factory=dict)

    def filtered(self, settings: LabelSettings) -> LabelResult:
        """Apply the confidence floor and the label cap the same way for every backend."""
        floor = settings.min_confidence
        labels = sorted(
            (x for x in self.labels if x.confidence >= floor), key=lambda x: -x.confidence
        )
        return LabelResult(
            backend=self.backend,
            ms=self.ms,
            labels=tuple(labels[: settings.max_labels]),
            text=tuple(x for x in self.text if x.confidence >= floor),
            faces=tuple(x for x in self.faces if x.confidence >= floor),
            moderation=tuple(x for x in self.moderation if x.confidence >= floor),
            source=self.source,
            errors=dict(self.errors),
        )
