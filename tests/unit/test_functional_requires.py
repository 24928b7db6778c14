"""The functional suite's capability checks: a skip where the endpoint may lack something, a
failure where the run knows it has it (so a broken probe cannot hide tests behind skips)."""

from __future__ import annotations

import pytest

from imgpipe.deployment import Access, Deployment
from tests.functional.conftest import EXPECT_ENV, require


def _stack(kind: str) -> Deployment:
    return Deployment("local", "u", "d", "t", "", "q", "dlq", Access(), kind=kind)


def test_present_goes_on_missing_skips_on_localstack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXPECT_ENV, raising=False)
    require(_stack("localstack"), "iam", True, "never said")
    with pytest.raises(pytest.skip.Exception, match="no IAM here"):
        require(_stack("localstack"), "iam", False, "no IAM here")


def test_a_capability_the_run_knows_of_fails_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXPECT_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="its probe is wrong"):
        require(_stack("ministack"), "iam", False, "no IAM here")  # our own: AUTH=true
    monkeypatch.setenv(EXPECT_ENV, "local-functions, ministack")  # the LocalStack stand-in
    with pytest.raises(pytest.fail.Exception):
        require(_stack("localstack"), "local-functions", False, "containers")
    with pytest.raises(pytest.skip.Exception):
        require(_stack("localstack"), "iam", False, "no IAM here")
