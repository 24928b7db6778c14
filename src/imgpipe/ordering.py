"""Which event wins for a key, and what the pipeline does about it: the one place that decides.

Pure: no AWS, no I/O. What S3 holds now (a HEAD) is asked through the ``Look`` function the
caller passes, and only where a rule needs it. ``Pipeline`` carries the ``Decision`` out;
``catalog.Catalog`` writes with the DynamoDB condition built here; the in-memory catalog of the
tests applies ``supersedes`` from here too. ``tests/unit/test_ordering.py`` walks every pair of
(stored record, incoming event) through ``decide``.

**Versions** order the events of one key as plain strings (so a DynamoDB condition compares
them too):

- ``s:`` + S3's sequencer, right-padded to 32 hex digits: the S3 User Guide says to pad the
  shorter of two sequencers with zeros and compare them as strings;
- ``e:`` + eventTime, the kind and the ETag, from emulators without a sequencer: below every
  ``s:``, so an event S3 ordered is never overridden by one it did not;
- ``b:`` + LastModified and ETag, a backfill message: below both, never outranking a live event;
- a re-render of a stored version under new settings appends ``~r0001``, ``~r0002``, …: above
  that version and its earlier re-renders, below any later event of the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .outcomes import Status

SEQUENCER_WIDTH = 32
BACKFILL_VERSION = "b:"
RENDER_MARK = "~r"
# A write wins only over an older version, or over a FAILED record of its own version (a
# redrive or a late success replaces the FAILED record of the same event).
NEWER_THAN_STORED = "#v < :v OR (#v = :v AND #s = :failed)"


class StoredRecord(Protocol):
    """What the rules read of a catalog record (``record.ImageRecord``)."""

    @property
    def version(self) -> str: ...
    @property
    def status(self) -> Status: ...
    @property
    def etag(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def settings(self) -> str: ...


class Incoming(Protocol):
    """What the rules read of an event (``events.S3ObjectEvent``)."""

    @property
    def event_name(self) -> str: ...
    @property
    def etag(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def is_created(self) -> bool: ...
    @property
    def is_removed(self) -> bool: ...
    @property
    def is_backfill(self) -> bool: ...


class Live(Protocol):
    """An object as S3 holds it now (``ports.LiveObject``)."""

    @property
    def etag(self) -> str: ...
    @property
    def version_id(self) -> str: ...


# What S3 holds at the event's key now (that version, if one is given), None when it is gone.
Look = Callable[[str], Live | None]


# --- the version format --------------------------------------------------------------------


def live_version(sequencer: str, event_time: str, removed: bool, etag: str) -> str:
    """The version of an S3 event (see the module's text)."""
    if sequencer:
        return "s:" + sequencer.upper().ljust(SEQUENCER_WIDTH, "0")
    return f"e:{event_time}:{int(removed)}:{etag}"


def backfill_version(last_modified: str, etag: str) -> str:
    return f"{BACKFILL_VERSION}{last_modified}:{etag}"


def next_render(version: str) -> str:
    """The version of a re-render of ``version``: just above it and every earlier re-render
    of it ("s:...~r0001", "~r0002", ...), below any later S3 event of the key."""
    base, mark, count = version.rpartition(RENDER_MARK)
    if mark and count.isdigit():
        return f"{base}{RENDER_MARK}{int(count) + 1:04d}"
    return f"{version}{RENDER_MARK}0001"


# --- the rules -----------------------------------------------------------------------------


def supersedes(stored: StoredRecord | None, version: str) -> bool:
    """Whether an event of ``version`` may still change ``stored`` (the pre-check that spares
    the work; the conditional write, ``NEWER_THAN_STORED``, is what guarantees it under races)."""
    if stored is None:
        return True
    return stored.version < version or (
        stored.version == version and stored.status is Status.FAILED
    )


def newer_condition(version: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``supersedes`` as a DynamoDB condition: (expression, names, string values)."""
    names = {"#v": "version", "#s": "status"}
    values = {":v": version, ":failed": Status.FAILED.value}
    return NEWER_THAN_STORED, names, values


def same_object(stored: StoredRecord, event: Incoming) -> bool:
    """Whether ``stored`` is about the bytes the event names (ETag, and version id where both
    have one), and not a removal."""
    if stored.status is Status.DELETED or not stored.etag or stored.etag != event.etag:
        return False
    return not (stored.version_id and event.version_id and stored.version_id != event.version_id)


def deletes_another_version(event: Incoming, stored: StoredRecord | None) -> bool:
    """In a versioned bucket, deleting a specific version (``ObjectRemoved:Delete`` with a
    versionId) that is not the one the catalog describes leaves the live object as it was. A
    delete marker (``ObjectRemoved:DeleteMarkerCreated``) does hide the live object."""
    return (
        event.event_name == "ObjectRemoved:Delete"
        and bool(event.version_id)
        and stored is not None
        and bool(stored.version_id)
        and stored.version_id != event.version_id
    )


def already_current(stored: StoredRecord | None, event: Incoming, fingerprint: str) -> bool:
    """Whether ``stored`` already is this event's outcome: a final record of the same bytes
    under the current settings, where one side is a backfill (a backfill of an image done
    since, or the live event of an upload a backfill got to first). Between live events the
    version order alone decides."""
    return (
        event.is_created
        and stored is not None
        and stored.status in (Status.DONE, Status.REJECTED)
        and stored.settings == fingerprint
        and same_object(stored, event)
        and (event.is_backfill or stored.version.startswith(BACKFILL_VERSION))
    )


def stale(stored: StoredRecord | None, event: Incoming, look: Look) -> bool:
    """Whether ``stored`` outranks ``event`` by sequencer only: the event's object is the one
    S3 holds now and ``stored`` is not about it. S3's own state decides then, so a record
    written from a message with an implausible sequencer (forged, or from another system)
    cannot pin the key: the next real upload replaces it."""
    if stored is None or not event.is_created or not event.etag:
        return False
    if stored.version == event.version:
        return False  # a redelivery of the very event the record is from: no HEAD needed
    live = live_as_event_says(event, look)
    if live is None:
        return False
    if stored.status is Status.DELETED:
        return True
    if stored.version_id and live.version_id:
        return stored.version_id != live.version_id
    return stored.etag != live.etag


def live_as_event_says(event: Incoming, look: Look) -> Live | None:
    """What S3 holds for the event's key, if it is the object the event names."""
    live = look("")
    if live is None or live.etag != event.etag.strip('"'):
        return None
    if event.version_id and live.version_id and event.version_id != live.version_id:
        return None
    return live


def gone(event: Incoming, look: Look) -> bool:
    """A removal is acted on only once S3 confirms it: the key (or, for a deleted version,
    that version) is gone. A removal that arrives after a new upload of the key, or that
    nobody made (a forged message), deletes nothing."""
    version = event.version_id if event.event_name == "ObjectRemoved:Delete" else ""
    return look(version) is None


def may_write(
    stored: StoredRecord | None,
    version: str,
    event: Incoming | None,
    fingerprint: str,
    look: Look,
    *,
    confirmed_removal: bool = False,
) -> tuple[bool, bool]:
    """Whether a record of ``version`` may replace ``stored`` now, and whether the write must
    be conditional on outranking it (``newer``) or only on ``stored`` being unchanged (a stale
    record S3 contradicts, or a removal S3 confirms). ``event``: the creation the record comes
    from, None otherwise."""
    if confirmed_removal:
        if stored is not None and stored.status is Status.DELETED:
            return False, False
        return True, supersedes(stored, version)
    if event is not None and already_current(stored, event, fingerprint):
        return False, False
    newer = supersedes(stored, version)
    if newer:
        return True, True
    return (event is not None and stale(stored, event, look)), False


def outranked(event: Incoming, stored: StoredRecord | None) -> bool:
    """Whether the stored record is of a later version than ``event``: nothing made for the
    event can ever be the key's (what an earlier attempt at it wrote may go)."""
    return stored is not None and event.version < stored.version


def dead_on_arrival(stored: StoredRecord | None, event: Incoming) -> bool:
    """A creation whose bytes are gone (or replaced) by the time it is rendered changes nothing
    when a later event will say what happened (a backfill: the live event of the change), or
    when the catalog already says the key is deleted (one removal, one notice). Otherwise the
    upload is REJECTED ``missing``: deleted before it was processed."""
    return event.is_backfill or (stored is not None and stored.status is Status.DELETED)


# --- the decision --------------------------------------------------------------------------


class Action(StrEnum):
    PROCESS = "process"  # render the event's object and record the outcome
    RERENDER = "rerender"  # the same bytes under new settings, at ``Decision.version``
    REMOVE = "remove"  # mark DELETED, remove what earlier versions own
    SKIP = "skip"  # nothing to write; finish what the stored record left undone


class Skip(StrEnum):
    """Why an event changes nothing (the log's words)."""

    CURRENT = "already made from these bytes under these settings"
    OLDER = "duplicate or older delivery"
    OTHER_VERSION = "a non-current version was deleted"
    STILL_THERE = "S3 still holds the object: a stale removal"
    ALREADY_DELETED = "already deleted"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    why: Skip | None = None
    version: str = ""  # RERENDER: the version the re-render is recorded under
    # REMOVE: S3 confirms the key is gone although the record claims a later version (a
    # forged sequencer, or a removal that overtook its own upload's): written over it
    confirmed: bool = False


def decide(stored: StoredRecord | None, event: Incoming, fingerprint: str, look: Look) -> Decision:
    """What to do with ``event`` given the catalog's ``stored`` record of its key. ``look``
    is asked only where a rule needs S3's word (a stale record, a removal)."""
    if already_current(stored, event, fingerprint):
        return Decision(Action.SKIP, Skip.CURRENT)
    version = event.version
    rerender = event.is_backfill and stored is not None and same_object(stored, event)
    if rerender and stored is not None:
        # The stored version is about these very bytes, made under other settings (or
        # FAILED): render again under a version just above it, so the new thumbnails get keys
        # of their own (a CDN may hold the old ones as immutable) and any later S3 event
        # still outranks it.
        version = next_render(stored.version)
    if event.is_removed:
        return removal(stored, event, look)
    if not supersedes(stored, version) and not stale(stored, event, look):
        return Decision(Action.SKIP, Skip.OLDER)
    return Decision(Action.RERENDER, version=version) if rerender else Decision(Action.PROCESS)


def removal(stored: StoredRecord | None, event: Incoming, look: Look) -> Decision:
    """A removal is acted on when S3 confirms it. Whatever sequencer the stored record claims:
    a record of a creation nobody can find any more (forged into the queue with the largest
    sequencer, say) must not keep a deleted photo's thumbnails served."""
    if deletes_another_version(event, stored):
        return Decision(Action.SKIP, Skip.OTHER_VERSION)
    if stored is not None and stored.status is Status.DELETED:
        return Decision(Action.SKIP, Skip.ALREADY_DELETED)  # one removal, one notice
    if not gone(event, look):
        return Decision(Action.SKIP, Skip.STILL_THERE)
    if supersedes(stored, event.version):
        return Decision(Action.REMOVE)
    if look("") is None:  # the key itself, not only the version the event names
        return Decision(Action.REMOVE, confirmed=True)
    return Decision(Action.SKIP, Skip.OLDER)
