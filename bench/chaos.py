"""`make chaos`: N uploads under injected faults and a crash; nothing may be lost.

1. its own endpoint (MiniStack, or moto with `--backend moto`); serverless.yml deployed (stage
   local, function timeout 5 s, visibility 30 s, labels off);
2. a queue subscribed to the SNS topic, to count every notification;
3. processing with a fault rate (default 0.2: a fifth of the handler's S3/DynamoDB/SNS calls
   fail with throttling errors) and failed messages returning after 1 s; once a third of the
   uploads are announced, every execution environment is SIGKILLed mid-batch;
4. when the queue is drained (retries spent, the rest in the DLQ): redrive with faults off;
5. reconcile every key against the catalog, the derived bucket and the notifications.

Prints `uploads=N done=… rejected=… failed=… lost=… duplicates_notified=…`; exits 1 unless
lost=0, duplicates_notified=0 and every upload has the outcome its input calls for.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imgpipe.deployment import Deployment
from imgpipe.local import endpoint
from imgpipe.local.deploy import deploy
from imgpipe.local.stack import discover, set_trigger
from imgpipe.record import ImageRecord
from imgpipe.redrive import Queues, redrive

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in tests/
from tests.harness.backends import processing
from tests.harness.chaos import (
    Reconciliation,
    Upload,
    collect,
    drain,
    make_uploads,
    queue_depth,
    reconcile,
    subscribe_inbox,
    wait_drained,
)

from imgpipe.cli.demo import corpus_dir


def upload_all(stack: Deployment, uploads: list[Upload]) -> None:
    s3 = stack.client("s3")

    def put(u: Upload) -> None:
        s3.put_object(Bucket=stack.uploads_bucket, Key=u.key, Body=u.body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, uploads))


def deploy_for_chaos(ep: endpoint.Endpoint) -> Deployment:
    deploy(
        ep,
        quiet=True,
        # Labels are not what this measures: the thumbnail path alone, faster retries.
        params={"processTimeout": "5", "visibilityTimeout": "30", "labeler": "none"},
    )
    stack = discover(ep)
    if stack.kind == "ministack":
        set_trigger(stack, False)  # processing starts with the faults, below
    return stack


def announced(
    stack: Deployment, inbox: str, target: int, timeout: float, into: list[ImageRecord]
) -> bool:
    """Gather notifications into ``into`` until ``target`` keys were announced; False after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while len({n.key for n in into}) < target:
        if time.monotonic() > deadline:
            return False
        into += drain(stack, inbox)
        time.sleep(0.2)  # the polling interval
    return True


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--crash-at", type=float, default=1 / 3, help="fraction final at the crash")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--backend", choices=endpoint.BACKENDS, default=None)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.monotonic()

    def phase(name: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {name}", flush=True)

    os.environ[endpoint.STATE_DIR_ENV] = tempfile.mkdtemp(prefix="imgpipe-chaos-")
    photos = sorted(corpus_dir().glob("*.jpg"))
    if not photos:
        print(f"no photos in {corpus_dir()}", file=sys.stderr)
        return 2
    ep = endpoint.up(backend=args.backend, say=print)
    try:
        stack = deploy_for_chaos(ep)
        phase(f"deployed to {ep.url} ({ep.kind})")
        inbox = subscribe_inbox(stack, "chaos-inbox")
        uploads = make_uploads(args.uploads, photos, prefix="chaos/")
        notifications: list[ImageRecord] = []
        with processing(stack, fault_rate=args.fault_rate, retry_visibility=1) as running:
            upload_all(stack, uploads)
            rejected = sum(u.expected == "REJECTED" for u in uploads)
            phase(f"uploaded {len(uploads)} ({rejected} not images)")
            target = int(len(uploads) * args.crash_at)
            if not announced(stack, inbox, target, args.timeout, notifications):
                print("processing stalled", file=sys.stderr)
                return 2
            killed = running.crash()
            phase(f"execution environments SIGKILLed mid-batch: {killed}; {target} announced")
            drained = wait_drained(stack, stack.queue_url, args.timeout)
        dlq = queue_depth(stack, stack.dlq_url)
        phase(f"queue drained={drained} under faults; {dlq} messages in the DLQ")
        result = redrive(
            stack.client("sqs"), Queues(stack.queue_url, stack.dlq_url), use_move_task=False
        )
        with processing(stack):
            drained = wait_drained(stack, stack.queue_url, args.timeout)
        # SNS -> SQS delivery is asynchronous: gather until every upload's outcome is in
        keys = {u.key for u in uploads}
        seen = {n.key for n in notifications}
        notifications += collect(
            stack, inbox, lambda got: keys <= seen | {n.key for n in got}, timeout=60
        )
        phase(f"redrove {result.moved} with faults off; drained={drained}")
        rec = reconcile(stack, uploads, notifications)
        phase("reconciled")
    finally:
        endpoint.down()
    print(
        f"\n{ep.kind}: fault rate {args.fault_rate:.0%}, environments killed once, "
        f"{dlq} via the DLQ, wall {time.monotonic() - started:.0f}s"
    )
    return verdict(rec)


def verdict(rec: Reconciliation) -> int:
    print(rec.line())
    if rec.lost_keys:
        print("lost:", ", ".join(rec.lost_keys[:20]))
    ok = rec.lost == 0 and rec.duplicates_notified == 0 and rec.wrong == 0 and rec.failed == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
