"""One SQS batch, its messages run in lanes (see ``lanes.py``): messages that share a key run
in batch order in one thread, other lanes side by side. Returns each failed message's error,
for Powertools to turn into the partial-failure response."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .codec import Received
from .events import ParsedBody, read_body
from .lanes import lanes

# A message's handler: raises to have the message retried.
MessageHandler = Callable[[Received, ParsedBody], None]


def _parse(record: Received) -> ParsedBody:
    body = record.get("body")
    return read_body(body if isinstance(body, str) else "")


def run_in_lanes(
    records: list[Received],
    handle: MessageHandler,
    workers: int,
    after_each: Callable[[], None] = lambda: None,
) -> dict[str, BaseException]:
    """Each failed message's id -> the error that must retry it. Every body is read once;
    ``after_each`` runs after every message in its lane's thread (clearing log keys)."""
    parsed = [_parse(r) for r in records]
    groups = lanes([[f"{e.bucket}/{e.key}" for e in p.events] for p in parsed])
    failures: dict[str, BaseException] = {}

    def run(lane: list[int]) -> None:
        for i in lane:
            try:
                handle(records[i], parsed[i])
            except Exception as exc:  # noqa: BLE001 - reported per message
                failures[str(records[i].get("messageId", ""))] = exc
            finally:
                after_each()

    size = min(workers, len(groups)) or 1
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="imgpipe-lane") as pool:
        for future in [pool.submit(run, lane) for lane in groups]:
            future.result()
    return failures
