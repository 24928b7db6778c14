"""HTTP API ``GET /images/{key+}``: the catalog record of one upload."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws
from ..catalog import Catalog
from ..config import settings

logger = Logger()


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, ensure_ascii=False, default=str),
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    key = (event.get("pathParameters") or {}).get("key", "")
    if not key or len(key.encode()) > 1024:
        return _response(400, {"message": "expected /images/<key>, key of 1 to 1024 bytes"})
    cfg = settings()
    record = Catalog(aws.dynamodb(), cfg.table_name).get(cfg.uploads_bucket, key)
    if record is None:
        return _response(404, {"message": f"no image with key {key!r}", "key": key})
    return _response(200, record)
