from __future__ import annotations

import pytest

from imgpipe.config import ConfigError, load
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
