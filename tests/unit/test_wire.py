from __future__ import annotations

import pytest

from imgpipe.local.wire import Resolver, UnresolvableError, _notification

RESOURCES = {
    "Bucket": {"Type": "AWS::S3::Bucket"},
    "Queue": {"Type": "AWS::SQS::Queue"},
    "Table": {"Type": "AWS::DynamoDB::Table"},
}


def resolver() -> Resolver:
    return Resolver(
        resources=RESOURCES,
        physical={"Bucket": "b-1", "Queue": "http://q/123/q-1", "Table": "t-1"},
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123", "AWS::Partition": "aws"},
        queue_arn=lambda url: "arn:aws:sqs:us-east-1:123:" + url.rsplit("/", 1)[1],
    )


def test_intrinsics() -> None:
    r = resolver()
    assert r({"Ref": "Bucket"}) == "b-1"
    assert r({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:123:q-1"
    assert r({"Fn::GetAtt": "Table.Arn"}) == "arn:aws:dynamodb:us-east-1:123:table/t-1"
    assert r({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}) == "arn:aws:s3:::b-1/*"
    assert r({"Fn::Sub": "${Bucket.Arn}/x"}) == "arn:aws:s3:::b-1/x"
    assert r({"Fn::Join": ["-", ["a", {"Ref": "AWS::AccountId"}]]}) == "a-123"
    assert r({"Nested": [{"Ref": "Bucket"}]}) == {"Nested": ["b-1"]}


def test_unknown_intrinsics_fail_loudly() -> None:
    with pytest.raises(UnresolvableError):
        resolver()({"Fn::If": ["c", 1, 2]})
    with pytest.raises(UnresolvableError):
        resolver()({"Ref": "Nope"})


def test_notification_shape() -> None:
    cfn = {"QueueConfigurations": [{"Event": "s3:ObjectCreated:*", "Queue": "arn:q"}]}
    assert _notification(cfn) == {
        "QueueConfigurations": [{"QueueArn": "arn:q", "Events": ["s3:ObjectCreated:*"]}]
    }
