from __future__ import annotations

import pytest

from imgpipe.config import ConfigError, load

BASE = {"UPLOADS_BUCKET": "u", "DERIVED_BUCKET": "d", "TABLE_NAME": "t"}


def test_defaults() -> None:
    cfg = load(BASE)
    assert [s.size for s in cfg.sizes] == [1024, 512, 128]
    assert cfg.max_receive_count == 3 and cfg.jpeg_quality == 85 and cfg.topic_arn == ""


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
