"""Settings from environment variables: one frozen dataclass, validated once per process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from . import lanes
from .derived import RESULT_FORMATS
from .imaging import (
    DEFAULT_SIZES,
    Limits,
    RenderOptions,
    Watermark,
    WatermarkError,
    parse_sizes,
)
from .labels import BACKENDS, DETECTORS, LabelSettings

# The one source of defaults: the engine's own (RenderOptions, Limits, LabelSettings).
_RENDER = RenderOptions()
_LABELS = LabelSettings()


class ConfigError(ValueError):
    """A setting is missing or malformed; raised at start-up, never mid-batch."""


@dataclass(frozen=True, slots=True)
class Settings:
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
    # into render.watermark (handlers/process.py); text marks are in render.watermark already.
    watermark_image_key: str = ""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
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


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    try:
        sizes = parse_sizes(env.get("THUMBNAIL_SIZES", DEFAULT_SIZES))
    except ValueError as exc:
        raise ConfigError(f"THUMBNAIL_SIZES: {exc}") from None
    quality = _int(env, "JPEG_QUALITY", _RENDER.jpeg_quality)
    memory = _int(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", lanes.DEFAULT_MEMORY_MB)
    max_decode = _int(env, "MAX_DECODE_BYTES", _RENDER.limits.max_decode_bytes)
    if quality > 95:
        raise ConfigError(f"JPEG_QUALITY must be at most 95, got {quality}")
    marked = {n.strip() for n in env.get("WATERMARK_SIZES", "").split(",") if n.strip()}
    if marked - {spec.name for spec in sizes}:
        unknown = ", ".join(sorted(marked - {spec.name for spec in sizes}))
        raise ConfigError(f"WATERMARK_SIZES: no thumbnail size named {unknown}")
    text_mark, image_key = _watermark(env)
    return Settings(
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
            include_gps=_bool(env, "INCLUDE_GPS"),
            watermark=text_mark,
        ),
        max_receive_count=_int(env, "MAX_RECEIVE_COUNT", 3),
        labels=_label_settings(env),
        function_timeout=_int(env, "FUNCTION_TIMEOUT", 60),
        results_documents=_results_documents(env),
        record_workers=_int(env, "RECORD_WORKERS", lanes.record_workers(memory)),
        render_slots=_int(env, "RENDER_SLOTS", lanes.render_slots(memory, max_decode)),
        watermark_image_key=image_key,
    )


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


def watermark_from_image(env: Mapping[str, str], image: bytes) -> Watermark:
    """The image watermark, once its bytes are read (handlers/process.py)."""
    return _mark(env, image=image)


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


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read on first use (so tests can set the environment first)."""
    return load()
