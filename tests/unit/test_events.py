from __future__ import annotations

import json

import pytest

from imgpipe.events import MalformedEvent, parse_body
from tests.conftest import Events, load_event


def test_test_event_is_acknowledged_not_parsed() -> None:
    # GIVEN the message S3 sends when a notification is configured
    body = json.dumps(load_event("s3-test-event.json"))
    # THEN there is nothing to process, and no error that would poison the queue
    assert parse_body(body) == []


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("photos/my+holiday.jpg", "photos/my holiday.jpg"),
        ("a%2Bb.jpg", "a+b.jpg"),
        ("100%25.jpg", "100%.jpg"),
        ("dir%2Fsub%2Ffile.jpg", "dir/sub/file.jpg"),  # moto encodes "/" too
        ("caf%C3%A9/%D1%84%D0%BE%D1%82%D0%BE.jpg", "café/фото.jpg"),
    ],
)
def test_keys_are_form_decoded(events: Events, encoded: str, decoded: str) -> None:
    doc = json.loads(events.s3_body("placeholder"))
    doc["Records"][0]["s3"]["object"]["key"] = encoded  # as S3 (or moto) encoded it
    [event] = parse_body(json.dumps(doc))
    assert event.key == decoded


def test_the_recorded_notification() -> None:
    [event] = parse_body(json.dumps(load_event("s3-object-created-put.json")))
    assert (event.bucket, event.key, event.size) == ("uploads", "photos/sea view.jpg", 1305107)
    assert (event.etag, event.sequencer) == (
        "d41d8cd98f00b204e9800998ecf8427e",
        "0055AED6DCD90281E5",
    )
    assert event.is_created and event.event_time == "2026-11-25T12:00:00.000Z"


def test_several_records_in_one_body(events: Events) -> None:
    parsed = parse_body(events.s3_body("a.jpg", "b.jpg", "c.jpg", sequencer="0055AED6DCD90281E5"))
    assert [e.key for e in parsed] == ["a.jpg", "b.jpg", "c.jpg"]
    assert all(e.bucket == "uploads" and e.is_created and not e.is_removed for e in parsed)
    assert parsed[0].sequencer == "0055AED6DCD90281E5"


def test_removed_event() -> None:
    [event] = parse_body(json.dumps(load_event("s3-object-removed-delete.json")))
    assert event.is_removed and not event.is_created


def test_missing_sequencer_is_empty_string(events: Events) -> None:
    [event] = parse_body(events.s3_body("a.jpg"))
    assert event.sequencer == ""


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", json.dumps({"hello": 1}), json.dumps({"Records": [{"s3": {}}]})],
)
def test_malformed_bodies_raise(body: str) -> None:
    with pytest.raises(MalformedEvent):
        parse_body(body)
