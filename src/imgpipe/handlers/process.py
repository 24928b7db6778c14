"""SQS -> process Lambda: each message carries S3 event records; partial batch failures."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap, config
from ..batch import run_in_lanes
from ..codec import Received
from ..events import ParsedBody
from ..observability import count, metrics
from ..pipeline import Pipeline

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def handle_message(
    pipeline: Pipeline, remaining_ms: Callable[[], int], raw: Received, parsed: ParsedBody
) -> None:
    """One message's events, in order. Raise only to have the message retried: a malformed
    or ignored record is acknowledged (retrying cannot change it), logged and counted."""
    record = SQSRecord(raw)
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
            pipeline.handle(event, receive_count, remaining_ms)
        except Exception:
            logger.exception("transient failure; the message will be retried")
            raise


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Received, context: LambdaContext) -> PartialItemFailureResponse:
    pipeline = bootstrap.pipeline()  # here, in the invocation's thread, before any lane
    records = event.get("Records")
    failures = run_in_lanes(
        records if isinstance(records, list) else [],
        lambda raw, parsed: handle_message(
            pipeline, context.get_remaining_time_in_millis, raw, parsed
        ),
        config.settings().record_workers,
        after_each=logger.thread_safe_clear_keys,
    )

    def replay(record: SQSRecord) -> None:  # Powertools builds the response from the outcomes
        error = failures.get(record.message_id)
        if error is not None:
            raise error

    return process_partial_response(
        event=event, record_handler=replay, processor=processor, context=context
    )
