"""Scheduled (off by default, see serverless.yml ``reconcileSchedule``) or invoked by hand:
``sls invoke -f reconcile -d '{"fix": true, "prefix": "trip/"}'``.

Logs every finding, counts each kind as a metric (alarm on them), and returns the report."""

from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..codec import JsonObject
from ..config import reconcile_settings
from ..observability import metrics
from ..reconcile import KINDS

logger = Logger()

_FIELDS = {"fix": bool, "prefix": str, "min_age": int}


def parse_request(event: object, fix: bool, min_age: int) -> tuple[bool, str, int]:
    """(fix, prefix, min_age seconds) from the invocation's payload; ValueError if malformed.
    A schedule's event (EventBridge: {"source": "aws.events", ...}) takes the defaults."""
    if not isinstance(event, dict) or event.get("source") == "aws.events":
        return fix, "", min_age
    unknown = sorted(set(event) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; expected some of {sorted(_FIELDS)}")
    for name, kind in _FIELDS.items():
        value = event.get(name)
        if value is not None and (type(value) is not kind):
            raise ValueError(f"{name} must be a {kind.__name__}")
    age = event.get("min_age", min_age)
    if age < 0:
        raise ValueError("min_age must not be negative")
    return bool(event.get("fix", fix)), str(event.get("prefix", "")), int(age)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: object, context: LambdaContext) -> JsonObject:
    cfg = reconcile_settings()
    try:
        fix, prefix, min_age = parse_request(event, cfg.fix, cfg.min_age)
    except ValueError as exc:
        return {"error": str(exc)}
    reconciler = bootstrap.reconciler(timedelta(seconds=min_age), logger.debug)
    report = reconciler.run(prefix, fix=fix)
    for finding in report.findings:
        logger.warning(
            "finding",
            extra={
                "kind": finding.kind,
                "key": finding.key,
                "detail": finding.detail,
                "fixed": finding.fixed,
            },
        )
    for kind in KINDS:
        count = report.count(kind)
        metrics.add_metric(name=f"Reconcile.{kind}", unit=MetricUnit.Count, value=count)
    logger.info("reconciled", extra={"summary": report.line()})
    return report.to_document()
