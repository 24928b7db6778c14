"""The published contract against the running API: schemathesis 4 (``st run``, every check
on) on the local stack's HTTP API (API Gateway and the packaged Lambdas, each request signed
with SigV4) and on the loopback server (`imgpipe gallery` / `imgpipe local run`, the per-run
token), each with a fixed seed and a fresh one (printed, to replay a failure).

It runs the checks a third party would: responses conform to the schema (types, required
fields, no undeclared ones), schema-valid requests are served and invalid ones refused, every
status code is declared, credentials are enforced (unsigned and forged requests refused),
undeclared methods answer 405 with ``Allow``. ``schemathesis.toml`` at the root says what this
suite tells the tester, and why. The spec itself is checked against the code in
``unit/test_contract.py``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imgpipe import contract
from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.web.server import ApiServer, stage_api
from tests.conftest import ROOT
from tests.functional.conftest import MAX_BYTES, wait_for
from tests.harness.backends import processing

pytestmark = [pytest.mark.functional]

EXAMPLES = 25  # per operation and phase: about 400 requests per run
PHOTOS = ("grace-hopper.jpg", "rotated-exif-6.jpg", "broken.jpg")  # labels, text, a REJECTED


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The contract for this suite's stage, whose maxBytes is not the default (the committed
    file is the default stage's: unit/test_contract.py)."""
    path = tmp_path_factory.mktemp("contract") / "openapi.json"
    path.write_text(json.dumps(contract.document(max_bytes=MAX_BYTES)))
    return path


@pytest.fixture(scope="module")
def loopback(local_stack: Deployment) -> Iterator[ApiServer]:
    with ApiServer(stage_api(local_stack)) as started:
        yield started


@pytest.fixture(scope="module")
def answers_with_data(local_stack: Deployment, catalog: Catalog) -> None:
    """Records of each kind behind the routes, so that real answers are checked, not only
    empty pages and 404s."""
    keys = [f"contract/{name}" for name in PHOTOS]
    s3 = local_stack.client("s3")
    with processing(local_stack):
        for name, key in zip(PHOTOS, keys, strict=True):
            data = (ROOT / "demo" / "photos" / name).read_bytes()
            s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=data)
        wait_for(catalog, local_stack, keys, timeout=120)


def _st(
    spec: Path, url: str, seed: int, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is in the dev extra"
    return subprocess.run(
        [
            *(st, "run", str(spec), "--url", url, "--checks", "all"),
            *("--seed", str(seed), "--max-examples", str(EXAMPLES), "--workers", "1"),
            *args,
        ],
        cwd=ROOT,  # schemathesis.toml
        env={**os.environ, **env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _both_seeds(spec: Path, url: str, env: dict[str, str], *args: str) -> None:
    fresh = random.SystemRandom().randrange(2**32)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda seed: (seed, _st(spec, url, seed, env, *args)), (1, fresh)))
    for seed, run in runs:
        summary = run.stdout[-6000:]
        assert run.returncode == 0, f"seed {seed}: st replay with --seed {seed}\n{summary}"
        # warnings may remain (the loopback server has no renditions: 404 every time)
        assert "FAILURES" not in run.stdout and " passed" in run.stdout, summary
        assert "4/4" in run.stdout  # every operation of the spec was tested


def _render_secret(stack: Deployment) -> str:
    answer = stack.client("secretsmanager").get_secret_value(SecretId=stack.render_secret_name)
    return str(answer["SecretString"])


def test_the_stages_api_keeps_its_contract(
    local_stack: Deployment, spec: Path, answers_with_data: None
) -> None:
    """API Gateway (the local stack's) and the status and uploads Lambdas, signed."""
    assert local_stack.api_url, "the local stack serves the HTTP API"
    access = local_stack.access
    env = {
        "SCHEMATHESIS_HOOKS": "tests.harness.schemathesis_sigv4",
        "PYTHONPATH": str(ROOT),
        "IMGPIPE_API_URL": local_stack.api_url,
        "AWS_ACCESS_KEY_ID": str(access.key_id),
        "AWS_SECRET_ACCESS_KEY": str(access.secret),
        "AWS_DEFAULT_REGION": "us-east-1",
        "IMGPIPE_RENDER_SECRET": _render_secret(local_stack),
    }
    _both_seeds(spec, local_stack.api_url, env)


def test_the_loopback_server_keeps_its_contract(
    loopback: ApiServer, spec: Path, answers_with_data: None
) -> None:
    """The gallery's server: the same answers (forwarded), its own token, its own 405s."""
    _both_seeds(spec, loopback.url, {}, "--header", f"Authorization: Bearer {loopback.token}")
