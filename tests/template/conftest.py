"""The packaged template (`make package` writes build/dev), read once per module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "build" / "dev"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    path = PACKAGE / "cloudformation-template-update-stack.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make package` first")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = template["Resources"]
    return res
