"""The per-key decision table (ordering.py): every pair of (stored record, incoming event) and
what the pipeline must do, written out by hand, the way tests/unit/test_errors.py walks the
error table. Changing any one rule of ordering.py changes some cell and fails this test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from imgpipe.events import BACKFILL, S3ObjectEvent
from imgpipe.ordering import (
    NEWER_THAN_STORED,
    Action,
    Decision,
    Live,
    Skip,
    backfill_version,
    dead_on_arrival,
    decide,
    live_version,
    may_write,
    newer_condition,
    next_render,
    outranked,
    supersedes,
)
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord

FP = "settings-now"  # the fingerprint of the current settings
S5 = "5" * 4  # the sequencer of the stored record's event


@dataclass(frozen=True)
class Obj:
    etag: str
    version_id: str = ""


def record(
    status: Status, version: str, etag: str = "A", settings: str = FP, vid: str = "v1"
) -> ImageRecord:
    return ImageRecord("b", "k", version, status, etag=etag, settings=settings, version_id=vid)


STORED: dict[str, ImageRecord | None] = {
    "none": None,
    "done": record(Status.DONE, live_version(S5, "", False, "A")),
    "done, old settings": record(Status.DONE, live_version(S5, "", False, "A"), settings="old"),
    "failed": record(Status.FAILED, live_version(S5, "", False, "A"), settings=""),
    # a DELETED record keeps the ETag of what it was (derived.successor): it still is no object
    "deleted": record(Status.DELETED, live_version(S5, "", True, ""), vid=""),
    "done by a backfill": record(Status.DONE, backfill_version("2026-01-01T00:00:00Z", "A")),
    "forged max sequencer": record(
        Status.DONE, live_version("F" * 32, "", False, "X"), "X", vid=""
    ),
    "rejected": record(Status.REJECTED, live_version(S5, "", False, "A")),
}


def event(name: str, sequencer: str, etag: str, vid: str = "", when: str = "") -> S3ObjectEvent:
    return S3ObjectEvent(name, "b", "k", 1, etag, sequencer, when, version_id=vid)


PUT, DELETE = "ObjectCreated:Put", "ObjectRemoved:Delete"
# (the event, what S3 holds at the key now: {version id asked -> object}; "" is the current)
EVENTS: dict[str, tuple[S3ObjectEvent, dict[str, Obj]]] = {
    "older upload": (event(PUT, "3333", "B"), {"": Obj("C")}),
    "redelivery": (event(PUT, S5, "A"), {"": Obj("A")}),
    "newer upload": (event(PUT, "7777", "C"), {"": Obj("C")}),
    "newer upload, replaced since": (event(PUT, "7777", "C"), {"": Obj("D")}),
    "backfill of the same bytes": (
        event(BACKFILL, "", "A", when="2026-01-01T00:00:00Z"),
        {"": Obj("A")},
    ),
    "backfill of other bytes": (
        event(BACKFILL, "", "C", when="2026-02-01T00:00:00Z"),
        {"": Obj("C")},
    ),
    "newer removal, gone": (event(DELETE, "7777", ""), {}),
    "newer removal, uploaded again": (event(DELETE, "7777", ""), {"": Obj("D")}),
    "older removal, gone": (event(DELETE, "3333", ""), {}),
    "another version deleted": (event(DELETE, "7777", "", vid="v0"), {"": Obj("A", "v1")}),
    "backfill, same bytes, other version": (
        event(BACKFILL, "", "A", vid="v9", when="2026-03-01T00:00:00Z"),
        {"": Obj("A", "v9")},
    ),
}

P, RM = Decision(Action.PROCESS), Decision(Action.REMOVE)
OLD, CUR = Decision(Action.SKIP, Skip.OLDER), Decision(Action.SKIP, Skip.CURRENT)
THERE, OTHER = Decision(Action.SKIP, Skip.STILL_THERE), Decision(Action.SKIP, Skip.OTHER_VERSION)
GONE = Decision(Action.SKIP, Skip.ALREADY_DELETED)
RMC = Decision(Action.REMOVE, confirmed=True)  # S3 confirms; the record's claim does not count
RR = Decision(Action.RERENDER, version=live_version(S5, "", False, "A") + "~r0001")

# Rows: the stored record; columns: EVENTS in order.
# older, redelivery, newer, replaced since, backfill same, backfill other, removal gone,
# removal uploaded again, older removal, other version deleted, backfill of another version
TABLE: dict[str, list[Decision]] = {
    "none": [P, P, P, P, P, P, RM, THERE, RM, RM, P],
    "done": [OLD, OLD, P, P, CUR, P, RM, THERE, RMC, OTHER, P],
    "done, old settings": [OLD, OLD, P, P, RR, P, RM, THERE, RMC, OTHER, P],
    # a FAILED record is replaced by its own event's redelivery, and re-rendered by a backfill
    "failed": [OLD, P, P, P, RR, P, RM, THERE, RMC, OTHER, P],
    # the record says deleted but S3 holds the object the event names: S3 decides; a second
    # removal is no news
    "deleted": [OLD, OLD, P, P, P, P, GONE, GONE, GONE, GONE, P],
    # a backfill's record is outranked by every live event, and equal bytes are not redone
    "done by a backfill": [P, CUR, P, P, CUR, P, RM, THERE, RM, OTHER, P],
    # a forged sequencer pins the key neither against uploads S3 holds (stale) nor against
    # removals S3 confirms (the key is gone)
    "forged max sequencer": [OLD, P, P, OLD, P, P, RMC, THERE, RMC, OLD, P],
    "rejected": [OLD, OLD, P, P, CUR, P, RM, THERE, RMC, OTHER, P],
}


def test_the_table_is_complete() -> None:
    assert set(TABLE) == set(STORED)
    assert all(len(row) == len(EVENTS) for row in TABLE.values())


CELLS = [
    (stored, name, TABLE[stored][column]) for stored in STORED for column, name in enumerate(EVENTS)
]


@pytest.mark.parametrize(
    ("stored", "incoming", "expected"), CELLS, ids=[f"{s} <- {e}" for s, e, _ in CELLS]
)
def test_every_stored_record_against_every_event(
    stored: str, incoming: str, expected: Decision
) -> None:
    the_event, s3 = EVENTS[incoming]
    asked: list[str] = []

    def look(version: str) -> Live | None:
        asked.append(version)
        return s3.get(version)

    assert decide(STORED[stored], the_event, FP, look) == expected
    # S3 is asked only where the stored record or the event needs its word
    if STORED[stored] is None and the_event.is_created:
        assert asked == []


# --- the version format and the write rules ----------------------------------------------------


def test_versions_order_s3_events_above_emulated_above_backfills() -> None:
    short, long = live_version("0A1", "", False, "e"), live_version("0A10", "", False, "e")
    assert short == "s:0A1".ljust(34, "0") and short == long  # padded as the S3 guide says
    assert live_version("0a2", "", False, "e") > long  # case does not matter
    emulated = live_version("", "2026-01-01T00:00:00.000Z", False, "e")
    backfill = backfill_version("2027-01-01T00:00:00Z", "e")
    assert backfill < emulated < short
    removal = live_version("", "2026-01-01T00:00:00.000Z", True, "e")
    assert emulated < removal  # a removal after a creation in the same millisecond


def test_rerender_versions_sit_between_a_version_and_the_next_event() -> None:
    first = next_render("s:0A")
    assert first == "s:0A~r0001" and next_render(first) == "s:0A~r0002"
    assert "s:0A" < first < next_render(first) < "s:0B"


def test_supersedes_and_its_dynamodb_condition_say_the_same() -> None:
    failed = record(Status.FAILED, "s:5")
    done = record(Status.DONE, "s:5")
    assert supersedes(None, "s:1") and supersedes(done, "s:6") and supersedes(failed, "s:5")
    assert not supersedes(done, "s:5") and not supersedes(done, "s:4")
    expression, names, values = newer_condition("s:6")
    assert expression == NEWER_THAN_STORED == "#v < :v OR (#v = :v AND #s = :failed)"
    assert names == {"#v": "version", "#s": "status"}
    assert values == {":v": "s:6", ":failed": "FAILED"}


def test_a_write_outranks_or_replaces_only_a_record_s3_contradicts() -> None:
    done = record(Status.DONE, "s:5", vid="")
    newer = event(PUT, "7777", "C")
    older = event(PUT, "3333", "C")
    assert may_write(done, newer.version, newer, FP, lambda _v: Obj("C")) == (True, True)
    # older by sequencer, but S3 holds the older event's object and not the record's
    assert may_write(done, older.version, older, FP, lambda _v: Obj("C")) == (True, False)
    assert may_write(done, older.version, older, FP, lambda _v: Obj("A")) == (False, False)
    # a FAILED record (no event: the write is the failure itself) needs the order
    assert may_write(done, older.version, None, FP, lambda _v: None) == (False, False)


def test_what_an_attempt_may_leave_and_when_missing_bytes_are_news() -> None:
    done, deleted = STORED["done"], STORED["deleted"]
    older, _ = EVENTS["older upload"]
    newer, _ = EVENTS["newer upload"]
    backfill, _ = EVENTS["backfill of other bytes"]
    same, _ = EVENTS["redelivery"]
    assert outranked(older, done) and not outranked(newer, done) and not outranked(older, None)
    assert not outranked(same, done)  # its own version: what it made is the record's
    # bytes gone by render time: REJECTED missing, unless a later event says what happened
    assert not dead_on_arrival(done, newer) and not dead_on_arrival(None, newer)
    assert dead_on_arrival(deleted, newer) and dead_on_arrival(None, backfill)
