"""Manually invoked: ``sls invoke -f redrive -d '{"max_messages": 100, "dry_run": true}'``."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..codec import JsonObject
from ..config import redrive_settings
from ..redrive import FOLLOW_IN_FUNCTION, Patience, Queues, parse_request, redrive

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: object, context: LambdaContext) -> JsonObject:
    try:
        max_messages, dry_run = parse_request(event)
    except ValueError as exc:
        return {"error": str(exc)}
    cfg = redrive_settings()
    result = redrive(
        bootstrap.queues(),
        Queues(source_url=cfg.images_queue_url, dlq_url=cfg.dlq_url),
        max_messages=max_messages,
        dry_run=dry_run,
        use_move_task=cfg.use_move_task,
        patience=Patience.within(
            min(FOLLOW_IN_FUNCTION, context.get_remaining_time_in_millis() / 1000)
        ),
    )
    logger.info(
        "redrive",
        extra={
            "moved": result.moved,
            "remaining": result.remaining,
            "task_status": result.task_status,
            "failure_reason": result.failure_reason,
        },
    )
    return result.as_json()
