"""HTTP API: ``POST /uploads`` -> a presigned POST for one new upload (see ``imgpipe.uploads``)."""

from __future__ import annotations

import base64
import binascii

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..api import Response
from ..callers import caller
from ..codec import JsonObject, Received
from ..config import upload_settings
from ..uploads import answer

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: Received, context: LambdaContext) -> JsonObject:
    cfg = upload_settings()
    if cfg.api_auth == "none" and not cfg.anonymous:
        # the route is not deployed in that case (serverless.yml): one added by hand stays shut
        logger.warning("refused: apiAuth none without anonymousUploadsFromAnyone")
        return Response(403, {"message": "Forbidden"}).as_lambda()
    who = caller(event, cfg)
    if who is None:
        logger.warning("refused: not the stage's identity or scope", extra={"mode": cfg.api_auth})
        return Response(403, {"message": "Forbidden"}).as_lambda()
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST")
    if method != "POST":  # the path's ANY route: every other method
        return Response(405, {"message": "use POST"}, {"allow": "POST"}).as_lambda()
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return Response(400, {"message": "the request is not UTF-8 JSON"}).as_lambda()
    result = answer(
        bootstrap.presigner(), cfg.uploads_bucket, who.within, str(body), cfg.max_bytes, cfg.expires
    )
    if result.status == 201:
        logger.info("upload form", extra={"key": result.body["key"]})
    return result.as_lambda()
