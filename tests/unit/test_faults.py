"""The harness's fault injection: attached to a session, reaching every client from it."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.harness import faults


def test_full_rate_fails_every_call_of_clients_made_afterwards() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        injector = faults.install(session, 1.0)
        client = session.client("dynamodb")
        with pytest.raises(ClientError) as info:
            client.list_tables()
        assert info.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert injector.injected == 1
        # services outside the three the pipeline writes to are left alone
        session.client("sts").get_caller_identity()
        assert injector.injected == 1


def test_partial_rate_is_roughly_that_fraction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.SEED_ENV, "7")
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        injector = faults.install(session, 0.2)
        client = session.client("s3")
        failures = 0
        for _ in range(500):
            try:
                client.list_buckets()
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "SlowDown"
                failures += 1
        assert failures == injector.injected
        assert 60 <= failures <= 140


def test_a_plain_session_is_untouched() -> None:
    with mock_aws():
        boto3.Session(region_name="us-east-1").client("s3").list_buckets()


@pytest.mark.parametrize("rate", [2.0, -0.1])
def test_bad_rate(rate: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        faults.install(boto3.Session(region_name="us-east-1"), rate)
