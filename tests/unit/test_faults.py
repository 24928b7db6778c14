"""Injected failures: attached to a session, reaching every client made from it; and the
function environment `imgpipe local faults` writes to ask for them."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgpipe.local import faults as switch
from imgpipe.local.faultsite import sitecustomize as faults


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


def test_only_the_chosen_services_fail_and_only_until_the_end() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        injector = faults.install(session, 1.0, ("sns",), until=1.0)  # over long ago
        session.client("sns").list_topics()
        assert injector.injected == 0
        session = boto3.Session(region_name="us-east-1")
        ongoing = faults.install(session, 1.0, ("s3",))
        session.client("dynamodb").list_tables()  # not chosen: goes through
        with pytest.raises(ClientError):
            session.client("s3").list_buckets()
        assert ongoing.injected == 1
    with pytest.raises(ValueError, match="cannot fail lambda"):
        faults.install(boto3.Session(region_name="us-east-1"), 1.0, ("lambda",))


def test_the_switch_adds_and_removes_only_its_own_settings() -> None:
    base = {"TABLE_NAME": "t", "PYTHONPATH": "/opt/other"}
    on = switch.environment(base, switch.Faults(0.5, ("s3",), until=2e9))
    assert on["PYTHONPATH"] == f"{switch.FAULT_SITE}:/opt/other" and on["TABLE_NAME"] == "t"
    assert (on[switch.RATE_ENV], on[switch.SERVICES_ENV], on[switch.UNTIL_ENV]) == (
        "0.5",
        "s3",
        "2000000000",
    )
    assert switch.current(on) == switch.Faults(0.5, ("s3",), until=2e9)
    assert switch.environment(on, None) == base  # off: exactly what was there before
    assert switch.current(base) is None
    assert switch.current(switch.environment(base, switch.Faults(1.0, until=1.0))) is None  # over
    with pytest.raises(ValueError, match="services to fail"):
        switch.Faults(1.0, ("ec2",))
    with pytest.raises(ValueError, match="above 0"):
        switch.Faults(0.0)
