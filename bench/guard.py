"""`make bench-guard`: what the local stack's guard (src/imgpipe/local/ministack_guard.py)
costs a request, measured against the same MiniStack with IAM but without the guard, in the
same run, the two endpoints taking turns.

Each round, on each endpoint, signed with its root key: S3 PutObject (256 KiB) and GetObject,
SQS SendMessage, Lambda ListFunctions, DynamoDB ListTables. Prints ms per request (median of
the rounds) and the ratio guarded / unguarded for each call and overall; the guard buffers and
hashes each request's body once more, so the large PUT is where it shows most.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from imgpipe.local import endpoint


def _calls(ep: endpoint.Endpoint) -> dict[str, Callable[[], object]]:
    clients: list[Any] = [endpoint.client(ep, s) for s in ("s3", "sqs", "lambda", "dynamodb")]
    s3, sqs, lam, ddb = clients
    s3.create_bucket(Bucket="bench-guard")
    queue = sqs.create_queue(QueueName="bench-guard")["QueueUrl"]
    body = os.urandom(256 * 1024)
    return {
        "s3 put 256 KiB": lambda: s3.put_object(Bucket="bench-guard", Key="k", Body=body),
        "s3 get 256 KiB": lambda: s3.get_object(Bucket="bench-guard", Key="k")["Body"].read(),
        "sqs send": lambda: sqs.send_message(QueueUrl=queue, MessageBody="x"),
        "lambda list": lambda: lam.list_functions(),
        "dynamodb list": lambda: ddb.list_tables(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args(argv)
    os.environ[endpoint.STATE_DIR_ENV] = tempfile.mkdtemp(prefix="imgpipe-bench-guard-")
    started = [
        endpoint.start_ministack(60, guarded=True),
        endpoint.start_ministack(60, guarded=False),
    ]
    try:
        guarded, plain = (_calls(ep) for ep in started)
        times: dict[str, dict[str, list[float]]] = {"guarded": {}, "plain": {}}
        for _ in range(args.rounds):
            for name, calls in (("guarded", guarded), ("plain", plain)):
                for call, run in calls.items():
                    t0 = time.perf_counter()
                    run()
                    times[name].setdefault(call, []).append((time.perf_counter() - t0) * 1000)
    finally:
        for ep in started:
            endpoint.stop(ep)
    print(f"{args.rounds} rounds, each endpoint in turn; ms per request, median\n")
    print(f"{'call':<16} {'guarded':>8} {'no guard':>9} {'ratio':>6}")
    totals = {"guarded": 0.0, "plain": 0.0}
    for call in guarded:
        g = statistics.median(times["guarded"][call])
        p = statistics.median(times["plain"][call])
        totals["guarded"] += g
        totals["plain"] += p
        print(f"{call:<16} {g:8.2f} {p:9.2f} {g / p:6.2f}")
    ratio = totals["guarded"] / totals["plain"]
    print(f"{'all five':<16} {totals['guarded']:8.2f} {totals['plain']:9.2f} {ratio:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
