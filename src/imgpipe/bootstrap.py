"""What the handlers are built from, once per execution environment: AWS clients, the catalog,
the object store, the notifier, the labeler and the watermark. Handlers stay thin: they take
what they need from here, and tests reset it all with ``reset()``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import aws, config
from .catalog import Catalog
from .config import ConfigError, ProcessSettings, watermark_from_image

if TYPE_CHECKING:
    from .api import StatusApi
    from .backfill import Backfill
    from .pipeline import Pipeline
    from .ports import Presigner, QueuePort
    from .reconcile import Reconciler
    from .render_api import RenderApi
    from .storage import ObjectStore

# Each builder imports what only it needs: the status function's cold start never loads the
# pipeline, the labelers or the imaging code.


@lru_cache(maxsize=1)
def pipeline() -> Pipeline:
    """The process function's pipeline. Built in the invocation's thread before any lane
    starts: models, clients and the watermark load once, not raced for by the lanes."""
    from .labels import make_labeler
    from .notify import Notifier
    from .pipeline import Pipeline
    from .storage import ObjectStore

    settings = config.settings()
    store = ObjectStore(aws.s3(), settings.thumbnail_cache)
    cfg = with_token_secret(with_watermark_image(settings, store), aws.secrets)
    return Pipeline(
        cfg,
        store,
        Catalog(aws.dynamodb(), cfg.table_name),
        Notifier(aws.sns(), cfg.topic_arn),
        make_labeler(cfg.labels, aws.rekognition),
    )


@lru_cache(maxsize=1)
def status_api() -> StatusApi:
    from .api import StatusApi
    from .storage import Presigned

    cfg = config.status_settings()
    return StatusApi(
        Catalog(aws.dynamodb(), cfg.table_name),
        Presigned(aws.s3()),
        cfg.uploads_bucket,
        cfg.derived_bucket,
        cdn_base=cfg.thumbnail_cdn,
    )


@lru_cache(maxsize=1)
def presigner() -> Presigner:
    """The uploads function's signer of upload forms."""
    from .storage import Presigned

    return Presigned(aws.s3())


@lru_cache(maxsize=1)
def queues() -> QueuePort:
    """The redrive function's queues."""
    from .queues import SqsQueues

    return SqsQueues(aws.sqs())


def reconciler(min_age: timedelta, progress: Callable[[str], None]) -> Reconciler:
    """The reconcile function's run (its age floor comes with each invocation)."""
    from .backfill import requeuer
    from .reconcile import Reconciler
    from .storage import ObjectStore

    cfg = config.reconcile_settings()
    return Reconciler(
        ObjectStore(aws.s3()),
        Catalog(aws.dynamodb(), cfg.table_name),
        cfg.uploads_bucket,
        cfg.derived_bucket,
        min_age=min_age,
        progress=progress,
        requeue=requeuer(aws.lambda_(), cfg.backfill_function) if cfg.backfill_function else None,
    )


def backfill(rate: float | None, min_age: timedelta) -> Backfill:
    """The backfill function's run; ``rate`` None: a dry run, with nothing to send."""
    from .backfill import Backfill, QueueSender, RateLimit
    from .storage import ObjectStore

    cfg = config.backfill_settings()
    process = cfg.process
    sender = None if rate is None else QueueSender(aws.sqs(), cfg.images_queue_url, RateLimit(rate))
    return Backfill(
        ObjectStore(aws.s3()),
        Catalog(aws.dynamodb(), process.table_name),
        sender,
        process.uploads_bucket,
        process.fingerprint,
        min_age=min_age,
    )


def with_watermark_image(cfg: ProcessSettings, store: ObjectStore) -> ProcessSettings:
    """An image watermark is read once, at start-up, from the derived bucket's watermarks/
    prefix (the one place there the function may read), refused by size before its body is
    read: a missing, empty or oversized one fails the start, with its key, not every image."""
    key = cfg.watermark_image_key
    if not key:
        return cfg
    from botocore.exceptions import ClientError

    from .errors import PipelineError, describe
    from .imaging.types import MAX_MARK_BYTES, ImageRejected, Limits, WatermarkError

    try:
        data, _ = store.fetch(cfg.derived_bucket, key, "", Limits(max_bytes=MAX_MARK_BYTES))
    except (ClientError, PipelineError, ImageRejected) as exc:
        raise ConfigError(
            f"WATERMARK: cannot use s3://{cfg.derived_bucket}/{key} ({describe(exc)})"
        ) from None
    mark = watermark_from_image(data)
    from .imaging.watermark import check  # Pillow: only when a watermark is configured

    try:
        check(mark)
    except WatermarkError as exc:
        raise ConfigError(f"WATERMARK: s3://{cfg.derived_bucket}/{key}: {exc}") from None
    return replace(cfg, render=replace(cfg.render, watermark=mark))


def with_token_secret(cfg: ProcessSettings, secrets: Callable[[], Any]) -> ProcessSettings:
    """The key of the thumbnails' path tokens (delivery cdn), read once at start-up: an
    unreadable secret fails the start (the batch is retried), never a thumbnail written under
    an unkeyed, derivable path."""
    if not cfg.token_secret_arn:
        return cfg
    secret = read_secret(secrets, cfg.token_secret_arn, "TOKEN_SECRET_ARN", "the token secret")
    return replace(cfg, token_secret=secret)


def read_secret(secrets: Callable[[], Any], arn: str, setting: str, what: str) -> bytes:
    """A stage secret from Secrets Manager, at start-up; ConfigError naming ``setting`` when it
    cannot be read or is too short to key an HMAC."""
    from botocore.exceptions import ClientError

    from .errors import describe

    try:
        value = secrets().get_secret_value(SecretId=arn)["SecretString"]
    except (ClientError, KeyError) as exc:
        raise ConfigError(f"{setting}: cannot read {what} ({describe(exc)})") from None
    if not isinstance(value, str) or len(value) < 32:
        raise ConfigError(f"{setting}: {what} must be at least 32 characters")
    return value.encode()


@lru_cache(maxsize=1)
def render_api() -> RenderApi:
    """The render function's: the engine loads on the first miss, not at start-up."""
    from .render_api import RenderApi, RenderSettings
    from .storage import ObjectStore, Presigned

    cfg = config.render_route_settings()
    secret = read_secret(aws.secrets, cfg.secret_arn, "RENDER_SECRET_ARN", "the render secret")
    return RenderApi(
        RenderSettings(cfg.uploads_bucket, cfg.derived_bucket, secret, cfg.limits),
        Catalog(aws.dynamodb(), cfg.table_name),
        ObjectStore(aws.s3(), config.PRIVATE_CACHE),  # handed out presigned, as thumbnails
        Presigned(aws.s3()),
    )


def reset() -> None:
    """Forget settings, clients and everything built from them (tests change the environment
    and endpoints between cases)."""
    config.clear_caches()
    aws.reset()
    pipeline.cache_clear()
    status_api.cache_clear()
    render_api.cache_clear()
    presigner.cache_clear()
    queues.cache_clear()
