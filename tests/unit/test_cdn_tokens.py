"""delivery cdn: thumbnails' path tokens keyed by the stage's secret, so a public URL cannot be
worked out from a key and a version (S3's sequencer, which is no secret)."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from imgpipe import config, derived
from imgpipe.bootstrap import with_token_secret
from imgpipe.config import ConfigError
from imgpipe.events import S3ObjectEvent
from imgpipe.outcomes import Status
from imgpipe.pipeline import Pipeline
from tests.conftest import jpeg_bytes
from tests.harness.memory_ports import MemoryCatalog, MemoryPublisher, MemoryStore, etag_of

ENV = {"UPLOADS_BUCKET": "up", "DERIVED_BUCKET": "down", "TABLE_NAME": "t", "TOPIC_ARN": "arn"}
SECRET = b"k" * 64


def test_a_keyed_token_cannot_be_derived_from_the_version() -> None:
    plain = derived.token("s:0A")
    keyed = derived.token("s:0A", SECRET)
    assert len(keyed) == len(plain) == derived.TOKEN_LENGTH and int(keyed, 16) >= 0
    assert keyed != plain
    assert derived.token("s:0A", b"another stage's" + SECRET) != keyed
    assert derived.token("s:0A", SECRET) == keyed  # stable: one key per version
    layout = derived.Layout(("small",), SECRET)
    assert layout.thumbnail_key("a.jpg", "s:0A", "small", "jpg") == (
        f"thumbnails/a.jpg/{keyed}/small.jpg"
    )
    assert layout.results_key("a.jpg", "s:0A", "json") == f"results/a.jpg/{keyed}.json"
    assert SECRET.decode() not in repr(layout)


def _pipeline(secret: bytes) -> tuple[Pipeline, MemoryCatalog, MemoryStore]:
    catalog, store = MemoryCatalog(), MemoryStore()
    settings = replace(config.load(ENV), token_secret=secret)
    return Pipeline(settings, store, catalog, MemoryPublisher()), catalog, store


def _upload(store: MemoryStore, key: str, data: bytes, sequencer: str) -> S3ObjectEvent:
    store.objects[("up", key)] = data
    return S3ObjectEvent("ObjectCreated:Put", "up", key, len(data), etag_of(data), sequencer, "t")


def test_the_pipeline_writes_under_keyed_tokens_and_cleans_them() -> None:
    pipeline, catalog, store = _pipeline(SECRET)
    event = _upload(store, "trip/a.jpg", jpeg_bytes((800, 600)), "0A")
    assert pipeline.handle(event).status is Status.DONE
    record = catalog.get("up", "trip/a.jpg")
    assert record is not None
    keyed = derived.token(record.version, SECRET)
    written = sorted(k for b, k in store.objects if b == "down")
    assert written and all(k.startswith(f"thumbnails/trip/a.jpg/{keyed}/") for k in written)
    assert derived.token(record.version) not in "".join(written)
    # what a crashed attempt of a version that lost may have left is found under the same key
    stray = pipeline.layout.thumbnail_key("trip/a.jpg", "s:99", "small", "webp")
    store.objects[("down", stray)] = b"x"
    pipeline.outputs.abandon("trip/a.jpg", "s:99", record)
    assert ("down", stray) not in store.objects
    # and a removal takes every thumbnail with it
    gone = S3ObjectEvent("ObjectRemoved:Delete", "up", "trip/a.jpg", 0, "", "0B", "t")
    del store.objects[("up", "trip/a.jpg")]
    assert pipeline.handle(gone).status is Status.DELETED
    assert [k for b, k in store.objects if b == "down"] == []


def test_the_secret_is_read_once_at_start_and_a_bad_one_fails_the_start() -> None:
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(Name="tokens", SecretString="s" * 64)["ARN"]
        short = sm.create_secret(Name="short", SecretString="s" * 8)["ARN"]
        cfg = config.load({**ENV, "TOKEN_SECRET_ARN": arn})
        assert cfg.token_secret_arn == arn and cfg.token_secret == b""
        loaded = with_token_secret(cfg, lambda: sm)
        assert loaded.token_secret == b"s" * 64
        assert "s" * 64 not in repr(loaded)  # never in a log line
        with pytest.raises(ConfigError, match="TOKEN_SECRET_ARN: cannot read the token secret"):
            with_token_secret(replace(cfg, token_secret_arn=arn + "-gone"), lambda: sm)
        with pytest.raises(ConfigError, match="at least 32 characters"):
            with_token_secret(replace(cfg, token_secret_arn=short), lambda: sm)
    unkeyed = config.load(ENV)
    assert with_token_secret(unkeyed, lambda: pytest.fail("no secret to read")) is unkeyed
