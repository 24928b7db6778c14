"""Test harness, never shipped: make a fraction of the handler's S3, DynamoDB and SNS calls fail.

Attached to each boto3 session a Lambda worker of the local stack makes (the test harness's
``faultsite`` puts it there through the function's ``PYTHONPATH``) before the handler makes its
clients: botocore copies a session's event handlers into every client it creates. Nothing in the
shipped package imports this module. ``IMGPIPE_FAULT_SEED`` makes the pattern reproducible.
"""

from __future__ import annotations

import os
import random
from typing import Any

import boto3
from botocore.exceptions import ClientError

SEED_ENV = "IMGPIPE_FAULT_SEED"

# Error codes a real dependency answers with under load: retryable, hence transient.
CODES = {
    "s3": ("SlowDown", 503),
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sns": ("Throttling", 400),
}


class FaultInjector:
    def __init__(self, rate: float, rng: random.Random) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate}")
        self.rate = rate
        self.rng = rng
        self.injected = 0

    def __call__(self, model: Any, event_name: str = "", **_: Any) -> None:
        if self.rng.random() >= self.rate:
            return
        self.injected += 1
        service = event_name.split(".")[1] if event_name.count(".") >= 1 else ""
        code, status = CODES.get(service, ("ServiceUnavailable", 503))
        response: Any = {
            "Error": {"Code": code, "Message": "injected fault (IMGPIPE_FAULT_RATE)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        raise ClientError(response, model.name)


def install(session: boto3.Session, rate: float) -> FaultInjector:
    """Fail ``rate`` of the S3/DynamoDB/SNS calls of every client ``session`` creates from now."""
    seed = os.environ.get(SEED_ENV)
    injector = FaultInjector(rate, random.Random(seed))  # not crypto: a reproducible pattern
    for service in CODES:
        session.events.register(f"before-call.{service}", injector)
    return injector
