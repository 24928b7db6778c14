"""docs/usage.md's client generation, as written: openapi-typescript (the repository's pinned
devDependency) reads the published contract and types every route and the record."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imgpipe.record import SCHEMA
from tests.conftest import ROOT


def test_a_typescript_client_is_generated_from_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "imgpipe.d.ts"
    subprocess.run(
        ["npx", "--no-install", "openapi-typescript", "src/imgpipe/openapi.json", "-o", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    types = out.read_text()
    for route in ('"/images"', '"/images/{key}"', '"/uploads"'):
        assert route in types
    assert f"schema: {SCHEMA};" in types
    assert 'status: "DELETED" | "DONE" | "FAILED" | "REJECTED";' in types
    assert 'labels?: components["schemas"]["Label"][];' in types
