"""Backfill planning and sending on moto: what is queued, what is skipped, checkpoints that
resume without loss or repeats, inventory reports, the rate limit, the function's payload."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgpipe import config
from imgpipe.backfill import (
    Backfill,
    BackfillError,
    Checkpoint,
    QueueSender,
    RateLimit,
    parse_request,
)
from imgpipe.events import read_body
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord
from imgpipe.storage import ObjectStore
from tests.unit.conftest import FakeStack

KEYS = ["a.jpg", "b c+d.jpg", "dir/é.png", "dir/z%20.jpg", "x/日本.jpg"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def _queue(stack: FakeStack) -> str:
    url: str = stack.sqs.create_queue(QueueName="images")["QueueUrl"]
    return url


def _drain(stack: FakeStack, url: str) -> list[str]:
    """The keys of every backfill message in the queue (deleted as read)."""
    keys: list[str] = []
    while True:
        got = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        messages = got.get("Messages", [])
        if not messages:
            return keys
        for m in messages:
            (event,) = read_body(m["Body"]).events
            assert event.is_backfill and event.bucket == "uploads" and event.etag
            keys.append(event.key)
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _run(stack: FakeStack, url: str | None, **kw: Any) -> Backfill:
    sender = None if url is None else QueueSender(stack.sqs, url, RateLimit(10_000))
    return Backfill(
        ObjectStore(stack.s3),
        stack.catalog,
        sender,
        "uploads",
        kw.pop("fingerprint", config.settings().fingerprint),
        min_age=kw.pop("min_age", timedelta(0)),
        **kw,
    )


def _record(stack: FakeStack, key: str, etag: str, status: Status, settings: str) -> None:
    stack.catalog.put(ImageRecord("uploads", key, "s:0A", status, etag=etag, settings=settings))


def test_only_what_has_no_current_result_is_queued(stack: FakeStack) -> None:
    url = _queue(stack)
    etags = {k: stack.upload(k, k.encode()) for k in KEYS}
    current = config.settings().fingerprint
    _record(stack, "a.jpg", etags["a.jpg"], Status.DONE, current)  # current: skipped
    _record(stack, "b c+d.jpg", "other-bytes", Status.DONE, current)  # other bytes
    _record(stack, "dir/é.png", etags["dir/é.png"], Status.REJECTED, current)  # final: skipped
    _record(stack, "dir/z%20.jpg", etags["dir/z%20.jpg"], Status.DONE, "old")  # other settings
    _record(stack, "gone.jpg", "e", Status.DONE, current)  # no object: not listed
    done = _run(stack, url).run(Checkpoint())
    assert done.done and done.after == "x/日本.jpg"
    assert sorted(_drain(stack, url)) == ["b c+d.jpg", "dir/z%20.jpg", "x/日本.jpg"]
    assert done.counts == {"listed": 5, "queued": 3, "current": 2, "recent": 0, "unchanged": 0}
    changed = _run(stack, url).run(Checkpoint(mode="settings-changed"))
    assert _drain(stack, url) == ["dir/z%20.jpg"]
    assert (changed.counts["queued"], changed.counts["unchanged"]) == (1, 2)


def test_a_second_run_over_current_records_queues_nothing(stack: FakeStack) -> None:
    url = _queue(stack)
    for key in KEYS:
        _record(stack, key, stack.upload(key, key.encode()), Status.DONE, "fp")
    done = _run(stack, url, fingerprint="fp").run(Checkpoint(prefix="dir/"))
    assert done.counts["queued"] == 0 and done.counts["listed"] == 2 and not _drain(stack, url)


def test_recent_objects_are_left_to_their_own_events(stack: FakeStack) -> None:
    url = _queue(stack)
    stack.upload("new.jpg", b"x")
    done = _run(stack, url, min_age=timedelta(minutes=5)).run(Checkpoint())
    assert done.counts["recent"] == 1 and not _drain(stack, url)


def test_a_finished_recent_photo_counts_as_current_and_the_summary_says_why(
    stack: FakeStack,
) -> None:
    """Uploaded a minute ago and already DONE: current, not "too recent"; the words say what
    each count means."""
    from imgpipe.cli.backfill import _summary

    url = _queue(stack)
    etag = stack.upload("done.jpg", b"x")
    _record(stack, "done.jpg", etag, Status.DONE, config.settings().fingerprint)
    stack.upload("waiting.jpg", b"y")
    done = _run(stack, url, min_age=timedelta(minutes=5)).run(Checkpoint())
    assert (done.counts["current"], done.counts["recent"], done.counts["queued"]) == (1, 1, 0)
    said = _summary(done)
    assert "1 current (done under the stage's settings)" in said
    assert "1 too recent (uploaded within --min-age" in said and "--min-age 0" in said


def test_a_dry_run_counts_and_sends_nothing(stack: FakeStack) -> None:
    url = _queue(stack)
    for key in KEYS:
        stack.upload(key, b"x")
    done = _run(stack, None).run(Checkpoint())
    assert done.counts["queued"] == len(KEYS) and not _drain(stack, url)


def test_an_interrupted_run_resumes_without_losing_or_repeating(stack: FakeStack) -> None:
    url = _queue(stack)
    keys = [f"k/{i:04d}.jpg" for i in range(250)]
    for key in keys:
        stack.upload(key, key.encode())
    first = _run(stack, url).run(Checkpoint(), max_messages=120)
    assert not first.done and first.counts["queued"] == 120 and first.after == keys[119]
    # the checkpoint survives a round trip through JSON (the CLI's file)
    saved = Checkpoint.from_json(json.loads(json.dumps(first.to_json())))
    rest = _run(stack, url).run(saved)
    assert rest.done and rest.counts["queued"] == 250 and rest.counts["listed"] == 250
    assert sorted(_drain(stack, url)) == keys  # each exactly once


def test_a_slice_ends_when_its_time_is_up(stack: FakeStack) -> None:
    url = _queue(stack)
    for i in range(300):
        stack.upload(f"{i:04d}", b"x")
    clock = FakeClock()
    ticking = _run(stack, url, clock=lambda: clock.now)
    original = ticking._chunk

    def slow_chunk(*args: Any) -> int:
        clock.now += 10  # each chunk of 100 takes "10 s"
        return original(*args)

    ticking._chunk = slow_chunk  # type: ignore[method-assign, assignment]
    part = ticking.run(Checkpoint(), max_seconds=15)
    assert (part.done, part.counts["listed"], part.after) == (False, 200, "0199")
    assert part.seconds == pytest.approx(20)


def _inventory(stack: FakeStack, rows: list[list[str]], versioned: bool = False) -> str:
    stack.s3.create_bucket(Bucket="inventory")
    schema = "Bucket, Key, Size, LastModifiedDate, ETag"
    schema += ", IsLatest, IsDeleteMarker" if versioned else ""
    files = []
    for n, part in enumerate((rows[:3], rows[3:])):
        buf = io.StringIO()
        csv.writer(buf).writerows(part)
        key = f"uploads/inv/data/{n}.csv.gz"
        stack.s3.put_object(
            Bucket="inventory", Key=key, Body=gzip.compress(buf.getvalue().encode())
        )
        files.append({"key": key, "size": 1, "MD5checksum": "x"})
    manifest = {
        "sourceBucket": "uploads",
        "destinationBucket": "arn:aws:s3:::inventory",
        "fileFormat": "CSV",
        "fileSchema": schema,
        "files": files,
    }
    key = "uploads/inv/2026-12-01T00-00Z/manifest.json"
    stack.s3.put_object(Bucket="inventory", Key=key, Body=json.dumps(manifest).encode())
    return f"s3://inventory/{key}"


def test_an_inventory_report_is_read_with_its_url_encoded_keys_and_resumed_by_row(
    stack: FakeStack,
) -> None:
    url = _queue(stack)
    rows = [
        ["uploads", quote(k), "1", "2026-01-01T00:00:00.000Z", "etag" + str(i), "true", "false"]
        for i, k in enumerate(KEYS)
    ]
    rows.append(["uploads", "old.jpg", "1", "2026-01-01T00:00:00.000Z", "e", "false", "false"])
    uri = _inventory(stack, rows, versioned=True)
    first = _run(stack, url).run(Checkpoint(inventory=uri), max_messages=4)
    assert (first.after, first.done) == ("1:1", False)
    rest = _run(stack, url).run(first)
    assert rest.done and rest.counts["listed"] == len(KEYS)  # a non-current version: not listed
    assert sorted(_drain(stack, url)) == sorted(KEYS)
    only = _run(stack, url).run(Checkpoint(inventory=uri, prefix="dir/"))
    assert only.counts["queued"] == 2 and sorted(_drain(stack, url)) == [
        "dir/z%20.jpg",
        "dir/é.png",
    ]


def test_an_inventory_of_another_bucket_or_format_is_refused(stack: FakeStack) -> None:
    uri = _inventory(stack, [])
    with pytest.raises(BackfillError, match="not the uploads bucket"):
        Backfill(ObjectStore(stack.s3), stack.catalog, None, "elsewhere", "fp").run(
            Checkpoint(inventory=uri)
        )
    with pytest.raises(BackfillError, match=r"manifest\.json"):
        parse_request({"inventory": "s3://bucket/report.csv"}, rate=1, min_age=0, time_limit=60)


def test_the_rate_limit_spaces_sends() -> None:
    clock = FakeClock()
    limit = RateLimit(20, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        limit.take(10)  # 200 messages at 20/s: about 10 s (the first ten go at once)
    assert clock.slept == pytest.approx(9.5, abs=0.01)


class FlakySqs:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        self.sent: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            self.sent += [e["MessageBody"] for e in Entries[1:]]
            return {"Failed": [{"Id": Entries[0]["Id"], "Code": "Throttled"}]}
        self.sent += [e["MessageBody"] for e in Entries]
        return {}


def test_entries_sqs_refuses_are_sent_again_and_never_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("imgpipe.backfill.time.sleep", lambda _: None)
    sqs = FlakySqs(failures=2)
    QueueSender(sqs, "q", RateLimit(1e9)).send([str(i) for i in range(25)])  # type: ignore[arg-type]
    assert sorted(sqs.sent, key=int) == [str(i) for i in range(25)] and sqs.calls == 5
    with pytest.raises(RuntimeError, match=r"refused 1 backfill messages 5 times"):
        QueueSender(FlakySqs(failures=99), "q", RateLimit(1e9)).send(["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ([], "JSON object"),
        ({"prefx": "a"}, "unknown fields"),
        ({"rate": "fast"}, "rate must be"),
        ({"dry_run": 1}, "dry_run must be a bool"),
        ({"max_messages": True}, "max_messages must be"),
        ({"rate": 0}, "rate must be above 0"),
        ({"rate": 1000.5}, "rate must be at most 1,000 messages per second"),
        ({"min_age": -1}, "not negative"),
        ({"mode": "all"}, "mode must be one of"),
        ({"checkpoint": {"mode": "x"}}, "mode must be one of"),
        ({"checkpoint": {"counts": {"queued": -1}}}, "non-negative"),
        ({"checkpoint": {"after": 3}}, "after must be a string"),
        ({"keys": "a.jpg"}, "keys must be a list"),
        ({"keys": []}, "keys must be 1 to 100"),
        ({"keys": ["a"] * 101}, "keys must be 1 to 100"),
        ({"keys": ["a", 3]}, "keys must be 1 to 100"),
        ({"keys": ["x" * 1025]}, "keys must be 1 to 100"),
        ({"keys": ["é" * 513]}, "keys must be 1 to 100"),  # 1,026 bytes
        ({"keys": ["a\ud800.jpg"]}, "keys must be 1 to 100"),  # no UTF-8 for it
        ({"keys": ["a"], "prefix": "p/"}, "keys is a run of its own"),
        ({"keys": ["a"], "chain": True}, "keys is a run of its own"),
    ],
)
def test_malformed_requests_say_what_to_change(payload: object, error: str) -> None:
    with pytest.raises(BackfillError, match=error):
        parse_request(payload, rate=20, min_age=300, time_limit=870)


def test_a_request_takes_the_stage_defaults_and_never_outlives_the_function() -> None:
    request = parse_request(
        {"prefix": "p/", "max_seconds": 5000}, rate=20, min_age=300, time_limit=870
    )
    assert (request.rate, request.min_age, request.max_seconds) == (20.0, 300, 870)
    assert request.checkpoint == Checkpoint(prefix="p/")
    resumed = parse_request(
        {"checkpoint": replace(request.checkpoint, after="p/k").to_json(), "prefix": "ignored"},
        rate=20,
        min_age=300,
        time_limit=870,
    )
    assert (resumed.checkpoint.prefix, resumed.checkpoint.after) == ("p/", "p/k")


def test_the_function_estimates_a_dry_run_and_queues_a_real_one(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    from imgpipe.handlers import backfill as handler

    url = _queue(stack)
    monkeypatch.setenv("IMAGES_QUEUE_URL", url)
    monkeypatch.setenv("MAX_CONCURRENCY", "10")
    config.clear_caches()
    for key in KEYS:
        stack.upload(key, b"x")
    dry = handler.handler({"dry_run": True, "min_age": 0}, lambda_context)
    estimate: Any = dry["estimate"]
    assert estimate["images"] == len(KEYS)
    assert estimate["dollars"] > 0 and estimate["seconds"] > 0 and not _drain(stack, url)
    real = handler.handler({"min_age": 0}, lambda_context)
    assert isinstance(real["checkpoint"], dict) and real["checkpoint"]["done"]
    assert sorted(_drain(stack, url)) == sorted(KEYS)
    assert handler.handler({"rate": -1}, lambda_context) == {
        "error": "rate must be above 0; max_seconds, max_messages, min_age, hops not negative"
    }


@pytest.mark.parametrize(
    ("labeler", "billed"), [("rekognition", ["labels", "text"]), ("local", []), ("none", [])]
)
def test_the_estimate_bills_rekognition_only_when_the_stage_uses_it(
    stack: FakeStack,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LambdaContext,
    labeler: str,
    billed: list[str],
) -> None:
    from imgpipe.handlers import backfill as handler

    monkeypatch.setenv("IMAGES_QUEUE_URL", _queue(stack))
    monkeypatch.setenv("LABELER", labeler)
    monkeypatch.setenv("DETECTORS", "labels,text")
    config.clear_caches()
    stack.upload(KEYS[0], b"x")
    estimate: Any = handler.handler({"dry_run": True, "min_age": 0}, lambda_context)["estimate"]
    assert estimate["detectors"] == billed
    assert (estimate["dollars"] > 0.001) is bool(billed)  # $0.002 of Rekognition per image


def test_at_a_slow_rate_a_slice_ends_on_time_and_the_next_goes_on_from_there(
    stack: FakeStack,
) -> None:
    """A chunk is sized to what the rate lets out in the time left: at 1 message a second a
    10 s slice queues about 10, not a whole chunk of 100 that would outlive the function."""
    url = _queue(stack)
    keys = [f"slow/{i:03d}.jpg" for i in range(50)]
    for key in keys:
        stack.upload(key, key.encode())
    clock = FakeClock()
    sender = QueueSender(stack.sqs, url, RateLimit(1, clock=clock, sleep=clock.sleep))
    run = Backfill(
        ObjectStore(stack.s3), stack.catalog, sender, "uploads", "fp", timedelta(0), clock=clock
    )
    first = run.run(Checkpoint(prefix="slow/"), max_seconds=10)
    assert clock.now <= 12 and 8 <= first.counts["queued"] <= 12, (clock.now, first.counts)
    rest = run.run(first, max_seconds=1000)
    assert rest.done and sorted(_drain(stack, url)) == keys


def test_two_runs_on_one_checkpoint_file_cannot_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They would send the same keys and overwrite each other's progress: the second is
    refused with what to do, before it asks the stage anything; the file is free again once
    the first ends."""
    from click.testing import CliRunner

    from imgpipe.cli import backfill as command
    from imgpipe.cli import main

    path = tmp_path / "run.json"

    class Untouchable:
        def client(self, service: str) -> Any:
            raise AssertionError(f"the refused run asked {service}")

    monkeypatch.setattr(command, "deployment", lambda *_: Untouchable())
    args = ["backfill", "--checkpoint", str(path), "--yes"]
    with command._only_run(path):
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 1, refused.output
        assert "another imgpipe backfill is using" in refused.output
        assert "--checkpoint" in refused.output
    with command._only_run(path):  # released: taken again
        pass


def test_the_cli_refuses_a_rate_above_the_cap() -> None:
    from click.testing import CliRunner

    from imgpipe.cli import main

    refused = CliRunner().invoke(main, ["backfill", "--rate", "5000", "--yes"])
    assert refused.exit_code == 2 and "5000" in refused.output and "1000" in refused.output
