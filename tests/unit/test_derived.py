"""What each version owns in the derived bucket, and what its successor must remove."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imgpipe import derived
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord, ThumbnailRef


def _done(version: str, key: str = "trip/a b.jpg", *, results: bool = True) -> ImageRecord:
    thumbs = tuple(
        ThumbnailRef(name, derived.thumbnail_key(key, version, name, "jpg"), 1, 1, 1, "image/jpeg")
        for name in ("small", "large")
    )
    docs = tuple(derived.results_key(key, version, f) for f in derived.RESULT_FORMATS)
    return ImageRecord(
        bucket="uploads",
        key=key,
        version=version,
        status=Status.DONE,
        thumbnails=thumbs,
        results=docs if results else (),
    )


def test_keys_are_per_version_so_versions_never_share_one() -> None:
    a = derived.would_own("k.jpg", "s:0A", ["small"])
    b = derived.would_own("k.jpg", "s:0B", ["small"])
    assert a and b and not a & b
    assert derived.thumbnail_key("k.jpg", "s:0A", "small", "jpg") in a
    assert derived.results_key("k.jpg", "s:0A", "csv") in a


@pytest.mark.parametrize("key", ["a.jpg", "trip/a b.jpg", "x/y/z+%.png", "ünï/cødé.jpg"])
def test_a_derived_key_names_its_source_and_version(key: str) -> None:
    token = derived.token("s:0A")
    for derived_key in derived.would_own(key, "s:0A", ["small", "medium"]):
        assert derived.source_of(derived_key) == (key, token)


def test_keys_outside_the_layout_name_no_source() -> None:
    assert derived.source_of("results/a.jpg.json") is None  # legacy layout
    assert derived.source_of("thumbnails/a.jpg/small.jpg") is None
    assert derived.source_of("elsewhere/a.jpg") is None


def test_successor_inherits_what_the_replaced_record_owned_and_left() -> None:
    v1 = replace(_done("s:0A"), revision=3, cleanup=("thumbnails/old/pending.jpg",))
    failed = ImageRecord(bucket="uploads", key=v1.key, version="s:0B", status=Status.FAILED)
    after = derived.successor(failed, v1)
    assert after.revision == 4
    assert set(after.cleanup) == derived.owned(v1) | {"thumbnails/old/pending.jpg"}
    # and a later success still carries all of it
    v2 = _done("s:0B")
    done = derived.successor(v2, after)
    assert set(done.cleanup) == set(after.cleanup) and not derived.owned(v2) & set(done.cleanup)


def test_a_record_from_before_per_version_results_hands_on_its_legacy_documents() -> None:
    legacy = _done("s:0A", results=False)
    after = derived.successor(_done("s:0B"), legacy)
    assert {"results/trip/a b.jpg.json", "results/trip/a b.jpg.csv"} <= set(after.cleanup)


def test_first_record_starts_the_revisions() -> None:
    first = derived.successor(_done("s:0A"), None)
    assert (first.revision, first.cleanup) == (1, ())
