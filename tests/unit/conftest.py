"""Unit fixtures: moto in-process (no network), the stack's resources created directly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgpipe import aws, bootstrap
from imgpipe.catalog import Catalog
from tests.harness.samples import LambdaContext as LambdaContext  # re-exported for the tests
from tests.harness.tables import create_images_table

REGION = "us-east-1"


@dataclass
class FakeStack:
    uploads: str
    derived: str
    table: str
    topic_arn: str
    s3: Any
    ddb: Any
    sqs: Any

    def upload(self, key: str, body: bytes) -> str:
        """Put an object in the uploads bucket; its ETag."""
        etag: str = self.s3.put_object(Bucket=self.uploads, Key=key, Body=body)["ETag"]
        return etag.strip('"')

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.ddb, self.table)

    def derived_keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.derived, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def throttle() -> Callable[[str], Callable[..., None]]:
    """``aws.s3()``'s GetObject of one key answers SlowDown: a transient failure."""

    def for_key(key: str) -> Callable[..., None]:
        def hook(params: dict[str, Any], **_: Any) -> None:
            if params.get("Key") == key:
                raise ClientError(
                    {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                    "GetObject",
                )

        aws.s3().meta.events.register("before-parameter-build.s3.GetObject", hook)
        return hook

    return for_key


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real credentials or endpoints can leak into a unit test."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "imgpipe-test")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "imgpipe-test")
    _reset_caches()
    yield
    _reset_caches()


def _reset_caches() -> None:
    bootstrap.reset()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStack]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        for bucket in ("uploads", "derived"):
            s3.create_bucket(Bucket=bucket)
        create_images_table(ddb)
        topic = sns.create_topic(Name="events")["TopicArn"]
        monkeypatch.setenv("UPLOADS_BUCKET", "uploads")
        monkeypatch.setenv("DERIVED_BUCKET", "derived")
        monkeypatch.setenv("TABLE_NAME", "images")
        monkeypatch.setenv("TOPIC_ARN", topic)
        # off by default (make bench-cost); the unit tests follow the documents too
        monkeypatch.setenv("RESULTS_DOCUMENTS", "json,csv")
        _reset_caches()
        yield FakeStack("uploads", "derived", "images", topic, s3, ddb, sqs)
