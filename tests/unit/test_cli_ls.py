"""`imgpipe ls --label`: whole pages until enough match, a cursor back when it stops early."""

from __future__ import annotations

from collections.abc import Mapping

from imgpipe.api import Page
from imgpipe.cli import images
from imgpipe.labels import Label, LabelResult
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord


def record(key: str, *labels: Label) -> ImageRecord:
    findings = LabelResult("local", 1.0, labels=labels) if labels else None
    return ImageRecord("uploads", key, "v", Status.DONE, findings=findings)


DOG = Label("Dog", 90.0, parents=("Animal", "Pet"))
CAR = Label("Car", 90.0, parents=("Vehicle",))


class Pages:
    """A catalog of ``n`` pages of 100: one dog on each page whose number divides by 3."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.asked: list[dict[str, str]] = []

    def page(self, query: Mapping[str, str]) -> Page:
        self.asked.append(dict(query))
        number = int(query.get("cursor", "0"))
        records = [
            record(f"{number:03d}/{i:03d}", DOG if number % 3 == 0 and i == 7 else CAR)
            for i in range(int(query["limit"]))
        ]
        return Page(records, str(number + 1) if number + 1 < self.n else None)


def test_reads_whole_pages_until_enough_match() -> None:
    api = Pages(10)
    found, cursor = images._labelled(api, {"limit": "2", "prefix": "p"}, "animal", 2)
    assert [r.key for r in found] == ["000/007", "003/007"]
    assert cursor == "4"  # the next call starts after the last page read, nothing skipped
    assert all(q["limit"] == "100" and q["prefix"] == "p" for q in api.asked)
    found, cursor = images._labelled(api, {"limit": "2", "cursor": cursor}, "PET", 2)
    assert [r.key for r in found] == ["006/007", "009/007"] and cursor is None


def test_stops_after_the_page_budget_with_a_cursor() -> None:
    api = Pages(100)
    found, cursor = images._labelled(api, {"limit": "25"}, "cat", 25)
    assert found == [] and len(api.asked) == images.LABEL_SEARCH_PAGES
    assert cursor == str(images.LABEL_SEARCH_PAGES)


def test_records_without_findings_never_match() -> None:
    assert not images._has_label(record("a"), "dog")
    assert images._has_label(record("b", DOG), "Dog")
