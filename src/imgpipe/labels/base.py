"""The Labeler protocol and the backend that does nothing."""

from __future__ import annotations

from typing import Protocol

from .types import LabelRequest, LabelResult


class Labeler(Protocol):
    name: str

    def detect(self, request: LabelRequest) -> LabelResult:
        """Run the configured detectors; raise only for transient failures (they are retried)."""
        ...


class NullLabeler:
    """`none`: no detector runs and nothing is imported."""

    name = "none"

    def detect(self, request: LabelRequest) -> LabelResult:
        return LabelResult(backend=self.name, ms=0.0)
