"""`imgpipe remove` empties the stack's own buckets only, and only once the stage is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from imgpipe.cli import main

SHARED = "shared-deployments"  # provider.deploymentBucket: other services' artifacts too


def _template() -> str:
    outputs = {
        "UploadsBucketName": {"Value": {"Ref": "UploadsBucket"}},
        "DerivedBucketName": {"Value": {"Ref": "DerivedBucket"}},
        "ImagesTableName": {"Value": "t"},
        "EventsTopicArn": {"Value": "arn:aws:sns:us-east-1:123456789012:t"},
        "ImagesQueueUrl": {"Value": "https://sqs/q"},
        "DeadLetterQueueUrl": {"Value": "https://sqs/dlq"},
        # Serverless names its deployment bucket in an output, wherever the bucket lives
        "ServerlessDeploymentBucketName": {"Value": SHARED},
    }
    resources = {
        "UploadsBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "st-uploads"}},
        "DerivedBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "st-derived"}},
    }
    return json.dumps({"Resources": resources, "Outputs": outputs})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=SHARED)
        s3.put_object(Bucket=SHARED, Key="serverless/other-service/prod/code.zip", Body=b"z")
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="imgpipe-st", TemplateBody=_template()
        )
        s3.put_object(Bucket="st-uploads", Key="a.jpg", Body=b"x")
        yield s3


def test_an_external_deployment_bucket_is_left_untouched(aws: Any) -> None:
    result = CliRunner().invoke(main, ["remove", "--stage", "st", "--yes"])
    assert result.exit_code == 0, result.output
    assert "uploads bucket st-uploads: 1 object versions" in result.output
    assert SHARED not in result.output
    listed = aws.list_objects_v2(Bucket=SHARED)["Contents"]
    assert [o["Key"] for o in listed] == ["serverless/other-service/prod/code.zip"]


def test_nothing_is_removed_unless_the_stage_name_is_typed_back(aws: Any) -> None:
    refused = CliRunner().invoke(main, ["remove", "--stage", "st"], input="y\n")
    assert refused.exit_code == 1 and "not removed: that is not 'st'" in refused.output
    assert aws.list_objects_v2(Bucket="st-uploads")["KeyCount"] == 1
    done = CliRunner().invoke(main, ["remove", "--stage", "st"], input="st\n")
    assert done.exit_code == 0, done.output
    assert "removed stack imgpipe-st" in done.output
