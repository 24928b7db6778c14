from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgpipe import faults


def test_no_rate_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.RATE_ENV, raising=False)
    with mock_aws():
        assert faults.install(boto3.client("s3", region_name="us-east-1"), "s3") is None


def test_full_rate_fails_every_call_with_a_retryable_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.RATE_ENV, "1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        injector = faults.install(client, "dynamodb")
        with pytest.raises(ClientError) as info:
            client.list_tables()
        assert info.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert injector is not None and injector.injected == 1


def test_partial_rate_is_roughly_that_fraction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.SEED_ENV, "7")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        injector = faults.install(client, "s3", rate=0.2)
        failures = 0
        for _ in range(500):
            try:
                client.list_buckets()
            except ClientError:
                failures += 1
        assert injector is not None and failures == injector.injected
        assert 60 <= failures <= 140


@pytest.mark.parametrize("raw", ["2", "-0.1"])
def test_bad_rate(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(faults.RATE_ENV, raw)
    with pytest.raises(ValueError, match=faults.RATE_ENV):
        faults.rate_from_env()
