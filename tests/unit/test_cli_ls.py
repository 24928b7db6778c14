"""`imgpipe ls --label`: whole pages until enough match, a cursor back when it stops early."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

import pytest
from click.testing import CliRunner

from imgpipe.api import Page, decode_cursor, encode_cursor
from imgpipe.catalog import PageKey
from imgpipe.cli import images, main
from imgpipe.labels import Label, LabelResult
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord


def record(key: str, *labels: Label) -> ImageRecord:
    findings = LabelResult("local", 1.0, labels=labels) if labels else None
    return ImageRecord("uploads", key, "v", Status.DONE, findings=findings)


DOG = Label("Dog", 90.0, parents=("Animal", "Pet"))
CAR = Label("Car", 90.0, parents=("Vehicle",))


class Pages:
    """A catalog of ``n`` x 100 records in key order, paged as the status API pages it (the
    cursor: after this key); a dog at every 300th."""

    def __init__(self, n: int) -> None:
        self.keys = [f"{i // 100:03d}/{i % 100:03d}" for i in range(n * 100)]
        self.asked: list[dict[str, str]] = []

    def page(self, query: Mapping[str, str]) -> Page:
        self.asked.append(dict(query))
        cursor = query.get("cursor")
        start = 0 if not cursor else self.keys.index(decode_cursor(cursor, "uploads").key) + 1
        chosen = self.keys[start : start + int(query["limit"])]
        records = [record(k, DOG if self.keys.index(k) % 300 == 7 else CAR) for k in chosen]
        more = start + len(chosen) < len(self.keys)
        return Page(records, encode_cursor(PageKey("uploads", chosen[-1])) if more else None)


def test_reads_whole_pages_until_enough_match_and_honours_the_limit() -> None:
    api = Pages(10)
    found, cursor = images._labelled(api, {"limit": "2", "prefix": "p"}, "animal", 2)
    assert [r.key for r in found] == ["000/007", "003/007"]
    assert all(q["limit"] == "100" and q["prefix"] == "p" for q in api.asked)
    # the next call starts right after the last one shown: nothing skipped, nothing twice
    assert cursor is not None and decode_cursor(cursor, "uploads").key == "003/007"
    found, cursor = images._labelled(api, {"limit": "2", "cursor": cursor}, "PET", 2)
    assert [r.key for r in found] == ["006/007", "009/007"] and cursor is not None
    assert images._labelled(api, {"limit": "2", "cursor": cursor}, "dog", 2) == ([], None)
    one, cursor = images._labelled(Pages(10), {"limit": "1"}, "dog", 1)
    assert [r.key for r in one] == ["000/007"] and cursor is not None  # --limit 1: one row


def test_stops_after_the_page_budget_with_a_cursor() -> None:
    api = Pages(100)
    found, cursor = images._labelled(api, {"limit": "25"}, "cat", 25)
    assert found == [] and len(api.asked) == images.LABEL_SEARCH_PAGES
    assert cursor is not None
    assert decode_cursor(cursor, "uploads").key == f"{images.LABEL_SEARCH_PAGES - 1:03d}/099"


def test_the_next_page_hint_keeps_every_filter() -> None:
    hint = images._same_listing("DONE", "trip/a b", "dog", 2, "local")
    assert hint == " --status done --prefix 'trip/a b' --label dog --limit 2"
    assert images._same_listing(None, "", None, images.LIMIT_DEFAULT, "dev") == " --stage dev"


def test_records_without_findings_never_match() -> None:
    assert not images._has_label(record("a"), "dog")
    assert images._has_label(record("b", DOG), "Dog")


class _Queue:
    def get_queue_attributes(self, **_: object) -> dict[str, dict[str, str]]:
        return {"Attributes": {"VisibilityTimeout": "72"}}


class _Stage:
    queue_url = "q"

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def client(self, service: str) -> _Queue:
        return _Queue()


def test_a_failed_upload_says_when_the_dlq_has_it_and_what_to_do() -> None:
    hint = images.what_next_after_failure(_Stage("local"), 2)  # type: ignore[arg-type]
    assert "2 FAILED" in hint and "within about 72 s" in hint
    assert "`imgpipe dlq ls`" in hint and "`imgpipe redrive --dry-run`" in hint
    on_dev = images.what_next_after_failure(_Stage("dev"), 1)  # type: ignore[arg-type]
    assert "`imgpipe dlq ls --stage dev`" in on_dev


def test_ls_pending_lists_uploads_without_a_record_as_status_does(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`imgpipe status KEY` says PENDING for an upload with no record; `ls --status pending`
    lists exactly those, a page at a time, and `ls` of outcomes does not."""
    from imgpipe.catalog import Catalog
    from imgpipe.deployment import Access, Deployment

    dep = Deployment(
        "local",
        stack.uploads,
        stack.derived,
        stack.table,
        stack.topic_arn,
        "q",
        "dlq",
        Access(None, "us-east-1"),
    )
    monkeypatch.setattr(images, "deployment", lambda stage, endpoint: dep)
    for key in ("trip/a.jpg", "trip/b c+d.jpg", "trip/done.jpg", "trip/e.jpg", "other/x.jpg"):
        stack.upload(key, b"x")
    Catalog(stack.ddb, stack.table).put(record("trip/done.jpg"))
    run = CliRunner().invoke
    first = run(main, ["ls", "--status", "pending", "--prefix", "trip/", "--limit", "2"])
    assert first.exit_code == 0, first.output
    rows = [line.split()[:2] for line in first.stdout.splitlines()[2:4]]
    assert rows == [["trip/a.jpg", "PENDING"], ["trip/b", "c+d.jpg"]]
    more = first.stdout.splitlines()[-1]
    assert more.startswith("more: imgpipe ls --status pending --prefix trip/ --limit 2 --cursor ")
    rest = run(main, [*shlex.split(more.removeprefix("more: imgpipe "))])
    assert rest.exit_code == 0, rest.output
    assert "trip/e.jpg  PENDING" in rest.stdout and "done" not in rest.stdout
    assert "more:" not in rest.stdout
    as_json = run(main, ["ls", "--status", "PENDING", "--prefix", "other/", "--json"])
    assert json.loads(as_json.stdout) == {
        "items": [{"key": "other/x.jpg", "status": "PENDING"}],
        "cursor": None,
    }
    status = run(main, ["status", "trip/e.jpg"])
    assert status.stdout.startswith("trip/e.jpg  PENDING")
    refused = run(main, ["ls", "--status", "pending", "--label", "dog"])
    assert refused.exit_code == 2 and "PENDING uploads have no labels" in refused.output


def test_ls_pending_stops_after_its_budget_with_a_cursor(stack: Any) -> None:
    """A bucket of finished photos has no pending key to stop at: the search ends after its
    budget of keys with a cursor, never reading the whole bucket in one call."""
    from imgpipe.catalog import Catalog
    from imgpipe.deployment import Access, Deployment

    dep = Deployment(
        *("local", stack.uploads, stack.derived, stack.table, stack.topic_arn, "q", "dlq"),
        Access(None, "us-east-1"),
    )
    catalog = Catalog(stack.ddb, stack.table)
    for n in range(7):
        stack.upload(f"k{n}.jpg", b"x")
        if n != 5:
            catalog.put(record(f"k{n}.jpg"))
    assert images.pending_keys(dep, "", 10, budget=3, page_size=2) == ([], "k2.jpg")
    assert images.pending_keys(dep, "", 10, "k2.jpg", budget=3, page_size=2) == (
        ["k5.jpg"],
        "k5.jpg",
    )
    assert images.pending_keys(dep, "", 10, "k5.jpg", budget=3, page_size=2) == ([], None)
