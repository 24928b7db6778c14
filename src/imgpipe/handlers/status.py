"""HTTP API: ``GET /images/{key+}`` and ``GET /images`` (see ``imgpipe.api``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..api import Response, key_parameter
from ..config import status_settings

logger = Logger()


def authorized(event: dict[str, Any], mode: str) -> bool:
    """Defence in depth behind API Gateway's authorizer: the request must carry the identity
    the stage's mode produces (a route deployed without its authorizer answers 403, not
    data). An unknown mode refuses everything."""
    if mode == "none":
        return True
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    if not isinstance(authorizer, dict):
        return False
    if mode == "iam":
        iam = authorizer.get("iam")
        return isinstance(iam, dict) and bool(iam.get("accessKey") or iam.get("userArn"))
    if mode == "jwt":
        jwt = authorizer.get("jwt")
        return isinstance(jwt, dict) and isinstance(jwt.get("claims"), dict)
    return False


_FORBIDDEN = Response(403, {"message": "Forbidden"})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    mode = status_settings().api_auth
    if not authorized(event, mode):
        logger.warning("refused: no authorizer identity", extra={"mode": mode})
        return _FORBIDDEN.as_lambda()
    http = event.get("requestContext", {}).get("http", {})
    method = http.get("method", "GET")
    key = (event.get("pathParameters") or {}).get("key")
    if key is not None:  # the list route has none
        key = key_parameter(key, str(event.get("rawPath", "")))
    path = "/images" if key is None else f"/images/{key}"
    return (
        bootstrap.status_api()
        .handle(method, path, dict(event.get("queryStringParameters") or {}))
        .as_lambda()
    )
