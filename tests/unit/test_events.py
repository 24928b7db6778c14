from __future__ import annotations

import json

import pytest

from imgpipe.events import MalformedEvent, parse_body


def s3_body(*keys: str, event: str = "ObjectCreated:Put", sequencer: bool = True) -> str:
    records = []
    for key in keys:
        obj = {"key": key, "size": 123, "eTag": "abc"}
        if sequencer:
            obj["sequencer"] = "0055AED6DCD90281E5"
        records.append(
            {
                "eventName": event,
                "eventTime": "2026-11-25T12:00:00.000Z",
                "s3": {"bucket": {"name": "uploads"}, "object": obj},
            }
        )
    return json.dumps({"Records": records})


def test_test_event_is_acknowledged_not_parsed() -> None:
    # GIVEN the message S3 sends when a notification is configured
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"})
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
def test_keys_are_form_decoded(encoded: str, decoded: str) -> None:
    [event] = parse_body(s3_body(encoded))
    assert event.key == decoded


def test_several_records_in_one_body() -> None:
    events = parse_body(s3_body("a.jpg", "b.jpg", "c.jpg"))
    assert [e.key for e in events] == ["a.jpg", "b.jpg", "c.jpg"]
    assert all(e.bucket == "uploads" and e.is_created and not e.is_removed for e in events)
    assert events[0].sequencer == "0055AED6DCD90281E5"
    assert events[0].size == 123


def test_removed_event() -> None:
    [event] = parse_body(s3_body("gone.jpg", event="ObjectRemoved:Delete"))
    assert event.is_removed and not event.is_created


def test_missing_sequencer_is_empty_string() -> None:
    [event] = parse_body(s3_body("a.jpg", sequencer=False))
    assert event.sequencer == ""


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", json.dumps({"hello": 1}), json.dumps({"Records": [{"s3": {}}]})],
)
def test_malformed_bodies_raise(body: str) -> None:
    with pytest.raises(MalformedEvent):
        parse_body(body)
