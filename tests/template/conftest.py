"""The packaged template (`make package` writes build/dev), read once per module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "build" / "dev"


def packaged(folder: Path) -> dict[str, Any]:
    """The CloudFormation template `make package` wrote into ``folder``."""
    path = folder / "cloudformation-template-update-stack.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make package` first")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return packaged(PACKAGE)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = template["Resources"]
    return res
