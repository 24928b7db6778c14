"""The imgpipe checkout the local tools work from (serverless.yml, node_modules, the MiniStack
venv): ``IMGPIPE_PROJECT_DIR``, else the checkout this package was installed from (``make
install`` installs it in editable mode), so `imgpipe local ...` works from any folder."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ENV = "IMGPIPE_PROJECT_DIR"


class ProjectNotFound(FileNotFoundError):
    pass


def project_dir() -> Path:
    explicit = os.environ.get(PROJECT_ENV, "").strip()
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not (root / "serverless.yml").exists():
            raise ProjectNotFound(f"{PROJECT_ENV}={explicit}: no serverless.yml there")
        return root
    checkout = Path(__file__).resolve().parents[3]  # src/imgpipe/local/project.py
    if (checkout / "serverless.yml").exists():
        return checkout
    raise ProjectNotFound(
        "the imgpipe checkout was not found (imgpipe is not installed from one): set "
        f"{PROJECT_ENV} to the folder holding serverless.yml"
    )
