"""SQS -> process Lambda: each message carries S3 event records; partial batch failures."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws
from ..catalog import Catalog
from ..config import settings
from ..events import read_body
from ..labels import make_labeler
from ..notify import Notifier
from ..observability import metrics
from ..pipeline import Pipeline
from ..storage import ObjectStore

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def pipeline() -> Pipeline:
    cfg = settings()
    return Pipeline(
        cfg,
        ObjectStore(aws.s3()),
        Catalog(aws.dynamodb(), cfg.table_name),
        Notifier(aws.sns(), cfg.topic_arn),
        make_labeler(cfg.labels, aws.rekognition),
    )


def record_handler(record: SQSRecord) -> None:
    """Raise only to have the message retried: a malformed or ignored record is acknowledged
    (retrying cannot change it), logged and counted."""
    receive_count = int(record.attributes.approximate_receive_count or 1)
    parsed = read_body(record.body)
    logger.append_keys(message_id=record.message_id, envelope=parsed.envelope)
    for why in parsed.malformed:
        logger.error("malformed record acknowledged", extra={"why": why})
        metrics.add_metric(name="Malformed", unit=MetricUnit.Count, value=1)
    for name in parsed.ignored:
        logger.info("event not acted on", extra={"event_name": name})
        metrics.add_metric(name="Ignored", unit=MetricUnit.Count, value=1)
    for event in parsed.events:
        logger.append_keys(s3_key=event.key)
        try:
            pipeline().handle(event, receive_count, _remaining_ms)
        except Exception:
            # The batch processor reports the message for retry; say which and why here.
            logger.exception("transient failure; the message will be retried")
            raise


def _remaining_ms() -> int:
    return _invocation["context"].get_remaining_time_in_millis()


# The invocation being handled (one at a time per execution environment): the record handler
# reads its remaining time.
_invocation: dict[str, LambdaContext] = {}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _invocation["context"] = context
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
