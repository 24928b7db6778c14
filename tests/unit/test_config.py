from __future__ import annotations

from pathlib import Path

import pytest

import imgpipe
from imgpipe.config import (
    ConfigError,
    ReconcileSettings,
    RedriveSettings,
    StatusSettings,
    function_timeout,
    load,
)
from imgpipe.imaging import Limits

BASE = {"UPLOADS_BUCKET": "u", "DERIVED_BUCKET": "d", "TABLE_NAME": "t"}


def test_defaults() -> None:
    cfg = load(BASE)
    assert [s.size for s in cfg.render.sizes] == [1024, 512, 128]
    assert cfg.max_receive_count == 3 and cfg.render.jpeg_quality == 85 and cfg.topic_arn == ""
    assert cfg.render.limits == Limits() and cfg.render.include_gps is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "UPLOADS_BUCKET is not set"),
        ({**BASE, "MAX_BYTES": "lots"}, "MAX_BYTES must be an integer"),
        ({**BASE, "MAX_PIXELS": "-1"}, "MAX_PIXELS must be positive"),
        ({**BASE, "THUMBNAIL_SIZES": "big"}, "THUMBNAIL_SIZES"),
        ({**BASE, "JPEG_QUALITY": "100"}, "at most 95"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(env)


def test_label_settings_from_env() -> None:
    cfg = load({**BASE, "LABELER": "local", "MIN_CONFIDENCE": "60", "DETECTORS": "faces,text"})
    assert (cfg.labels.backend, cfg.labels.min_confidence) == ("local", 60.0)
    assert cfg.labels.detectors == {"faces", "text"}
    assert load(BASE).labels.backend == "none"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABELER": "openai"}, "LABELER must be one of"),
        ({"DETECTORS": "faces,celebrities"}, "unknown celebrities"),
        ({"MIN_CONFIDENCE": "101"}, "at most 100"),
    ],
)
def test_bad_label_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load({**BASE, **env})


def test_results_documents_default_off_and_refuse_unknown_formats() -> None:
    from imgpipe.config import ConfigError, load

    base = {"UPLOADS_BUCKET": "u", "DERIVED_BUCKET": "d", "TABLE_NAME": "t"}
    assert load(base).results_documents == ()
    assert load({**base, "RESULTS_DOCUMENTS": "csv, json"}).results_documents == ("json", "csv")
    with pytest.raises(ConfigError, match="RESULTS_DOCUMENTS"):
        load({**base, "RESULTS_DOCUMENTS": "xml"})


def test_lanes_and_render_slots_follow_memory() -> None:
    from imgpipe.config import load

    base = {"UPLOADS_BUCKET": "u", "DERIVED_BUCKET": "d", "TABLE_NAME": "t"}
    small = load({**base, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"})
    big = load({**base, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096"})
    assert (small.record_workers, small.render_slots) == (4, 1)
    assert (big.record_workers, big.render_slots) == (8, 6)
    assert load({**base, "RENDER_SLOTS": "2"}).render_slots == 2


def test_each_function_reads_only_its_own_settings() -> None:
    # The process function's broken watermark and sizes do not stop the status API.
    broken = {**BASE, "WATERMARK": "bogus", "THUMBNAIL_SIZES": "big", "API_AUTH": "JWT"}
    status = StatusSettings.from_env(broken)
    assert (status.table_name, status.derived_bucket, status.api_auth) == ("t", "d", "jwt")
    assert StatusSettings.from_env(BASE).api_auth == "iam"
    redrive = RedriveSettings.from_env({"IMAGES_QUEUE_URL": "q", "DLQ_URL": "dlq"})
    assert (redrive.images_queue_url, redrive.dlq_url, redrive.use_move_task) == ("q", "dlq", True)
    manual = RedriveSettings.from_env(
        {"IMAGES_QUEUE_URL": "q", "DLQ_URL": "dlq", "REDRIVE_STRATEGY": "manual"}
    )
    assert manual.use_move_task is False
    reconcile = ReconcileSettings.from_env({**BASE, "RECONCILE_FIX": "yes"})
    assert (reconcile.fix, reconcile.min_age) == (True, 900)
    assert ReconcileSettings.from_env({**BASE, "RECONCILE_MIN_AGE": "0"}).min_age == 0


@pytest.mark.parametrize(
    ("cls", "env", "message"),
    [
        (StatusSettings, {**BASE, "API_AUTH": "open"}, "API_AUTH must be one of iam, jwt, none"),
        (StatusSettings, {"TABLE_NAME": "t"}, "UPLOADS_BUCKET is not set"),
        (RedriveSettings, {"IMAGES_QUEUE_URL": "q"}, "DLQ_URL is not set"),
        (
            RedriveSettings,
            {"IMAGES_QUEUE_URL": "q", "DLQ_URL": "d", "REDRIVE_STRATEGY": "fast"},
            "REDRIVE_STRATEGY must be one of auto, manual",
        ),
        (ReconcileSettings, {**BASE, "RECONCILE_FIX": "maybe"}, "RECONCILE_FIX must be true"),
        (ReconcileSettings, {**BASE, "RECONCILE_MIN_AGE": "15m"}, "must be an integer"),
        (ReconcileSettings, {**BASE, "RECONCILE_MIN_AGE": "-1"}, "at least 0"),
    ],
)
def test_bad_function_settings_name_the_variable(
    cls: type[StatusSettings | RedriveSettings | ReconcileSettings],
    env: dict[str, str],
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        cls.from_env(env)


def test_the_function_timeout_is_parsed_once_the_same_way_for_the_clients() -> None:
    assert function_timeout({}) == 60 and function_timeout({"FUNCTION_TIMEOUT": "30"}) == 30
    with pytest.raises(ConfigError, match="FUNCTION_TIMEOUT must be an integer"):
        function_timeout({"FUNCTION_TIMEOUT": "30s"})  # AWS clients used to fall back to 60


def test_no_handler_reads_the_environment_itself() -> None:
    src = Path(imgpipe.__file__).parent
    for path in [*sorted((src / "handlers").glob("*.py")), src / "aws.py"]:
        assert "os.environ" not in path.read_text(), f"{path.name} reads os.environ: use config"


def test_the_thumbnails_cache_header_is_part_of_the_settings_fingerprint() -> None:
    """Switching delivery cdn -> presigned must re-render (backfill --if-settings-changed):
    thumbnails written public and immutable would stay so. The default header leaves the
    fingerprint as it was before the header counted, so default stages re-render nothing."""
    from imgpipe.config import PRIVATE_CACHE, fingerprint, load

    default = load(BASE)
    cdn = load({**BASE, "THUMBNAIL_CACHE": "public, max-age=31536000, immutable"})
    assert default.thumbnail_cache == PRIVATE_CACHE
    assert cdn.fingerprint != default.fingerprint
    assert load({**BASE, "THUMBNAIL_CACHE": PRIVATE_CACHE}).fingerprint == default.fingerprint
    # the default stage's fingerprint before the header counted (a change here makes
    # backfill --if-settings-changed re-render every default stage's images: say so if meant)
    assert fingerprint(default, {}) == default.fingerprint == "429cbc055c5e4d57"


def test_the_stage_backfill_rate_is_capped() -> None:
    from imgpipe.config import BackfillSettings

    env = {**BASE, "IMAGES_QUEUE_URL": "q"}
    assert BackfillSettings.from_env({**env, "BACKFILL_RATE": "1000"}).rate == 1000.0
    with pytest.raises(ConfigError, match="BACKFILL_RATE must be at most 1000, got 1001"):
        BackfillSettings.from_env({**env, "BACKFILL_RATE": "1001"})
