"""HTTP API: ``GET /render/{key+}?w=&h=&fit=&fmt=&q=&sig=`` -> 302 to one rendition (see
``imgpipe.render_api``). No authorizer: the URL's HMAC signature is the credential, so an
``<img srcset>`` can load it; every other method on the path answers 405."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..api import key_parameter
from ..codec import JsonObject, Received

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: Received, context: LambdaContext) -> JsonObject:
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    key = key_parameter(
        str((event.get("pathParameters") or {}).get("key") or ""), str(event.get("rawPath", ""))
    )
    accept = str((event.get("headers") or {}).get("accept", ""))
    query = {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
    answer = bootstrap.render_api().handle(method, key, query, accept)
    if answer.status >= 400:
        logger.info("refused", extra={"status": answer.status, "reason": answer.body["message"]})
    else:
        logger.info("rendition", extra={"cache": answer.headers.get("x-imgpipe-render")})
    return answer.as_lambda()
