"""boto3 clients, created once per process and shared (Lambda reuses them across invocations).

The endpoint comes from boto3's own ``AWS_ENDPOINT_URL`` setting, so the same code talks to AWS,
LocalStack or MiniStack without a branch here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from . import config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

ATTEMPTS = 3


def client_config(function_timeout: float | None = None) -> Config:
    """Standard retry mode (it backs off on throttling) with every attempt's connect and read
    timeouts sized so that all attempts together take at most half the function's timeout
    (``FUNCTION_TIMEOUT``): a dependency that never answers surfaces as a transient failure
    the handler can record, not as a Lambda timeout that loses the whole batch."""
    if function_timeout is None:
        function_timeout = config.function_timeout()
    per_attempt = max(1.0, function_timeout / 2 / ATTEMPTS)
    return Config(
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
        # lanes of a batch x the writes of one image, without waiting for a connection
        max_pool_connections=50,
        # The service validates every request anyway; botocore's client-side pass over our own
        # code-built parameters cost ~11 ms of CPU per image (make bench-aws, profiled).
        parameter_validation=False,
        connect_timeout=max(0.5, per_attempt / 4),
        read_timeout=per_attempt * 3 / 4,
    )


@lru_cache(maxsize=1)
def session() -> boto3.Session:
    """The process's session: every client below comes from it, so event handlers registered
    on it first (the test harness's fault injection) reach them all."""
    return boto3.Session()


def _client(service: str, config: Config | None = None) -> Any:
    return session().client(service, config=config or client_config())  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def s3() -> S3Client:
    # SigV4 everywhere: presigned thumbnail URLs must work in every region (SigV2 does not).
    client: S3Client = _client("s3", client_config().merge(Config(signature_version="s3v4")))
    return client


@lru_cache(maxsize=1)
def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


@lru_cache(maxsize=1)
def sns() -> SNSClient:
    client: SNSClient = _client("sns")
    return client


@lru_cache(maxsize=1)
def rekognition() -> RekognitionClient:
    """Adaptive retries: Rekognition's quota (50 calls a second per operation by default) is
    shared by every environment and lane, and an image's detectors are asked at once; after a
    throttle this environment's calls slow down (botocore's client-side rate limiter) instead
    of spending their attempts and failing the image."""
    adaptive = Config(retries={"mode": "adaptive", "total_max_attempts": ATTEMPTS})
    client: RekognitionClient = _client("rekognition", client_config().merge(adaptive))
    return client


@lru_cache(maxsize=1)
def lambda_() -> LambdaClient:
    client: LambdaClient = _client("lambda")
    return client


def reset() -> None:
    """Forget cached clients (tests change endpoints and credentials between cases)."""
    for fn in (session, s3, sqs, dynamodb, sns, rekognition, lambda_):
        fn.cache_clear()


def secrets() -> Any:
    """Secrets Manager: read once, at the process function's start-up (the CDN token secret),
    so no cached client is kept."""
    return _client("secretsmanager")
