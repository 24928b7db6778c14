"""HTTP API: ``GET /images/{key+}`` and ``GET /images`` (see ``imgpipe.api``)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..api import Response, key_parameter
from ..callers import caller
from ..codec import JsonObject, Received
from ..config import status_settings

logger = Logger()


_FORBIDDEN = Response(403, {"message": "Forbidden"})


@logger.inject_lambda_context(clear_state=True)
def handler(event: Received, context: LambdaContext) -> JsonObject:
    cfg = status_settings()
    who = caller(event, cfg)
    if who is None:
        logger.warning("refused: not the stage's identity or scope", extra={"mode": cfg.api_auth})
        return _FORBIDDEN.as_lambda()
    http = event.get("requestContext", {}).get("http", {})
    method = http.get("method", "GET")
    key = (event.get("pathParameters") or {}).get("key")
    if key is not None:  # the list route has none
        key = key_parameter(key, str(event.get("rawPath", "")))
    path = "/images" if key is None else f"/images/{key}"
    return (
        bootstrap.status_api()
        .handle(method, path, dict(event.get("queryStringParameters") or {}), within=who.within)
        .as_lambda()
    )
