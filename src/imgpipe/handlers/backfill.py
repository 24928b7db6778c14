"""Invoked by ``imgpipe backfill`` (one slice per call, the CLI keeps the checkpoint) or by
hand for runs that outlive a laptop: ``sls invoke -f backfill -d '{"prefix": "2019/",
"chain": true}'`` continues itself (an asynchronous invoke of this function with the new
checkpoint) until the listing ends. ``{"keys": [...]}`` queues exactly those keys (how
reconcile re-queues what it finds unprocessed). Returns the checkpoint and what the messages
cost and how long they take (imgpipe.costs)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws, bootstrap
from ..backfill import (
    MAX_HOPS,
    Answer,
    BackfillError,
    Checkpoint,
    Estimate,
    Request,
    parse_request,
)
from ..codec import JsonObject
from ..config import backfill_settings
from ..costs import Stage
from ..costs import backfill as estimate

logger = Logger()

_RESERVE_S = 30.0  # a slice ends this long before the function's timeout


@logger.inject_lambda_context(clear_state=True)
def handler(event: object, context: LambdaContext) -> JsonObject:
    cfg = backfill_settings()
    limit = max(1.0, context.get_remaining_time_in_millis() / 1000 - _RESERVE_S)
    try:
        request = parse_request(event, rate=cfg.rate, min_age=cfg.min_age, time_limit=limit)
    except BackfillError as exc:
        return {"error": str(exc)}
    process = cfg.process
    run = bootstrap.backfill(
        None if request.dry_run else request.rate, timedelta(seconds=request.min_age)
    )
    try:
        if request.keys:  # reconcile's re-queue of objects whose events were lost
            checkpoint = run.exactly(request.keys)
        else:
            checkpoint = run.run(
                request.checkpoint,
                max_seconds=request.max_seconds,
                max_messages=request.max_messages,
            )
    except BackfillError as exc:
        return {"error": str(exc), "checkpoint": request.checkpoint.to_json()}
    logger.info("backfill slice", extra={"checkpoint": checkpoint.to_json()})
    stage = Stage(
        "this stage",
        memory_mb=cfg.process_memory,
        # Rekognition's calls are billed and quota-bound; the offline labeler's are neither
        # (its CPU time is not in the model)
        detectors=tuple(sorted(process.labels.detectors))
        if process.labels.backend == "rekognition"
        else (),
        results=process.results_documents,
    )
    counts = checkpoint.counts
    guess = estimate(
        counts["queued"],
        listed=counts["listed"],
        stage=stage,
        concurrency=cfg.concurrency,
        rate=request.rate,
    )
    answer = Answer(
        checkpoint,
        dry_run=request.dry_run,
        estimate=Estimate(
            images=guess.images,
            dollars=guess.dollars,
            seconds=guess.seconds,
            per_second=guess.per_second,
            bound_by=guess.bound_by,
            concurrency=cfg.concurrency,
            memory_mb=cfg.process_memory,
            detectors=stage.detectors,
        ),
    )
    if request.chain and not checkpoint.done:
        answer = replace(answer, continued=_continue(request, checkpoint, cfg.function_name))
    return answer.to_json()


def _continue(request: Request, checkpoint: Checkpoint, function_name: str) -> bool:
    if not function_name or request.hops + 1 >= MAX_HOPS:
        return False
    if checkpoint.after == request.checkpoint.after:
        logger.error("backfill made no progress in a slice; not continuing")
        return False
    following = replace(request, checkpoint=checkpoint, hops=request.hops + 1)
    aws.lambda_().invoke(
        FunctionName=function_name,
        InvocationType="Event",
        Payload=json.dumps(following.to_json()).encode(),
    )
    return True
