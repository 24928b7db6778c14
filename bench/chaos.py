"""`make chaos`: N uploads under injected faults and a runner crash; nothing may be lost.

1. its own embedded endpoint; serverless.yml deployed (stage local, function timeout 5 s,
   visibility 30 s so that the crash's in-flight messages come back within the run);
2. a queue subscribed to the SNS topic, to count every notification;
3. a runner process with IMGPIPE_FAULT_RATE (default 0.2: a fifth of all S3/DynamoDB/SNS calls
   fail), SIGKILLed mid-batch once a third of the uploads are final, then a second one;
4. when the queue is drained (retries spent, the rest in the DLQ): redrive with faults off and a
   clean runner;
5. reconcile every key against the catalog, the derived bucket and the notifications.

Prints `uploads=N done=… rejected=… failed=… lost=… duplicates_notified=…`; exits 1 unless
lost=0, duplicates_notified=0 and every upload has the outcome its input calls for.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imgpipe.deployment import Deployment
from imgpipe.local import endpoint
from imgpipe.local.deploy import deploy
from imgpipe.local.stack import discover
from imgpipe.record import ImageRecord
from imgpipe.redrive import Queues, redrive

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in tests/
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


def start_runner(state: Path, log: Path, fault_rate: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "imgpipe.cli", "local", "run", "--retry-visibility", "1"]
    if fault_rate:
        cmd += ["--fault-rate", str(fault_rate)]
    return subprocess.Popen(
        cmd,
        env={**os.environ, endpoint.STATE_DIR_ENV: str(state), "POWERTOOLS_LOG_LEVEL": "ERROR"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the crash kills its workers too
    )


def stop_runner(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


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
    return discover(ep)


def announced(
    stack: Deployment,
    inbox: str,
    runner: subprocess.Popen[bytes],
    target: int,
    timeout: float,
    into: list[ImageRecord],
) -> bool:
    """Gather notifications into ``into`` until ``target`` keys were announced; False if the
    runner died or nothing moved for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while len({n.key for n in into}) < target:
        if runner.poll() is not None or time.monotonic() > deadline:
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
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    phases: list[tuple[str, float]] = []

    def phase(name: str) -> None:
        phases.append((name, time.monotonic() - started))
        print(f"[{time.monotonic() - started:6.1f}s] {name}", flush=True)

    state = Path(tempfile.mkdtemp(prefix="imgpipe-chaos-"))
    os.environ[endpoint.STATE_DIR_ENV] = str(state)
    log = state / "runners.log"
    photos = sorted(corpus_dir().glob("*.jpg"))
    if not photos:
        print(f"no photos in {corpus_dir()}", file=sys.stderr)
        return 2
    ep = endpoint.up()
    try:
        stack = deploy_for_chaos(ep)
        phase(f"deployed to {ep.url}")
        inbox = subscribe_inbox(stack, "chaos-inbox")
        uploads = make_uploads(args.uploads, photos, prefix="chaos/")
        notifications: list[ImageRecord] = []
        runner = start_runner(state, log, args.fault_rate)
        upload_all(stack, uploads)
        phase(
            f"uploaded {len(uploads)} ({sum(u.expected == 'REJECTED' for u in uploads)} not images)"
        )
        target = int(len(uploads) * args.crash_at)
        if not announced(stack, inbox, runner, target, args.timeout, notifications):
            print(f"the runner stopped or stalled; see {log}", file=sys.stderr)
            return 2
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
        phase(f"runner SIGKILLed mid-batch with {target} uploads announced")
        runner = start_runner(state, log, args.fault_rate)
        drained = wait_drained(stack, stack.queue_url, args.timeout)
        stop_runner(runner)
        dlq = queue_depth(stack, stack.dlq_url)
        phase(f"queue drained={drained} under faults; {dlq} messages in the DLQ")
        result = redrive(
            stack.client("sqs"), Queues(stack.queue_url, stack.dlq_url), use_move_task=False
        )
        runner = start_runner(state, log, 0.0)
        drained = wait_drained(stack, stack.queue_url, args.timeout)
        stop_runner(runner)
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
        f"\nfault rate {args.fault_rate:.0%}, 1 runner crash, {dlq} via the DLQ, "
        f"wall {time.monotonic() - started:.0f}s (runner log: {log})"
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
