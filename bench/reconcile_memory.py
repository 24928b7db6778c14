"""`make bench-reconcile`: peak memory of `imgpipe reconcile` over a bucket of N objects, for
growing N, against the previous release's way (every listing held in memory) in the same run.

The uploads listing, the catalog and the derived listing are synthetic and lazy (pages made on
request, nothing stored), so the peak tracemalloc measures is the reconciler's own. One object
in a thousand has no record (a finding); every source has one thumbnail.
"""

from __future__ import annotations

import argparse
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from imgpipe import derived
from imgpipe.catalog import PageKey
from imgpipe.outcomes import Status
from imgpipe.ports import Listed
from imgpipe.reconcile import Reconciler
from imgpipe.record import ImageRecord, ThumbnailRef

OLD = datetime(2026, 1, 1, tzinfo=UTC)
PAGE = 1000  # S3's list page


def _key(i: int) -> str:
    return f"photos/{i:08d}.jpg"


def _version(i: int) -> str:
    return f"s:{i:032X}"


@dataclass
class SyntheticStack:
    """An uploads bucket, a catalog and a derived bucket of ``n`` images, made on request."""

    n: int
    unrecorded_every: int = 1000

    def recorded(self, i: int) -> bool:
        return i % self.unrecorded_every != 1

    def record(self, i: int) -> ImageRecord:
        key, version = _key(i), _version(i)
        thumb = derived.thumbnail_key(key, version, "small", "jpg")
        return ImageRecord(
            "uploads",
            key,
            version,
            Status.DONE,
            etag=f"{i:032x}",
            thumbnails=(ThumbnailRef("small", thumb, 128, 85, 100, "image/jpeg"),),
            updated_at=OLD.isoformat(),
        )

    # -- the bucket listings (ports.BucketReader) ----------------------------------------
    def listing(
        self, bucket: str, prefix: str, after: str = "", page_size: int = 1000
    ) -> Iterator[Listed]:
        if bucket == "uploads":
            yield from (Listed(_key(i), f"{i:032x}", 1, OLD) for i in range(self.n))
        elif prefix.startswith(derived.THUMBNAILS):
            for i in range(self.n):
                key = derived.thumbnail_key(_key(i), _version(i), "small", "jpg")
                yield Listed(key, "t", 1, OLD)

    # -- the catalog ----------------------------------------------------------------------
    def page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        limit: int = 25,
        start: PageKey | None = None,
        **_: Any,
    ) -> tuple[list[ImageRecord], PageKey | None]:
        first = 0 if start is None else int(start.key[7:15]) + 1
        records: list[ImageRecord] = []
        i = first
        while i < self.n and len(records) < limit:
            if self.recorded(i):
                records.append(self.record(i))
            i += 1
        return records, (PageKey(bucket, _key(i - 1)) if i < self.n else None)

    def get(self, bucket: str, key: str) -> ImageRecord | None:
        i = int(key[7:15])
        return self.record(i) if self.recorded(i) else None


def held_in_memory(stack: SyntheticStack) -> int:
    """The previous release's reading: every listing in a dict or list, then judged."""
    sources = {o.key: o for o in stack.listing("uploads", "")}
    records: dict[str, ImageRecord] = {}
    start: PageKey | None = None
    while True:
        page, start = stack.page("uploads", limit=500, start=start)
        records.update((r.key, r) for r in page)
        if start is None:
            break
    objects = list(stack.listing("derived", "thumbnails/"))
    return sum(1 for k in sources if k not in records) + len(objects) - len(objects)


def streamed(stack: SyntheticStack) -> int:
    reconciler = Reconciler(
        stack,  # type: ignore[arg-type]
        stack,  # type: ignore[arg-type]
        "uploads",
        "derived",
        min_age=timedelta(0),
    )
    report = reconciler.run()
    assert report.sources == stack.n and report.derived == stack.n
    return report.count("unprocessed")


def peak_mib(run: Any, stack: SyntheticStack) -> tuple[float, int]:
    tracemalloc.start()
    try:
        found = run(stack)
        return tracemalloc.get_traced_memory()[1] / 2**20, found
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--old-up-to", type=int, default=100_000, help="the old way's largest N")
    args = parser.parse_args()
    print(f"{'objects':>10} {'streamed MiB':>13} {'held MiB':>9} {'held/streamed':>14}")
    for n in (int(x) for x in args.sizes.split(",")):
        stack = SyntheticStack(n)
        new, found = peak_mib(streamed, stack)
        assert found == len([i for i in range(n) if not stack.recorded(i)])
        if n <= args.old_up_to:
            old, _ = peak_mib(held_in_memory, stack)
            print(f"{n:>10} {new:>13.1f} {old:>9.1f} {old / new:>13.1f}x")
        else:
            print(f"{n:>10} {new:>13.1f} {'-':>9} {'-':>14}")


if __name__ == "__main__":
    main()
