"""Test-only fault injection: make a fraction of S3, DynamoDB and SNS calls fail.

Set ``IMGPIPE_FAULT_RATE`` (0..1) in a function's environment to exercise the retry, DLQ and
redrive paths against a real endpoint. It is read when a client is created; unset (the default)
nothing is registered and calls pay nothing. Never set it in a deployed stage.
"""

from __future__ import annotations

import os
import random
from typing import Any

from botocore.exceptions import ClientError

RATE_ENV = "IMGPIPE_FAULT_RATE"
SEED_ENV = "IMGPIPE_FAULT_SEED"

# Error codes a real dependency answers with under load: retryable, hence transient.
_CODES = {
    "s3": ("SlowDown", 503),
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sns": ("Throttling", 400),
}


def rate_from_env() -> float:
    raw = os.environ.get(RATE_ENV, "").strip()
    if not raw:
        return 0.0
    rate = float(raw)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{RATE_ENV} must be within 0..1, got {raw}")
    return rate


class FaultInjector:
    def __init__(self, service: str, rate: float, rng: random.Random) -> None:
        self.service = service
        self.rate = rate
        self.rng = rng
        self.injected = 0

    def __call__(self, model: Any, **_: Any) -> None:
        if self.rng.random() >= self.rate:
            return
        self.injected += 1
        code, status = _CODES[self.service]
        response: Any = {
            "Error": {"Code": code, "Message": f"injected fault ({RATE_ENV})"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        raise ClientError(response, model.name)


def install(client: Any, service: str, rate: float | None = None) -> FaultInjector | None:
    """Register the injector on ``client`` when a rate is set; returns it (for counting)."""
    rate = rate_from_env() if rate is None else rate
    if rate <= 0.0 or service not in _CODES:
        return None
    seed = os.environ.get(SEED_ENV)
    injector = FaultInjector(
        service, rate, random.Random(seed)
    )  # not for crypto: a reproducible fault pattern
    client.meta.events.register(f"before-call.{service}.*", injector)
    return injector
