"""The Rekognition backend against botocore's Stubber: exact requests, recorded response shapes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from imgpipe.labels import LabelRequest, LabelSettings
from imgpipe.labels.local import LocalLabeler
from imgpipe.labels.rekognition import RekognitionLabeler
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord, to_document, to_public
from tests.conftest import ROOT, jpeg_of, skimage_photo

RESPONSES: dict[str, Any] = json.loads((ROOT / "tests/events/rekognition.json").read_text())
S3_IMAGE = {"S3Object": {"Bucket": "uploads", "Name": "trip/moon walk.jpg"}}


@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    rekognition = boto3.client("rekognition", region_name="us-east-1")
    with Stubber(rekognition) as stubber:
        yield rekognition, stubber
        stubber.assert_no_pending_responses()


def _expect_all(
    stubber: Stubber, image: dict[str, Any], floor: float = 75.0, max_labels: int = 10
) -> None:
    stubber.add_response(
        "detect_labels",
        RESPONSES["DetectLabels"],
        {"Image": image, "MaxLabels": max_labels, "MinConfidence": floor},
    )
    stubber.add_response(
        "detect_text",
        RESPONSES["DetectText"],
        {"Image": image, "Filters": {"WordFilter": {"MinConfidence": floor}}},
    )
    stubber.add_response(
        "detect_faces", RESPONSES["DetectFaces"], {"Image": image, "Attributes": ["DEFAULT"]}
    )
    stubber.add_response(
        "detect_moderation_labels",
        RESPONSES["DetectModerationLabels"],
        {"Image": image, "MinConfidence": floor},
    )


def _in_order(rekognition: Any, settings: LabelSettings) -> RekognitionLabeler:
    """Botocore's Stubber answers requests in the order it was given them: these tests pin
    each request's exact shape one detector after another (the concurrent path, the same
    requests, is tested with an order-free fake below)."""
    return RekognitionLabeler(rekognition, settings, parallel=False)


def _request(fmt: str = "JPEG", size: int = 2_000_000) -> LabelRequest:
    return LabelRequest("uploads", "trip/moon walk.jpg", size, fmt, b"\xff\xd8\xffthumbnail")


def test_jpeg_in_s3_is_read_by_rekognition_itself(client: tuple[Any, Stubber]) -> None:
    rekognition, stubber = client
    _expect_all(stubber, S3_IMAGE)
    result = _in_order(rekognition, LabelSettings(backend="rekognition")).detect(_request())
    assert result.source == "s3" and result.backend == "rekognition" and not result.errors
    # the confidence floor drops Helmet (61.5); lines only, not words
    assert [(x.name, x.confidence) for x in result.labels] == [
        ("Person", 99.41),
        ("Astronaut", 96.2),
        ("Flag", 88.0),
    ]
    assert result.labels[0].boxes[0].width == 0.31
    assert [x.parents for x in result.labels] == [(), ("Person",), ("Symbol",)]
    assert [(t.text, t.confidence) for t in result.text] == [("OPEN 24 HOURS", 98.7)]
    assert [f.confidence for f in result.faces] == [99.99] and result.faces[0].box.left == 0.34
    assert result.moderation == ()  # 52.1 is under the floor


@pytest.mark.parametrize(
    ("fmt", "size"), [("WEBP", 100_000), ("JPEG", 16 * 1024 * 1024), ("AVIF", 10)]
)
def test_other_formats_and_oversized_originals_send_the_thumbnail(
    client: tuple[Any, Stubber], fmt: str, size: int
) -> None:
    rekognition, stubber = client
    _expect_all(stubber, {"Bytes": b"\xff\xd8\xffthumbnail"})
    result = _in_order(rekognition, LabelSettings(backend="rekognition")).detect(
        _request(fmt, size)
    )
    assert result.source == "thumbnail"


def test_only_configured_detectors_run_with_the_shared_settings(
    client: tuple[Any, Stubber],
) -> None:
    rekognition, stubber = client
    settings = LabelSettings(
        backend="rekognition",
        min_confidence=50.0,
        max_labels=2,
        detectors=frozenset({"labels", "moderation"}),
    )
    stubber.add_response(
        "detect_labels",
        RESPONSES["DetectLabels"],
        {"Image": S3_IMAGE, "MaxLabels": 2, "MinConfidence": 50.0},
    )
    stubber.add_response(
        "detect_moderation_labels",
        RESPONSES["DetectModerationLabels"],
        {"Image": S3_IMAGE, "MinConfidence": 50.0},
    )
    result = _in_order(rekognition, settings).detect(_request())
    assert [x.name for x in result.labels] == ["Person", "Astronaut"]  # capped at 2
    assert [(m.name, m.confidence) for m in result.moderation] == [("Swimwear or Underwear", 52.1)]
    assert result.text == () and result.faces == ()


def test_throttling_is_transient_and_bad_images_are_recorded(client: tuple[Any, Stubber]) -> None:
    rekognition, stubber = client
    labeler = _in_order(
        rekognition, LabelSettings(backend="rekognition", detectors=frozenset({"labels"}))
    )
    stubber.add_client_error("detect_labels", "ThrottlingException", "Slow down", 400)
    with pytest.raises(Exception, match="ThrottlingException"):
        labeler.detect(_request())
    stubber.add_client_error(
        "detect_labels", "InvalidImageFormatException", "Request has unsupported image format", 400
    )
    result = labeler.detect(_request())
    assert result.errors == {"labels": "InvalidImageFormatException"} and result.labels == ()


def test_a_record_looks_the_same_whichever_backend_made_it(client: tuple[Any, Stubber]) -> None:
    """Rekognition's recorded answer and the offline labeler's on a real photo: the same
    fields in the stored document and in the public one, parents included."""
    rekognition, stubber = client
    _expect_all(stubber, S3_IMAGE)
    remote = _in_order(rekognition, LabelSettings(backend="rekognition")).detect(_request())
    photo = jpeg_of(skimage_photo("chelsea.png"))
    offline = LocalLabeler(LabelSettings(backend="local")).detect(
        LabelRequest("uploads", "cat.jpg", len(photo), "JPEG", photo)
    )
    cat = next(x for x in offline.labels if x.name == "Cat")
    assert {"Animal", "Pet", "Mammal"} <= set(cat.parents)

    def shapes(findings: Any) -> list[set[str]]:
        record = ImageRecord("uploads", "k", "etag", Status.DONE, findings=findings)
        found = []
        for doc in (to_document(record), to_public(record)):
            labels = doc["labels"]
            assert isinstance(labels, list) and labels
            found.append(set().union(*(set(x) for x in labels if isinstance(x, dict))))
            assert all(isinstance(x["parents"], list) for x in labels if isinstance(x, dict))
        return found

    assert shapes(remote) == shapes(offline) == [{"name", "confidence", "boxes", "parents"}] * 2


ALL = ("labels", "text", "faces", "moderation")
OPERATIONS = {
    "detect_labels": "DetectLabels",
    "detect_text": "DetectText",
    "detect_faces": "DetectFaces",
    "detect_moderation_labels": "DetectModerationLabels",
}


class Meeting:
    """A fake Rekognition client whose calls answer the recorded responses only once
    ``together`` of them are in flight at the same time (a barrier): a labeler that asks one
    detector after another never gets an answer (BrokenBarrierError after the timeout)."""

    def __init__(self, together: int, fail: dict[str, str] | None = None) -> None:
        self._barrier = threading.Barrier(together, timeout=10)
        self._fail = fail or {}
        self.threads: set[str] = set()
        self.calls: list[str] = []

    def __getattr__(self, operation: str) -> Any:
        if operation not in OPERATIONS:
            raise AttributeError(operation)

        def call(**_: Any) -> Any:
            self.calls.append(operation)
            self.threads.add(threading.current_thread().name)
            self._barrier.wait()
            if operation in self._fail:
                code = self._fail[operation]
                raise ClientError({"Error": {"Code": code, "Message": code}}, operation)
            return RESPONSES[OPERATIONS[operation]]

        return call


@pytest.mark.parametrize("detectors", [("labels", "text"), ALL])
def test_an_images_detectors_are_asked_at_once(detectors: tuple[str, ...]) -> None:
    fake = Meeting(len(detectors))
    settings = LabelSettings(backend="rekognition", detectors=frozenset(detectors))
    result = RekognitionLabeler(fake, settings).detect(_request())  # type: ignore[arg-type]
    assert len(fake.calls) == len(detectors) and len(fake.threads) == len(detectors)
    assert (bool(result.labels), bool(result.text)) == ("labels" in detectors, "text" in detectors)


def test_asked_at_once_or_in_order_the_result_is_the_same(client: tuple[Any, Stubber]) -> None:
    rekognition, stubber = client
    _expect_all(stubber, S3_IMAGE)
    settings = LabelSettings(backend="rekognition")
    in_order = _in_order(rekognition, settings).detect(_request())
    together = RekognitionLabeler(Meeting(4), settings).detect(_request())  # type: ignore[arg-type]
    assert replace(together, ms=0) == replace(in_order, ms=0)


def test_one_detector_alone_runs_in_the_callers_thread() -> None:
    fake = Meeting(1)
    settings = LabelSettings(backend="rekognition", detectors=frozenset({"labels"}))
    RekognitionLabeler(fake, settings).detect(_request())  # type: ignore[arg-type]
    assert fake.threads == {threading.current_thread().name}


def test_asked_at_once_a_transient_error_still_fails_the_image_and_a_refusal_degrades() -> None:
    settings = LabelSettings(backend="rekognition", detectors=frozenset({"labels", "text"}))
    throttled = Meeting(2, fail={"detect_text": "ThrottlingException"})
    with pytest.raises(ClientError, match="ThrottlingException"):
        RekognitionLabeler(throttled, settings).detect(_request())  # type: ignore[arg-type]
    refused = Meeting(2, fail={"detect_labels": "InvalidImageFormatException"})
    result = RekognitionLabeler(refused, settings).detect(_request())  # type: ignore[arg-type]
    assert result.errors == {"labels": "InvalidImageFormatException"}
    assert result.labels == () and result.text
