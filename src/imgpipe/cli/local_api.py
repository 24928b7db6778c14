"""The loopback status API the local commands host (its address kept for other commands)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..deployment import Deployment
from ..local.endpoint import state_dir
from ..web.server import ApiServer, stage_api


@contextlib.contextmanager
def serve_api(stack: Deployment, port: int = 0) -> Iterator[ApiServer]:
    with ApiServer(stage_api(stack), port) as api:
        marker = state_dir() / "api.url"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch(mode=0o600)  # it holds the token: this user's only
        marker.write_text(api.gallery_url)
        try:
            yield api
        finally:
            marker.unlink(missing_ok=True)
