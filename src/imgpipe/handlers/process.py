"""SQS -> process Lambda: each message carries S3 event records; partial batch failures."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from .. import aws
from ..catalog import Catalog
from ..config import ConfigError, Settings, settings, watermark_from_image
from ..errors import PipelineError, describe
from ..events import ParsedBody, read_body
from ..imaging.types import MAX_MARK_BYTES, ImageRejected, Limits, WatermarkError
from ..labels import make_labeler
from ..lanes import lanes
from ..notify import Notifier
from ..observability import count, metrics
from ..pipeline import Pipeline
from ..storage import ObjectStore

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def pipeline() -> Pipeline:
    store = ObjectStore(aws.s3())
    cfg = with_watermark_image(settings(), store)
    return Pipeline(
        cfg,
        store,
        Catalog(aws.dynamodb(), cfg.table_name),
        Notifier(aws.sns(), cfg.topic_arn),
        make_labeler(cfg.labels, aws.rekognition),
    )


def with_watermark_image(cfg: Settings, store: ObjectStore) -> Settings:
    """An image watermark is read once, at start-up, from the derived bucket's watermarks/
    prefix (the one place there the function may read), refused by size before its body is
    read: a missing, empty or oversized one fails the start, with its key, not every image."""
    key = cfg.watermark_image_key
    if not key:
        return cfg
    try:
        data, _ = store.fetch(cfg.derived_bucket, key, "", Limits(max_bytes=MAX_MARK_BYTES))
    except (ClientError, PipelineError, ImageRejected) as exc:
        raise ConfigError(
            f"WATERMARK: cannot use s3://{cfg.derived_bucket}/{key} ({describe(exc)})"
        ) from None
    mark = watermark_from_image(os.environ, data)
    from ..imaging.watermark import check  # Pillow: only when a watermark is configured

    try:
        check(mark)
    except WatermarkError as exc:
        raise ConfigError(f"WATERMARK: s3://{cfg.derived_bucket}/{key}: {exc}") from None
    return replace(cfg, render=replace(cfg.render, watermark=mark))


def handle_message(record: SQSRecord, parsed: ParsedBody) -> None:
    """One message's events (``parsed``: its body, read once), in order. Raise only to have
    the message retried: a malformed or ignored record is acknowledged (retrying cannot change
    it), logged and counted."""
    receive_count = int(record.attributes.approximate_receive_count or 1)
    logger.thread_safe_append_keys(message_id=record.message_id, envelope=parsed.envelope)
    for why in parsed.malformed:
        logger.error("malformed record acknowledged", extra={"why": why})
        count("Malformed")
    for name in parsed.ignored:
        logger.info("event not acted on", extra={"event_name": name})
        count("Ignored")
    for event in parsed.events:
        logger.thread_safe_append_keys(s3_key=event.key)
        try:
            pipeline().handle(event, receive_count, _remaining_ms)
        except Exception:
            # The batch processor reports the message for retry; say which and why here.
            logger.exception("transient failure; the message will be retried")
            raise


def _parse(record: dict[str, Any]) -> ParsedBody:
    body = record.get("body")
    return read_body(body if isinstance(body, str) else "")


def _run_lane(
    messages: list[tuple[dict[str, Any], ParsedBody]], failures: dict[str, BaseException]
) -> None:
    for raw, parsed in messages:
        record = SQSRecord(raw)
        try:
            handle_message(record, parsed)
        except Exception as exc:  # noqa: BLE001 - reported per message below
            failures[record.message_id] = exc
        finally:
            logger.thread_safe_clear_keys()


def process_concurrently(records: list[dict[str, Any]]) -> dict[str, BaseException]:
    """Each message's outcome (message id -> the error that must retry it): lanes of messages
    that share no key run in parallel, each lane in batch order (see lanes.py)."""
    failures: dict[str, BaseException] = {}
    # Built here, in the invocation's thread, before any lane: models, clients and the
    # watermark load once (the lanes would otherwise race to build it, each in its own thread).
    pipeline()
    parsed = [_parse(r) for r in records]
    groups = lanes([[f"{e.bucket}/{e.key}" for e in p.events] for p in parsed])
    workers = min(settings().record_workers, len(groups)) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imgpipe-lane") as pool:
        done = [
            pool.submit(_run_lane, [(records[i], parsed[i]) for i in lane], failures)
            for lane in groups
        ]
        for future in done:
            future.result()
    return failures


def _remaining_ms() -> int:
    return _invocation["context"].get_remaining_time_in_millis()


# The invocation being handled (one at a time per execution environment): the record handler
# reads its remaining time.
_invocation: dict[str, LambdaContext] = {}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _invocation["context"] = context
    records = event.get("Records")
    failures = process_concurrently(records if isinstance(records, list) else [])

    # Powertools builds the partial-failure response (and raises when all failed) from the
    # outcomes the lanes already reached.
    def replay(record: SQSRecord) -> None:
        error = failures.get(record.message_id)
        if error is not None:
            raise error

    return process_partial_response(
        event=event, record_handler=replay, processor=processor, context=context
    )
