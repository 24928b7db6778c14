"""`imgpipe local faults`: turn injected failures on and off for the local stack's process
function, so that the incident runbook (failures, the DLQ, inspect, dry run, redrive) can be
walked on MiniStack. The failures themselves happen inside MiniStack's workers
(``faultsite/sitecustomize.py``); this changes the function's environment to ask for them.

While they are on, a failed message comes back after just above the function's timeout instead
of the stage's visibility timeout (180 s locally, 6 x the timeout on AWS): SQS returns a failed
message only when its visibility runs out, so a rehearsal would otherwise take three of them,
nine minutes, to reach the DLQ. Never shorter than the function's timeout, or a message still
being processed would be delivered again. `faults off` puts the stage's value back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..deployment import Deployment

FAULT_SITE = Path(__file__).with_name("faultsite")
SERVICES = ("s3", "dynamodb", "sns")
RATE_ENV, SERVICES_ENV, UNTIL_ENV = (
    "IMGPIPE_FAULT_RATE",
    "IMGPIPE_FAULT_SERVICES",
    "IMGPIPE_FAULT_UNTIL",
)
# the queue's visibility timeout before the faults, kept beside them to be put back
VISIBILITY_ENV = "IMGPIPE_FAULT_QUEUE_VISIBILITY"


@dataclass(frozen=True, slots=True)
class Faults:
    rate: float  # the fraction of calls that fail, 0..1
    services: tuple[str, ...] = SERVICES
    until: float = 0.0  # epoch seconds; 0: until turned off

    def __post_init__(self) -> None:
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"the fault rate must be above 0 and at most 1, got {self.rate}")
        unknown = sorted(set(self.services) - set(SERVICES))
        if unknown or not self.services:
            raise ValueError(f"services to fail: some of {', '.join(SERVICES)}")

    def describe(self) -> str:
        ends = time.strftime(" until %H:%M:%S", time.localtime(self.until)) if self.until else ""
        return f"{self.rate:.0%} of the {', '.join(self.services)} calls fail{ends}"


def environment(base: dict[str, str], faults: Faults | None) -> dict[str, str]:
    """The function's environment with ``faults`` asked for (None: none), the rest kept."""
    ours = {RATE_ENV, SERVICES_ENV, UNTIL_ENV, VISIBILITY_ENV}
    env = {k: v for k, v in base.items() if k not in ours}
    paths = [p for p in env.pop("PYTHONPATH", "").split(":") if p and p != str(FAULT_SITE)]
    if faults is not None:
        paths.insert(0, str(FAULT_SITE))
        env[RATE_ENV] = str(faults.rate)
        env[SERVICES_ENV] = ",".join(faults.services)
        env[UNTIL_ENV] = str(int(faults.until))
    if paths:
        env["PYTHONPATH"] = ":".join(paths)
    return env


def current(env: dict[str, str]) -> Faults | None:
    """The faults an environment asks for, if any (and not yet over)."""
    if not env.get(RATE_ENV):
        return None
    faults = Faults(
        float(env[RATE_ENV]),
        tuple(s for s in env.get(SERVICES_ENV, "").split(",") if s) or SERVICES,
        float(env.get(UNTIL_ENV) or 0),
    )
    return None if faults.until and faults.until <= time.time() else faults


def set_faults(stack: Deployment, faults: Faults | None, timeout: float = 30.0) -> None:
    """Ask the process function for ``faults`` (None: stop them); returns once the function's
    new configuration is in place (later invocations run with it)."""
    assert stack.process is not None
    lam = stack.client("lambda")
    name = stack.process.name
    config = lam.get_function_configuration(FunctionName=name)
    base = dict(config.get("Environment", {}).get("Variables", {}))
    wanted = environment(base, faults)
    sqs = stack.client("sqs")
    saved = base.get(VISIBILITY_ENV, "")
    if faults is not None:
        saved = (
            saved
            or sqs.get_queue_attributes(
                QueueUrl=stack.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
        )
        wanted[VISIBILITY_ENV] = saved
        quick = str(stack.process.timeout + 1)
        sqs.set_queue_attributes(QueueUrl=stack.queue_url, Attributes={"VisibilityTimeout": quick})
    elif saved:
        sqs.set_queue_attributes(QueueUrl=stack.queue_url, Attributes={"VisibilityTimeout": saved})
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": wanted})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        config = lam.get_function_configuration(FunctionName=name)
        if (
            config.get("LastUpdateStatus", "Successful") == "Successful"
            and config.get("Environment", {}).get("Variables") == wanted
        ):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{name}'s new configuration was not in place within {timeout:.0f}s")
