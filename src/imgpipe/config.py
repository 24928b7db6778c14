"""Settings from environment variables: one frozen dataclass per function, each validated once
per process with the same helpers, each reading only what its function needs.

- ``ProcessSettings``: the process function (buckets, table, topic, thumbnails, labels...);
- ``StatusSettings``: the HTTP API (table, buckets for presigning, the auth mode);
- ``RedriveSettings``: the redrive function (the two queues, the strategy);
- ``ReconcileSettings``: the reconcile function (table, buckets, its defaults);
- ``BackfillSettings``: the backfill function (the process settings' fingerprint, the queue);
- ``function_timeout()``: what every function's AWS clients size their timeouts by.

No handler and no other module reads ``os.environ`` for these: a malformed value is a
``ConfigError`` at start-up, with the variable's name, never a silent default."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from . import lanes
from .backfill import MAX_RATE
from .derived import RESULT_FORMATS
from .imaging import (
    DEFAULT_SIZES,
    Limits,
    RenderOptions,
    Watermark,
    WatermarkError,
    parse_formats,
    parse_sizes,
)
from .labels import BACKENDS, DETECTORS, LabelSettings

# Thumbnails handed out by presigned URLs live 15 minutes (api.URL_TTL): a browser may keep one
# that long, and no shared cache may keep a private photo at all. A CDN stage says otherwise.
PRIVATE_CACHE = "private, max-age=900"

# The one source of defaults: the engine's own (RenderOptions, Limits, LabelSettings).
_RENDER = RenderOptions()
_LABELS = LabelSettings()


class ConfigError(ValueError):
    """A setting is missing or malformed; raised at start-up, never mid-batch."""


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    uploads_bucket: str
    derived_bucket: str
    table_name: str
    topic_arn: str
    render: RenderOptions
    max_receive_count: int
    labels: LabelSettings
    function_timeout: int = 60  # seconds: no invocation of the process function lives longer
    results_documents: tuple[str, ...] = ()  # results/<key>/<token>.<fmt> per DONE image
    record_workers: int = 4  # lanes of a batch processed at once (see lanes.py)
    render_slots: int = 1  # decodes at once: each may reach the decode budget
    # WATERMARK=image:<key>: the mark is this object of the derived bucket, read at start-up
    # into render.watermark (bootstrap.with_watermark_image); text marks are in it already.
    watermark_image_key: str = ""
    # Cache-Control of every thumbnail: matches how they are handed out (stage's delivery)
    thumbnail_cache: str = PRIVATE_CACHE
    # delivery cdn: the Secrets Manager secret that keys derived.token (TOKEN_SECRET_ARN),
    # read at start-up into token_secret (bootstrap.with_token_secret)
    token_secret_arn: str = ""
    token_secret: bytes = field(default=b"", repr=False)
    # what the output depends on, hashed (see ``fingerprint``): records keep it, backfill
    # compares it to find images made under other settings
    fingerprint: str = ""


_OUTPUT_ENV = ("WATERMARK_POSITION", "WATERMARK_OPACITY", "WATERMARK_MIN_SIZE", "WATERMARK_SIZES")


def fingerprint(settings: ProcessSettings, env: Mapping[str, str]) -> str:
    """A short hash of every setting that changes what an image's thumbnails, labels, record
    or documents are: sizes, formats, qualities, limits, GPS, watermark, labeler, results
    documents. Not the buckets, the lanes or the timeouts. An image watermark counts by its
    key and placement (its bytes are read later, by the process function alone): replacing
    the object under the same key is not seen as a change."""
    labels = settings.labels
    parts = (
        repr(replace(settings.render, watermark=None)),
        repr(settings.render.watermark),
        settings.watermark_image_key,
        *(env.get(name, "").strip() for name in _OUTPUT_ENV if settings.watermark_image_key),
        labels.backend,
        repr(labels.min_confidence),
        repr(labels.max_labels),
        ",".join(sorted(labels.detectors)) if labels.backend != "none" else "",
        ",".join(settings.results_documents),
    )
    # the thumbnails' Cache-Control (delivery cdn: public and immutable), only when not the
    # default, so that the default stages' records keep the fingerprint they were made under
    if settings.thumbnail_cache != PRIVATE_CACHE:
        parts = (*parts, settings.thumbnail_cache)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _header_value(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not value.isascii() or not value.isprintable() or len(value) > 200:
        raise ConfigError(f"{name} must be a printable ASCII header value, got {value[:40]!r}")
    return value


def _https_base(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip().rstrip("/")
    if value and (not value.startswith("https://") or not value.isascii() or "?" in value):
        raise ConfigError(f"{name} must be an https:// base URL, got {value[:60]!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        raise ConfigError(f"{name} must be an integer, got {raw!r}")
    value = int(raw)
    if value < minimum:
        limit = "positive" if minimum == 1 else f"at least {minimum}"
        raise ConfigError(f"{name} must be {limit}, got {value}")
    return value


def _at_most(value: int, most: int, name: str) -> int:
    if value > most:
        raise ConfigError(f"{name} must be at most {most}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; deploy with serverless.yml or export it")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default), in any case."""
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


DEFAULT_TIMEOUT = 60  # seconds, as serverless.yml's provider timeout
API_AUTH_MODES = ("iam", "jwt", "none")  # the first is the default
REDRIVE_STRATEGIES = ("auto", "manual")


def function_timeout(env: Mapping[str, str] | None = None) -> int:
    """FUNCTION_TIMEOUT: the function's own timeout, which its AWS clients fit their retries in."""
    return _int(_env(env), "FUNCTION_TIMEOUT", DEFAULT_TIMEOUT)


@dataclass(frozen=True, slots=True)
class StatusSettings:
    table_name: str
    uploads_bucket: str
    derived_bucket: str  # thumbnails are presigned from it
    api_auth: str  # the identity API Gateway's authorizer must have put in the request
    # jwt: the scope every token must carry (checked by the authorizer, and again here), and
    # the claim naming the caller's own keys (users/<value>/; empty: every key)
    jwt_scope: str = ""
    jwt_owner_claim: str = ""
    thumbnail_cdn: str = ""  # https://<distribution>: thumbnails' URLs there, not presigned

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StatusSettings:
        env = _env(env)
        return cls(
            table_name=_required(env, "TABLE_NAME"),
            uploads_bucket=_required(env, "UPLOADS_BUCKET"),
            derived_bucket=_required(env, "DERIVED_BUCKET"),
            api_auth=_choice(env, "API_AUTH", API_AUTH_MODES),
            jwt_scope=env.get("JWT_SCOPE", "").strip(),
            jwt_owner_claim=env.get("JWT_OWNER_CLAIM", "").strip(),
            thumbnail_cdn=_https_base(env, "THUMBNAIL_CDN"),
        )


@dataclass(frozen=True, slots=True)
class RenderRouteSettings:
    """The render function's: where originals and renditions are, and its secret's ARN."""

    table_name: str
    uploads_bucket: str
    derived_bucket: str
    secret_arn: str  # Secrets Manager: the key of render URLs' signatures
    limits: Limits

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RenderRouteSettings:
        env = _env(env)
        return cls(
            table_name=_required(env, "TABLE_NAME"),
            uploads_bucket=_required(env, "UPLOADS_BUCKET"),
            derived_bucket=_required(env, "DERIVED_BUCKET"),
            secret_arn=_required(env, "RENDER_SECRET_ARN"),
            limits=replace(
                _RENDER.limits, max_bytes=_int(env, "MAX_BYTES", _RENDER.limits.max_bytes)
            ),
        )


@dataclass(frozen=True, slots=True)
class UploadSettings:
    uploads_bucket: str
    max_bytes: int  # the pipeline's own MAX_BYTES: a form never allows more
    expires: int  # seconds a form may be used
    api_auth: str
    jwt_scope: str = ""
    jwt_owner_claim: str = ""
    # apiAuth none serves forms to anyone only if the stage says so in as many words
    anonymous: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UploadSettings:
        env = _env(env)
        return cls(
            uploads_bucket=_required(env, "UPLOADS_BUCKET"),
            max_bytes=_int(env, "MAX_BYTES", _RENDER.limits.max_bytes),
            expires=_int(env, "UPLOAD_EXPIRES", 300),
            api_auth=_choice(env, "API_AUTH", API_AUTH_MODES),
            jwt_scope=env.get("JWT_SCOPE", "").strip(),
            jwt_owner_claim=env.get("JWT_OWNER_CLAIM", "").strip(),
            anonymous=_bool(env, "ANONYMOUS_UPLOADS"),
        )


@dataclass(frozen=True, slots=True)
class RedriveSettings:
    images_queue_url: str
    dlq_url: str
    use_move_task: bool  # REDRIVE_STRATEGY=auto: SQS's server-side move where it exists

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RedriveSettings:
        env = _env(env)
        return cls(
            images_queue_url=_required(env, "IMAGES_QUEUE_URL"),
            dlq_url=_required(env, "DLQ_URL"),
            use_move_task=_choice(env, "REDRIVE_STRATEGY", REDRIVE_STRATEGIES) == "auto",
        )


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    table_name: str
    uploads_bucket: str
    derived_bucket: str
    fix: bool  # what a scheduled run does when the payload does not say
    min_age: int  # seconds: younger objects may still be on their way through the queue
    backfill_function: str  # re-queues what is unprocessed (a backfill message)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcileSettings:
        env = _env(env)
        return cls(
            table_name=_required(env, "TABLE_NAME"),
            uploads_bucket=_required(env, "UPLOADS_BUCKET"),
            derived_bucket=_required(env, "DERIVED_BUCKET"),
            fix=_bool(env, "RECONCILE_FIX"),
            min_age=_int(env, "RECONCILE_MIN_AGE", 900, minimum=0),
            backfill_function=env.get("BACKFILL_FUNCTION", "").strip(),
        )


@dataclass(frozen=True, slots=True)
class BackfillSettings:
    process: ProcessSettings  # the process function's output settings: their fingerprint
    images_queue_url: str
    function_name: str  # this function, for a run that continues itself
    concurrency: int  # the process function's maximumConcurrency: the pace of a backlog
    process_memory: int
    rate: float  # messages per second a run sends unless it says otherwise
    min_age: int  # seconds: younger objects are left to their own S3 events

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BackfillSettings:
        env = _env(env)
        return cls(
            process=load(env),
            images_queue_url=_required(env, "IMAGES_QUEUE_URL"),
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip(),
            concurrency=_int(env, "MAX_CONCURRENCY", 10),
            process_memory=_int(env, "PROCESS_MEMORY", 1024),
            rate=float(_at_most(_int(env, "BACKFILL_RATE", 50), int(MAX_RATE), "BACKFILL_RATE")),
            min_age=_int(env, "BACKFILL_MIN_AGE", 300, minimum=0),
        )


def load(env: Mapping[str, str] | None = None) -> ProcessSettings:
    """The process function's settings from ``env`` (default: the process environment)."""
    env = _env(env)
    try:
        formats = parse_formats(env.get("THUMBNAIL_FORMATS", "jpeg"))
    except ValueError as exc:
        raise ConfigError(f"THUMBNAIL_FORMATS: {exc}") from None
    try:
        sizes = parse_sizes(env.get("THUMBNAIL_SIZES", DEFAULT_SIZES), formats)
    except ValueError as exc:
        raise ConfigError(f"THUMBNAIL_SIZES: {exc}") from None
    quality = _int(env, "JPEG_QUALITY", _RENDER.jpeg_quality)
    webp_quality = _int(env, "WEBP_QUALITY", _RENDER.webp_quality, minimum=1)
    avif_quality = _int(env, "AVIF_QUALITY", _RENDER.avif_quality, minimum=1)
    if webp_quality > 100 or avif_quality > 100:
        raise ConfigError("WEBP_QUALITY and AVIF_QUALITY are 1..100")
    memory = _int(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", lanes.DEFAULT_MEMORY_MB)
    max_decode = _int(env, "MAX_DECODE_BYTES", _RENDER.limits.max_decode_bytes)
    if quality > 95:
        raise ConfigError(f"JPEG_QUALITY must be at most 95, got {quality}")
    marked = {n.strip() for n in env.get("WATERMARK_SIZES", "").split(",") if n.strip()}
    if marked - {spec.name for spec in sizes}:
        unknown = ", ".join(sorted(marked - {spec.name for spec in sizes}))
        raise ConfigError(f"WATERMARK_SIZES: no thumbnail size named {unknown}")
    text_mark, image_key = _watermark(env)
    loaded = ProcessSettings(
        thumbnail_cache=_header_value(env, "THUMBNAIL_CACHE", PRIVATE_CACHE),
        token_secret_arn=env.get("TOKEN_SECRET_ARN", "").strip(),
        uploads_bucket=_required(env, "UPLOADS_BUCKET"),
        derived_bucket=_required(env, "DERIVED_BUCKET"),
        table_name=_required(env, "TABLE_NAME"),
        topic_arn=env.get("TOPIC_ARN", "").strip(),
        render=RenderOptions(
            sizes=sizes,
            limits=Limits(
                max_bytes=_int(env, "MAX_BYTES", _RENDER.limits.max_bytes),
                max_pixels=_int(env, "MAX_PIXELS", _RENDER.limits.max_pixels),
                max_frames=_int(env, "MAX_FRAMES", _RENDER.limits.max_frames),
                max_decode_bytes=max_decode,
            ),
            jpeg_quality=quality,
            webp_quality=webp_quality,
            avif_quality=avif_quality,
            include_gps=_bool(env, "INCLUDE_GPS"),
            watermark=text_mark,
        ),
        max_receive_count=_int(env, "MAX_RECEIVE_COUNT", 3),
        labels=_label_settings(env),
        function_timeout=function_timeout(env),
        results_documents=_results_documents(env),
        record_workers=_int(env, "RECORD_WORKERS", lanes.record_workers(memory)),
        render_slots=_int(env, "RENDER_SLOTS", lanes.render_slots(memory, max_decode)),
        watermark_image_key=image_key,
    )
    return replace(loaded, fingerprint=fingerprint(loaded, env))


WATERMARK_PREFIX = "watermarks/"  # the one place in the derived bucket the function reads


def _watermark(env: Mapping[str, str]) -> tuple[Watermark | None, str]:
    """WATERMARK: "" (none), "text:<text>" (the mark, ready) or "image:watermarks/<name>" (the
    key in the derived bucket, read at start-up; its other settings are checked now)."""
    raw = env.get("WATERMARK", "").strip()
    kind, _, value = raw.partition(":")
    if not raw:
        return None, ""
    if kind == "text" and value:
        return _mark(env, text=value), ""
    if kind == "image" and value.startswith(WATERMARK_PREFIX) and value != WATERMARK_PREFIX:
        _mark(env, image=b"\0")
        return None, value
    raise ConfigError(
        f"WATERMARK must be empty, text:<text> or image:{WATERMARK_PREFIX}<name>, got {raw!r}"
    )


def _mark(env: Mapping[str, str], *, text: str = "", image: bytes = b"") -> Watermark:
    """The mark with the WATERMARK_* settings of ``env``."""
    raw_opacity = env.get("WATERMARK_OPACITY", "0.5").strip() or "0.5"
    try:
        opacity = float(raw_opacity)
    except ValueError:
        raise ConfigError(f"WATERMARK_OPACITY must be a number, got {raw_opacity!r}") from None
    sizes = env.get("WATERMARK_SIZES", "").strip()
    try:
        return Watermark(
            text=text,
            image=image,
            position=env.get("WATERMARK_POSITION", "").strip() or "bottom-right",
            opacity=opacity,
            min_size=_int(env, "WATERMARK_MIN_SIZE", 256),
            sizes=frozenset(n.strip() for n in sizes.split(",") if n.strip()),
        )
    except WatermarkError as exc:
        raise ConfigError(f"WATERMARK: {exc}") from None


def watermark_from_image(image: bytes, env: Mapping[str, str] | None = None) -> Watermark:
    """The image watermark, once its bytes are read (bootstrap.py)."""
    return _mark(_env(env), image=image)


def _results_documents(env: Mapping[str, str]) -> tuple[str, ...]:
    """RESULTS_DOCUMENTS: "json", "json,csv" or "none" (the default: see make bench-cost)."""
    raw = env.get("RESULTS_DOCUMENTS", "").strip().lower()
    if not raw or raw == "none":
        return ()
    chosen = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = sorted(set(chosen) - set(RESULT_FORMATS))
    if unknown or not chosen:
        raise ConfigError(
            f"RESULTS_DOCUMENTS must be none or a list of {', '.join(RESULT_FORMATS)}, got {raw!r}"
        )
    return tuple(f for f in RESULT_FORMATS if f in chosen)


def _label_settings(env: Mapping[str, str]) -> LabelSettings:
    backend = env.get("LABELER", _LABELS.backend).strip().lower() or _LABELS.backend
    if backend not in BACKENDS:
        raise ConfigError(f"LABELER must be one of {', '.join(BACKENDS)}, got {backend!r}")
    raw = env.get("DETECTORS", "").strip()
    detectors = frozenset(d.strip() for d in raw.split(",") if d.strip()) if raw else DETECTORS
    if not detectors <= DETECTORS:
        unknown = ", ".join(sorted(detectors - DETECTORS))
        raise ConfigError(
            f"DETECTORS: unknown {unknown}; choose from {', '.join(sorted(DETECTORS))}"
        )
    confidence = _int(env, "MIN_CONFIDENCE", int(_LABELS.min_confidence))
    if confidence > 100:
        raise ConfigError(f"MIN_CONFIDENCE must be at most 100, got {confidence}")
    return LabelSettings(
        backend=backend,
        min_confidence=float(confidence),
        max_labels=_int(env, "MAX_LABELS", _LABELS.max_labels),
        detectors=detectors,
    )


# Each read on first use (so tests can set the environment first), then kept for the process.


@lru_cache(maxsize=1)
def settings() -> ProcessSettings:
    return load()


@lru_cache(maxsize=1)
def status_settings() -> StatusSettings:
    return StatusSettings.from_env()


@lru_cache(maxsize=1)
def render_route_settings() -> RenderRouteSettings:
    return RenderRouteSettings.from_env()


@lru_cache(maxsize=1)
def upload_settings() -> UploadSettings:
    return UploadSettings.from_env()


@lru_cache(maxsize=1)
def redrive_settings() -> RedriveSettings:
    return RedriveSettings.from_env()


@lru_cache(maxsize=1)
def backfill_settings() -> BackfillSettings:
    return BackfillSettings.from_env()


@lru_cache(maxsize=1)
def reconcile_settings() -> ReconcileSettings:
    return ReconcileSettings.from_env()


def clear_caches() -> None:
    """Forget every settings read (tests change the environment between cases)."""
    for cached in (
        settings,
        status_settings,
        render_route_settings,
        upload_settings,
        redrive_settings,
        backfill_settings,
        reconcile_settings,
    ):
        cached.cache_clear()
