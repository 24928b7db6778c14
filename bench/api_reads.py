"""`make bench-api`: DynamoDB reads per status-API list request, this release against the
previous one's reading (same catalog, same run): one Query per missing item, no cap.

A catalog of N records (moto, in-process) in which one status is rare; the requests a gallery or
an attacker sends: a page of a rare status, a page of everything, a deep prefix. Each request's
Query calls are counted with a botocore hook. Prints reads per request for both and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3
from moto import mock_aws

from imgpipe import api as api_module
from imgpipe import catalog as catalog_module
from imgpipe.api import StatusApi
from imgpipe.catalog import Catalog
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord
from imgpipe.storage import Presigned
from tests.harness.tables import create_images_table

REQUESTS: dict[str, dict[str, str]] = {
    "rare status, limit 1": {"status": "REJECTED", "limit": "1"},
    "rare status, limit 100": {"status": "REJECTED", "limit": "100"},
    "everything, limit 100": {"limit": "100"},
    "prefix, limit 25": {"prefix": "album-7/"},
}


def seed(records: int, rare_every: int) -> tuple[Any, Any]:
    ddb = boto3.client("dynamodb")
    create_images_table(ddb)
    catalog = Catalog(ddb, "images")
    for i in range(records):
        status = Status.REJECTED if i % rare_every == rare_every - 1 else Status.DONE
        catalog.put(ImageRecord("uploads", f"album-{i % 10}/{i:06d}.jpg", "s:1", status))
    return ddb, catalog


def counter(ddb: Any) -> Callable[[], int]:
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    ddb.meta.events.register("before-call.dynamodb.Query", count)
    return lambda: calls[0]


def measure(api: StatusApi, reads: Callable[[], int], query: dict[str, str]) -> tuple[int, int]:
    before = reads()
    response = api.handle("GET", "/images", query)
    assert response.status == 200, response
    items = response.body["items"]
    assert isinstance(items, list)
    return reads() - before, len(items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rare-every", type=int, default=200, help="1 record in N is REJECTED")
    args = parser.parse_args()
    with mock_aws():
        ddb, catalog = seed(args.records, args.rare_every)
        reads = counter(ddb)
        s3 = boto3.client("s3")
        api = StatusApi(catalog, Presigned(s3), "uploads", "derived")
        print(f"{args.records} records, 1 in {args.rare_every} REJECTED; Query calls per request")
        print(f"{'request':<26}{'before':>8}{'now':>6}{'items':>7}{'ratio':>8}")
        cap, batch = api_module.MAX_READS, catalog_module._FILTERED_READ
        for name, query in REQUESTS.items():
            # the baseline: read until the page is full, as many items per Query as missing
            api_module.MAX_READS, catalog_module._FILTERED_READ = 0, 0
            before, _ = measure(api, reads, query)
            api_module.MAX_READS, catalog_module._FILTERED_READ = cap, batch
            now, items = measure(api, reads, query)
            print(f"{name:<26}{before:>8}{now:>6}{items:>7}{now / before:>8.2f}")
        print(f"now: at most {cap} Query calls per request, {batch} items each when filtering")
    return 0


if __name__ == "__main__":
    sys.exit(main())
