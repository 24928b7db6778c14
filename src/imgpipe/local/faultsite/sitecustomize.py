"""Injected failures inside the local stack's Lambda workers, for rehearsing an incident.

MiniStack runs the process function in its own worker processes. `imgpipe local faults on` (and
the test harness) put this folder on the function's ``PYTHONPATH`` and set ``IMGPIPE_FAULT_*``:
Python imports this module at start-up, and every boto3 session the handler makes then fails
that fraction of its calls to the chosen services, until the given time, with the error codes
those services answer under load (retryable, hence transient: the pipeline retries, then the
message lands in the DLQ). Self-contained (the standard library and boto3) so that importing it
loads nothing of imgpipe before the function's own code; never shipped (local/ stays out of the
zip). ``IMGPIPE_FAULT_SEED`` makes the pattern reproducible.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

RATE_ENV = "IMGPIPE_FAULT_RATE"
SERVICES_ENV = "IMGPIPE_FAULT_SERVICES"  # comma-separated; default: all three
UNTIL_ENV = "IMGPIPE_FAULT_UNTIL"  # epoch seconds; 0 or unset: until turned off
SEED_ENV = "IMGPIPE_FAULT_SEED"

# What each service answers a caller it is shedding: retryable codes.
CODES = {
    "s3": ("SlowDown", 503),
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sns": ("Throttling", 400),
}


class FaultInjector:
    def __init__(
        self, rate: float, rng: random.Random, until: float = 0.0, clock: Any = time.time
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate}")
        self.rate, self.rng, self.until, self.clock = rate, rng, until, clock
        self.injected = 0

    def __call__(self, model: Any, event_name: str = "", **_: Any) -> None:
        if self.until and self.clock() >= self.until:
            return  # the rehearsal's time is up: calls go through again
        if self.rng.random() >= self.rate:
            return
        from botocore.exceptions import ClientError

        self.injected += 1
        service = event_name.split(".")[1] if event_name.count(".") >= 1 else ""
        code, status = CODES.get(service, ("ServiceUnavailable", 503))
        response: Any = {
            "Error": {"Code": code, "Message": f"injected fault ({RATE_ENV})"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        raise ClientError(response, model.name)


def install(
    session: Any, rate: float, services: tuple[str, ...] = tuple(CODES), until: float = 0.0
) -> FaultInjector:
    """Fail ``rate`` of the calls to ``services`` of every client ``session`` creates from now
    (until ``until``, epoch seconds, if given)."""
    unknown = sorted(set(services) - set(CODES))
    if unknown:
        raise ValueError(f"cannot fail {', '.join(unknown)}: choose from {', '.join(CODES)}")
    seed = os.environ.get(SEED_ENV)
    injector = FaultInjector(rate, random.Random(seed), until)  # not crypto: a pattern
    for service in services:
        session.events.register(f"before-call.{service}", injector)
    return injector


def _install_in_worker() -> None:
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return  # not a Lambda worker (MiniStack's own server): leave the interpreter alone
    try:
        rate = float(os.environ.get(RATE_ENV) or 0)
        until = float(os.environ.get(UNTIL_ENV) or 0)
    except ValueError:
        import sys

        print(f"imgpipe faultsite: ignoring malformed {RATE_ENV}/{UNTIL_ENV}", file=sys.stderr)
        return  # a typo must not stop the function from starting at all
    if not rate:
        return
    asked = os.environ.get(SERVICES_ENV, "").split(",")
    services = tuple(s for s in asked if s in CODES) or tuple(CODES)
    import boto3

    original = boto3.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        install(self, rate, services, until)

    boto3.Session.__init__ = init  # type: ignore[method-assign]


_install_in_worker()
