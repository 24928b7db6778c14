"""The local stack: finding MiniStack, the endpoint kinds, and what a local deploy adds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgpipe.local import endpoint
from imgpipe.local.deploy import (
    _batch_statements,
    endpoint_params,
    serverless_env,
    zip_python_note,
)
from imgpipe.local.project import PROJECT_ENV
from tests.conftest import ROOT


@pytest.fixture
def fake_ministack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    launcher = tmp_path / "ministack"
    launcher.write_text("#!/bin/sh\n")
    monkeypatch.setenv(endpoint.MINISTACK_ENV, str(launcher))
    return launcher


def test_an_explicit_ministack_wins(fake_ministack: Path) -> None:
    assert endpoint.ministack_executable() == fake_ministack


def test_the_projects_ministack_is_found_from_any_folder_and_never_one_planted_above(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(endpoint.MINISTACK_ENV, raising=False)
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    planted = tmp_path / ".venv-ministack" / "bin" / "ministack"
    planted.parent.mkdir(parents=True)
    planted.write_text("#!/bin/sh\necho pwned\n")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    found = endpoint.ministack_executable()
    assert found != planted
    assert found is None or found == ROOT / ".venv-ministack" / "bin" / "ministack"


def test_a_missing_ministack_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(endpoint.MINISTACK_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setenv(endpoint.STATE_DIR_ENV, str(tmp_path))
    monkeypatch.delenv("LOCALSTACK_ENDPOINT", raising=False)
    with pytest.raises(endpoint.MiniStackMissing, match="make install"):
        endpoint.up(timeout=1)


def test_one_kind_type_with_its_traits() -> None:
    ministack = endpoint.Endpoint("http://localhost:1", endpoint.Kind.MINISTACK, 1, "3.11")
    assert ministack.traits.batch_action_names and ministack.traits.zip_for_own_python
    localstack = endpoint.Endpoint("http://localhost:4566", "localstack")  # type: ignore[arg-type]
    assert localstack.kind is endpoint.Kind.LOCALSTACK and localstack.python == "3.12"
    assert not localstack.traits.batch_action_names
    with pytest.raises(ValueError, match="moto"):
        endpoint.Endpoint("http://localhost:1", "moto")  # type: ignore[arg-type]


def test_both_kinds_run_the_function_from_their_own_mapping() -> None:
    params = endpoint_params()
    assert params["triggerEnabled"] == "true"
    assert 2 <= int(params["maxConcurrency"]) <= max(2, os.cpu_count() or 2)


def test_the_zip_is_built_for_the_python_that_runs_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.7\n")
    assert endpoint.venv_python(venv / "bin" / "ministack") == "3.11"
    on_311 = endpoint.Endpoint("http://localhost:1", endpoint.Kind.MINISTACK, 1, "3.11")
    note = zip_python_note(on_311)
    assert note is not None and "built for 3.11" in note and "AWS stages stay on 3.12" in note
    assert zip_python_note(endpoint.Endpoint("http://l:1", endpoint.Kind.MINISTACK, 1)) is None
    assert serverless_env(on_311)["IMGPIPE_ZIP_PYTHON"] == "3.11"


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
        "PYTHONPATH": str(ROOT / "src" / "imgpipe" / "local" / "faultsite"),
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
    # a malformed setting in a worker: the function still starts, without faults, and says why
    typo = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "IMGPIPE_FAULT_RATE": "half", "AWS_LAMBDA_FUNCTION_NAME": "f"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert typo.stdout.strip() == "no fault" and "ignoring malformed" in typo.stderr
    unknown = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **env,
            **{"IMGPIPE_FAULT_RATE": "1", "IMGPIPE_FAULT_SERVICES": "ec2,s3"},
            "AWS_LAMBDA_FUNCTION_NAME": "f",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert unknown.stdout.strip() == "ClientError SlowDown"  # the known service still fails


def test_a_stack_recorded_by_the_retired_moto_backend_is_not_used_but_is_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(endpoint.STATE_DIR_ENV, str(tmp_path))
    monkeypatch.delenv("LOCALSTACK_ENDPOINT", raising=False)
    server = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "local.json").write_text(
            json.dumps({"url": "http://localhost:1", "kind": "moto", "pid": server.pid})
        )
        assert endpoint.current() is None
        assert endpoint.down() is True
        assert server.wait(timeout=5) != 0  # stopped, its state gone
        assert not (tmp_path / "local.json").exists()
    finally:
        if server.poll() is None:
            server.kill()


def test_two_serverless_runs_on_one_checkout_take_turns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both functional runs (and two users' deploys) build in the checkout's `.serverless/`:
    the CLI runs one at a time there, never overlapping."""
    from concurrent.futures import ThreadPoolExecutor

    from imgpipe.local.deploy import serverless

    (tmp_path / "serverless.yml").write_text("service: x\n")
    cli = tmp_path / "node_modules" / ".bin" / "serverless"
    cli.parent.mkdir(parents=True)
    log = tmp_path / "log"
    # each run writes "start" and, a moment later, "end": overlapping runs would interleave
    cli.write_text(f"#!/bin/sh\necho start >> {log}\nsleep 0.3\necho end >> {log}\n")
    cli.chmod(0o755)
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path))
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: serverless(["deploy"], None, quiet=True), range(3)))
    assert log.read_text().split() == ["start", "end"] * 3


def test_the_state_folder_is_its_owners_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shared = tmp_path / "state"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)  # as an older imgpipe left it
    monkeypatch.setenv(endpoint.STATE_DIR_ENV, str(shared))
    assert endpoint.private_state_dir() == shared
    assert shared.stat().st_mode & 0o777 == 0o700
    fresh = tmp_path / "new" / "state"
    monkeypatch.setenv(endpoint.STATE_DIR_ENV, str(fresh))
    endpoint.private_state_dir()
    assert fresh.stat().st_mode & 0o777 == 0o700
