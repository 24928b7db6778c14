from __future__ import annotations

import json

import pytest

from imgpipe.events import MalformedEvent, parse_body, read_body
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


def test_sns_envelope_is_unwrapped() -> None:
    parsed = read_body(json.dumps(load_event("sns-envelope-s3-put.json")))
    assert parsed.envelope == "sns" and not parsed.malformed
    [event] = parsed.events
    assert (event.key, event.sequencer) == ("photos/sea view.jpg", "0055AED6DCD90281E5")
    # raw message delivery hands over the notification itself: the same event
    raw = read_body(json.dumps(load_event("s3-object-created-put.json")))
    assert raw.events == parsed.events


def test_eventbridge_created_and_deleted() -> None:
    created = read_body(json.dumps(load_event("eventbridge-object-created.json")))
    [event] = created.events
    assert created.envelope == "eventbridge"
    assert event.event_name == "ObjectCreated:PutObject" and event.is_created
    assert event.key == "photos/sea view+1.jpg"  # EventBridge keys are not form-encoded
    assert (event.etag, event.size, event.version_id) == (
        "4e68adba0abe2dc8653dc3354e14c01d",
        184662,
        "Bdsx2RwPFEb7m1bG9mtp1MI4u3LHXOBh",
    )
    [deleted] = read_body(json.dumps(load_event("eventbridge-object-deleted.json"))).events
    assert deleted.is_removed and deleted.version > event.version


@pytest.mark.parametrize(
    ("doc", "ignored"),
    [
        (load_event("s3-object-tagging-put.json"), ["ObjectTagging:Put"]),
        (load_event("s3-test-event.json"), ["s3:TestEvent"]),
        (
            {**load_event("eventbridge-object-created.json"), "detail-type": "Object Tags Added"},
            ["EventBridge Object Tags Added"],
        ),
    ],
)
def test_other_events_are_ignored_not_malformed(doc: object, ignored: list[str]) -> None:
    parsed = read_body(json.dumps(doc))
    assert (list(parsed.ignored), parsed.events, parsed.malformed) == (ignored, (), ())


def test_one_bad_record_does_not_hold_back_its_neighbours(events: Events) -> None:
    doc = json.loads(events.s3_body("a.jpg", "b.jpg", "c.jpg", sequencer="0A"))
    doc["Records"][1]["s3"]["object"].pop("key")
    doc["Records"].append("not a record")
    parsed = read_body(json.dumps(doc))
    assert [e.key for e in parsed.events] == ["a.jpg", "c.jpg"]
    assert len(parsed.malformed) == 2 and "lacks 'key'" in parsed.malformed[0]


@pytest.mark.parametrize(
    "body",
    [
        "x" * (300 * 1024),
        "[" * 100_000,
        json.dumps({"Type": "Notification", "Message": {"Records": []}}),
        json.dumps(
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": 5}}}]}
        ),
        json.dumps({"Records": [{"eventName": ["x"]}]}),
        json.dumps(
            {
                "Records": [
                    {
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}},
                    }
                ]
            }
        ),
        json.dumps(
            {
                "Records": [
                    {
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": "b"},
                            "object": {"key": "k", "sequencer": "not-hex"},
                        },
                    }
                ]
            }
        ),
        "\ud800",
    ],
)
def test_hostile_bodies_are_malformed_never_an_exception(body: str) -> None:
    parsed = read_body(body)
    assert parsed.malformed and not parsed.events
