"""`make chaos`: uploads, overwrites and deletes under injected faults and a crash; nothing may
be lost, announced twice or left behind.

1. its own endpoint (MiniStack); serverless.yml deployed (stage
   local, function timeout 5 s, visibility 30 s, labels off);
2. a queue subscribed to the SNS topic, to count every notification;
3. processing with a fault rate (default 0.2: a fifth of the handler's S3/DynamoDB/SNS calls
   fail with throttling errors) and failed messages returning after 1 s, while three rounds of
   user actions run on the same keys (`--keys`, default 360): first uploads (every 20th not an
   image); at once, racing their processing, overwrites with other bytes, photos replaced by a
   non-image, deletes; then re-uploads of some deleted keys. Once a third of the keys are
   announced, every execution environment is SIGKILLed mid-batch;
4. when the queue is drained (retries spent, the rest in the DLQ): `imgpipe redrive` with
   faults off, as an operator runs it (the redrive function, under its role);
5. every key against its last action (catalog, derived bucket, notifications), and
   `imgpipe reconcile --min-age 0` run from outside for what the derived bucket holds.

Prints `uploads=… overwrites=… deletes=… done=… rejected=… deleted=… failed=… lost=…
duplicates_notified=… orphans=… stale_results=… killed=…`; exits 1 unless lost, failed, wrong
outcomes, orphans and stale results are all 0 and no more outcomes were announced twice than
environments were killed (one killed between a publish and its mark announces again: at least
once, as docs/reliability.md says).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from imgpipe.cli.demo import corpus_dir
from imgpipe.deployment import Deployment
from imgpipe.local import endpoint
from imgpipe.local.deploy import deploy
from imgpipe.local.stack import discover, set_trigger
from imgpipe.record import ImageRecord
from tests.harness.backends import processing
from tests.harness.chaos import (
    Op,
    Reconciliation,
    Script,
    collect,
    drain,
    make_script,
    perform,
    queue_depth,
    reconcile,
    subscribe_inbox,
    wait_drained,
)

PREFIX = "chaos/"


def deploy_for_chaos(ep: endpoint.Endpoint) -> Deployment:
    deploy(
        ep,
        quiet=True,
        # Labels are not what this measures: the thumbnail path alone, faster retries.
        params={"processTimeout": "5", "visibilityTimeout": "30", "labeler": "none"},
    )
    stack = discover(ep)
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
    parser.add_argument("--keys", type=int, default=360, help="keys first uploaded (round 1)")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--crash-at", type=float, default=1 / 3, help="share of keys announced")
    parser.add_argument("--timeout", type=float, default=1200)
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
    ep = endpoint.up()
    try:
        stack = deploy_for_chaos(ep)
        phase(f"deployed to {ep.url} ({ep.kind})")
        inbox = subscribe_inbox(stack, "chaos-inbox")
        script = make_script(args.keys, photos, prefix=PREFIX)
        first, second, third = script.rounds
        notifications: list[ImageRecord] = []
        with processing(stack, fault_rate=args.fault_rate, retry_visibility=1) as running:
            perform(stack, first)
            phase(f"round 1: uploaded {len(first)} keys")
            perform(stack, second)
            phase(f"round 2, racing round 1's processing: {describe(second)}")
            target = int(len(first) * args.crash_at)
            if not announced(stack, inbox, target, args.timeout, notifications):
                print("processing stalled", file=sys.stderr)
                return 2
            killed = running.crash()
            phase(f"execution environments SIGKILLed mid-batch: {killed}; {target} announced")
            perform(stack, third)
            phase(f"round 3: {describe(third)}")
            drained = wait_drained(stack, stack.queue_url, args.timeout)
        dlq = queue_depth(stack, stack.dlq_url)
        phase(f"queue drained={drained} under faults; {dlq} messages in the DLQ")
        moved = redrive_from_outside()
        with processing(stack):
            drained = wait_drained(stack, stack.queue_url, args.timeout)
        phase(f"imgpipe redrive moved {moved} with faults off; drained={drained}")
        notifications += gather(stack, inbox, script, notifications)
        findings, report = reconcile_from_outside()
        phase("imgpipe reconcile: " + report)
        rec = reconcile(stack, script, notifications, findings)
        rec.killed = killed
        phase("reconciled")
    finally:
        endpoint.down()
    print(
        f"\n{ep.kind}: fault rate {args.fault_rate:.0%}, environments killed once ({killed}), "
        f"{dlq} via the DLQ, wall {time.monotonic() - started:.0f}s"
    )
    return verdict(rec)


def describe(ops: Sequence[Op]) -> str:
    counts = Counter("delete" if op.body is None else f"upload ({op.expected})" for op in ops)
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def gather(
    stack: Deployment, inbox: str, script: Script, have: list[ImageRecord]
) -> list[ImageRecord]:
    """SNS -> SQS delivery is asynchronous: gather until each key's final outcome is in (or a
    minute passes: what is missing then is reported as lost, not waited for)."""
    final = {k: op.expected for k, op in script.final().items()}
    seen = {(n.key, n.status) for n in have}

    def complete(got: list[ImageRecord]) -> bool:
        both = seen | {(n.key, n.status) for n in got}
        return all((k, status) in both for k, status in final.items())

    try:
        return collect(stack, inbox, complete, timeout=60)
    except AssertionError:
        return drain(stack, inbox)


def redrive_from_outside() -> int:
    """`imgpipe redrive` as an operator runs it: the stage's redrive function moves the DLQ
    back under its own role, the one sender besides S3 the images queue's policy lets in."""
    imgpipe = str(Path(sys.executable).with_name("imgpipe"))
    out = subprocess.run(
        [imgpipe, "redrive", "--json"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"imgpipe redrive failed: {out.stderr.strip() or out.stdout.strip()}")
    return int(json.loads(out.stdout)["moved"])


def reconcile_from_outside() -> tuple[Counter[str], str]:
    """`imgpipe reconcile` as an operator runs it, against this run's stack."""
    imgpipe = str(Path(sys.executable).with_name("imgpipe"))
    out = subprocess.run(
        [imgpipe, "reconcile", "--prefix", PREFIX, "--min-age", "0", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode not in (0, 1):
        raise SystemExit(f"imgpipe reconcile failed: {out.stderr.strip()}")
    report = json.loads(out.stdout)
    for finding in report["findings"][:20]:
        print(f"  {finding['kind']}: {finding['key']} ({finding['detail']})")
    counts = Counter({k: int(v) for k, v in report["counts"].items()})
    return counts, " ".join(f"{k}={v}" for k, v in report["counts"].items())


def verdict(rec: Reconciliation) -> int:
    print(rec.line())
    if rec.lost_keys:
        print("not as expected:", ", ".join(rec.lost_keys[:20]))
    return 0 if rec.ok else 1


if __name__ == "__main__":
    sys.exit(main())
