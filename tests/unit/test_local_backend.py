"""Choosing the local backend, and what the MiniStack backend adds to a deployed stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgpipe.local import endpoint
from imgpipe.local.deploy import _batch_statements, backend_params
from tests.conftest import ROOT


@pytest.fixture
def no_ministack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .venv-ministack above
    monkeypatch.delenv(endpoint.MINISTACK_ENV, raising=False)
    monkeypatch.delenv(endpoint.BACKEND_ENV, raising=False)


@pytest.fixture
def fake_ministack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    launcher = tmp_path / "ministack"
    launcher.write_text("#!/bin/sh\n")
    monkeypatch.setenv(endpoint.MINISTACK_ENV, str(launcher))
    monkeypatch.delenv(endpoint.BACKEND_ENV, raising=False)
    return launcher


def test_ministack_is_the_default_where_installed(fake_ministack: Path) -> None:
    assert endpoint.choose_backend() == ("ministack", "installed")
    assert endpoint.ministack_executable() == fake_ministack


def test_without_ministack_moto_is_used_and_the_reason_said(no_ministack: None) -> None:
    backend, why = endpoint.choose_backend()
    assert backend == "moto"
    assert "MiniStack is not installed" in why and "make install" in why


def test_asking_for_moto_or_ministack(
    fake_ministack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(endpoint.BACKEND_ENV, "moto")
    assert endpoint.choose_backend() == ("moto", "asked for")
    assert endpoint.choose_backend("ministack") == ("ministack", "asked for")  # flag wins
    monkeypatch.setenv(endpoint.BACKEND_ENV, "docker")
    with pytest.raises(ValueError, match="IMGPIPE_BACKEND must be one of"):
        endpoint.choose_backend()


def test_asking_for_a_missing_ministack_says_how_to_install_it(no_ministack: None) -> None:
    with pytest.raises(FileNotFoundError, match="make install"):
        endpoint.choose_backend("ministack")


def test_backend_parameters() -> None:
    ministack = backend_params(endpoint.Endpoint("http://localhost:1", "ministack", 1))
    assert ministack["triggerEnabled"] == "true"
    assert 2 <= int(ministack["maxConcurrency"]) <= max(2, os.cpu_count() or 2)
    assert backend_params(endpoint.Endpoint("http://localhost:1", "moto", 1)) == {}


def test_batch_names_only_for_granted_sqs_actions_on_the_same_resources() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
            "Resource": "arn:aws:sqs:us-east-1:000000000000:dlq",
        },
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:::images"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
        {"Effect": "Deny", "Action": ["sqs:DeleteMessage"], "Resource": "*"},
    ]
    assert _batch_statements(statements) == [
        {
            "Effect": "Allow",
            "Action": ["sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessageBatch"],
            "Resource": "arn:aws:sqs:us-east-1:000000000000:dlq",
        },
        {"Effect": "Allow", "Action": ["sqs:SendMessageBatch"], "Resource": "arn:aws:sqs:::images"},
    ]


def test_fault_site_reaches_sessions_made_in_a_lambda_worker() -> None:
    """MiniStack's workers import the harness's sitecustomize from PYTHONPATH: every boto3
    session the handler makes then fails S3/DynamoDB/SNS calls at the asked rate."""
    code = (
        "import boto3\nfrom moto import mock_aws\n"
        "with mock_aws():\n"
        "    try:\n"
        "        boto3.Session(region_name='us-east-1').client('s3').list_buckets()\n"
        "        print('no fault')\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc.response['Error']['Code'])\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "tests" / "harness" / "faultsite"),
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }
    faulty = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "IMGPIPE_FAULT_RATE": "1", "AWS_LAMBDA_FUNCTION_NAME": "f"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert faulty.stdout.strip() == "ClientError SlowDown"
    # outside a Lambda worker (MiniStack's own server) it does nothing
    plain = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "IMGPIPE_FAULT_RATE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert plain.stdout.strip() == "no fault"


def test_the_moto_endpoint_answers_no_cross_origin_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A web page open on the developer's machine must not be able to read or reset the local
    endpoint: moto's global CORS is off, so a browser refuses the page the answers."""
    import urllib.request

    monkeypatch.setenv(endpoint.STATE_DIR_ENV, str(tmp_path))
    started = endpoint._start_moto(timeout=30)
    try:
        req = urllib.request.Request(
            f"{started.url}/moto-api/data.json", headers={"Origin": "http://evil.example"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
            assert "access-control-allow-origin" not in {k.lower() for k in resp.headers}
    finally:
        os.killpg(started.pid, 15)
