"""What the Lambda zip carries must stay in step with what the package declares."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT


def _names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0].lower() for line in lines}


def test_lambda_requirements_match_runtime_dependencies() -> None:
    declared = _names(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    shipped = _names(
        [
            line
            for line in (ROOT / "requirements-lambda.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    )
    # boto3 comes with the Lambda runtime; click and platformdirs are the CLI's and the local
    # stack's, never imported by a handler.
    assert shipped == declared - {"boto3", "click", "platformdirs"}
    for line in (ROOT / "requirements-lambda.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, f"pin {line!r}: the zip must be reproducible"


def test_status_and_redrive_handlers_do_not_load_pillow() -> None:
    """Their cold start must not pay for Pillow: the imaging core loads it on first render."""
    import subprocess
    import sys

    code = (
        "import sys, imgpipe.handlers.status, imgpipe.handlers.redrive\n"
        "print(sorted(m for m in sys.modules if m == 'PIL' or m.startswith('PIL.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert out.stdout.strip() == "[]"


def test_the_local_runtime_carries_the_local_ml_extra() -> None:
    """MiniStack's interpreter stands in for the container image's: same offline models."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["local-ml"]
    lines = [
        line.strip()
        for line in (ROOT / "requirements-ministack.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert set(extra) <= set(lines)
    assert any(line.startswith("ministack==") for line in lines)
