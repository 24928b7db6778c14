"""HTTP API: ``GET /images/{key+}`` and ``GET /images`` (see ``imgpipe.api``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws
from ..api import StatusApi
from ..catalog import Catalog
from ..config import settings

logger = Logger()


@lru_cache(maxsize=1)
def api() -> StatusApi:
    cfg = settings()
    return StatusApi(
        Catalog(aws.dynamodb(), cfg.table_name), aws.s3(), cfg.uploads_bucket, cfg.derived_bucket
    )


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    http = event.get("requestContext", {}).get("http", {})
    method = http.get("method", "GET")
    key = (event.get("pathParameters") or {}).get("key")
    # API Gateway hands the {key+} parameter over URL-decoded; the list route has none.
    path = "/images" if key is None else f"/images/{key}"
    return api().handle(method, path, dict(event.get("queryStringParameters") or {})).as_lambda()
