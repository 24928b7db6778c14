"""What a security reviewer and an on-call engineer check, on the packaged template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.template.conftest import PACKAGE, packaged

FUNCTIONS = {
    "BackfillLambdaFunction": "BackfillRole",
    "ProcessLambdaFunction": "ProcessRole",
    "RedriveLambdaFunction": "RedriveRole",
    "ReconcileLambdaFunction": "ReconcileRole",
    "RenderLambdaFunction": "RenderRole",
    "StatusLambdaFunction": "StatusRole",
    "UploadsLambdaFunction": "UploadsRole",
}
# Where AWS offers no resource scope, and why (each is commented in serverless.yml too).
WILDCARD_EXCEPTIONS = {
    frozenset(
        {
            "rekognition:DetectLabels",
            "rekognition:DetectText",
            "rekognition:DetectFaces",
            "rekognition:DetectModerationLabels",
        }
    ): "no resource-level permissions",
    frozenset({"kms:GenerateDataKey", "kms:Decrypt"}): "the AWS managed SNS key's ARN",
}
EXPECTED_ACTIONS = {
    "ProcessRole": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "s3:GetObject",
        "s3:GetObjectVersion",  # a removal of one version: is that version gone?
        "s3:ListBucket",
        "s3:PutObject",
        "s3:DeleteObject",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "sns:Publish",
        "rekognition:DetectLabels",
        "rekognition:DetectText",
        "rekognition:DetectFaces",
        "rekognition:DetectModerationLabels",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
    "RedriveRole": {
        "kms:Decrypt",  # this and the next only with the optional customer managed key
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:StartMessageMoveTask",
        "sqs:ListMessageMoveTasks",
        "sqs:CancelMessageMoveTask",
        "sqs:SendMessage",
    },
    "ReconcileRole": {
        "kms:Decrypt",  # this and the next only with the optional customer managed key
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",  # derived only: rewrite a results document
        "s3:DeleteObject",  # derived only
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "lambda:InvokeFunction",  # the backfill function, which re-queues what is unprocessed
        "sqs:SendMessage",  # Lambda, putting a scheduled run that failed into async-failures
    },
    "BackfillRole": {
        "kms:Decrypt",  # this and the next only with the optional customer managed key
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:ListBucket",  # the uploads bucket: it lists, never reads
        "s3:GetObject",  # only with inventoryLocation: the inventory reports there
        "dynamodb:BatchGetItem",
        "sqs:SendMessage",
        "lambda:InvokeFunction",  # itself, to continue a run
    },
    "UploadsRole": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:PutObject",  # what its presigned POSTs are signed with: uploads/* and users/*
        "kms:GenerateDataKey",  # only with the optional customer managed key
    },
    "StatusRole": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "s3:GetObject",
        "kms:Decrypt",  # only with the optional customer managed key: presigned GETs decrypt
    },
    "RenderRole": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "s3:GetObject",  # the original; its renditions
        "s3:PutObject",  # renditions only
        "s3:ListBucket",  # renditions/ only: a rendition not yet made is a 404
        "secretsmanager:GetSecretValue",  # the render secret only
        "kms:Decrypt",  # this and the next only with the optional customer managed key
        "kms:GenerateDataKey",
    },
}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """The role's statements, both branches of a conditional one included."""
    out: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in st:
                out.extend(b for b in st["Fn::If"][1:] if "Action" in b)
            else:
                out.append(st)
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_one_role_per_function(resources: dict[str, Any]) -> None:
    for function, role in FUNCTIONS.items():
        assert resources[function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert "IamRoleLambdaExecution" not in resources  # no shared, provider-wide role
    roles = [name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert sorted(roles) == sorted(FUNCTIONS.values())
    for role in roles:
        assert not resources[role]["Properties"].get("ManagedPolicyArns"), "managed policies use *"


@pytest.mark.parametrize("role", sorted(EXPECTED_ACTIONS))
def test_each_role_has_exactly_its_actions(resources: dict[str, Any], role: str) -> None:
    actions = {a for st in _statements(resources[role]) for a in _list(st["Action"])}
    assert actions == EXPECTED_ACTIONS[role]


# Where in the derived bucket each role may act: what it makes or hands out, never all of it
# (a role that can write watermarks/ could change every later thumbnail).
DERIVED_SCOPES = {
    "ProcessRole": {
        "s3:PutObject": {"thumbnails/*", "results/*"},
        "s3:DeleteObject": {"thumbnails/*", "results/*", "renditions/*"},
        "s3:GetObject": {"watermarks/*"},
    },
    "ReconcileRole": {  # an orphan thumbnail is only deleted, never read or written
        "s3:GetObject": {"results/*"},
        "s3:PutObject": {"results/*"},
        "s3:DeleteObject": {"thumbnails/*", "results/*", "renditions/*"},
    },
    "StatusRole": {"s3:GetObject": {"thumbnails/*"}},
    "RenderRole": {"s3:GetObject": {"renditions/*"}, "s3:PutObject": {"renditions/*"}},
    "UploadsRole": {},
    "RedriveRole": {},
    "BackfillRole": {},
}


@pytest.mark.parametrize("role", sorted(DERIVED_SCOPES))
def test_each_role_reaches_only_its_part_of_the_derived_bucket(
    resources: dict[str, Any], role: str
) -> None:
    reached: dict[str, set[str]] = {}
    for st in _statements(resources[role]):
        for resource in _list(st["Resource"]):
            arn = json.dumps(resource)
            if "derived" not in arn or not arn.rstrip('"}').endswith("*"):
                continue
            scope = arn.split("derived")[1].split("/", 1)[1].rstrip('"}')
            for action in _list(st["Action"]):
                reached.setdefault(action, set()).add(scope)
    assert reached == DERIVED_SCOPES[role]


def test_reconcile_reads_the_uploads_bucket_and_invokes_only_the_backfill_function(
    resources: dict[str, Any],
) -> None:
    """It re-queues through the backfill function: it never writes an upload (no copy of an
    object onto itself), and may invoke nothing else."""
    on_uploads: set[str] = set()
    invokes = []
    for st in _statements(resources["ReconcileRole"]):
        arns = json.dumps(st["Resource"])
        if "uploads" in arns:
            on_uploads.update(_list(st["Action"]))
        if "lambda:InvokeFunction" in _list(st["Action"]):
            invokes.append(arns)
    assert on_uploads == {"s3:ListBucket", "s3:GetObject"}
    assert len(invokes) == 1 and invokes[0].endswith('-backfill"}'), invokes
    env = resources["ReconcileLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert env["BACKFILL_FUNCTION"].endswith("-backfill")


def test_no_wildcard_but_the_commented_exceptions(resources: dict[str, Any]) -> None:
    for name, res in resources.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for st in _statements(res):
            actions = _list(st["Action"])
            assert not any("*" in a for a in actions), f"{name}: wildcard action in {actions}"
            if "*" in _list(st["Resource"]):
                assert frozenset(actions) in WILDCARD_EXCEPTIONS, (
                    f"{name}: new * resource for {actions}"
                )
                if actions[0].startswith("kms:"):
                    assert "kms:ViaService" in json.dumps(st["Condition"])
            assert st["Effect"] == "Allow"


def test_data_at_rest_is_encrypted_and_recoverable(resources: dict[str, Any]) -> None:
    table = resources["ImagesTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    kms = {"Ref": "KmsKeyArn"}
    for queue in ("ImagesQueue", "DeadLetterQueue"):
        props = resources[queue]["Properties"]
        assert props["SqsManagedSseEnabled"] == {
            "Fn::If": ["UseKmsKey", {"Ref": "AWS::NoValue"}, True]
        }
        assert props["KmsMasterKeyId"] == {"Fn::If": ["UseKmsKey", kms, {"Ref": "AWS::NoValue"}]}
    topic = resources["EventsTopic"]["Properties"]["KmsMasterKeyId"]
    assert topic == {"Fn::If": ["UseKmsKey", kms, "alias/aws/sns"]}
    for bucket in ("UploadsBucket", "DerivedBucket"):
        [rule] = resources[bucket]["Properties"]["BucketEncryption"][
            "ServerSideEncryptionConfiguration"
        ]
        assert rule["ServerSideEncryptionByDefault"] == {
            "Fn::If": [
                "UseKmsKey",
                {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms},
                {"SSEAlgorithm": "AES256"},
            ]
        }
    rules = resources["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)


def test_optional_kms_key_is_a_deploy_time_parameter(template: dict[str, Any]) -> None:
    param = template["Parameters"]["KmsKeyArn"]
    assert param["Default"] == ""  # unset: SSE-S3, SQS-managed SSE, the AWS managed SNS key
    assert template["Conditions"]["UseKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]
    }
    # with a key, the roles may use exactly that key
    for role in ("ProcessRole", "RedriveRole"):
        statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
        conditional = [s for s in statements["Statement"] if "Fn::If" in s]
        assert [c["Fn::If"][1]["Resource"] for c in conditional] == [{"Ref": "KmsKeyArn"}]


def test_concurrency_and_backpressure(resources: dict[str, Any]) -> None:
    assert resources["ProcessLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] >= 1
    [esm] = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    # throttled invocations burn receive counts: the mapping must stay under the reservation
    reserved = resources["ProcessLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert esm["ScalingConfig"]["MaximumConcurrency"] <= reserved


def _alarm(resources: dict[str, Any], metric: str, on: str = "") -> dict[str, Any]:
    """The one alarm on ``metric`` (of the resource ``on``, if given)."""
    found = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == metric
        and on in json.dumps(r["Properties"]["Dimensions"])
    ]
    assert len(found) == 1, f"one alarm on {metric}"
    alarm: dict[str, Any] = found[0]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmsTopic"}]
    return alarm


def test_alarms_page_someone(resources: dict[str, Any]) -> None:
    for queue in ("DeadLetterQueue", "AsyncFailuresQueue"):
        dlq = _alarm(resources, "ApproximateNumberOfMessagesVisible", on=f'"{queue}"')
        assert dlq["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}
        assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    age = _alarm(resources, "ApproximateAgeOfOldestMessage")
    assert age["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ImagesQueue", "QueueName"]}
    for metric in ("Errors", "Throttles"):
        alarm = _alarm(resources, metric)
        assert alarm["Dimensions"][0]["Value"] == {"Ref": "ProcessLambdaFunction"}


def test_dashboard_shows_backlog_throughput_duration_and_dlq(resources: dict[str, Any]) -> None:
    body = json.dumps(resources["Dashboard"]["Properties"]["DashboardBody"])
    for title in ("Backlog", "Throughput", "Duration", "DLQ depth"):
        assert title in body


def test_asynchronous_runs_that_fail_are_kept_and_page_someone(resources: dict[str, Any]) -> None:
    """The reconcile schedule and the backfill chain invoke asynchronously: an event that
    fails every retry goes to the async-failures queue (an alarm watches it), which only their
    roles may send to; operator functions run one at a time."""
    for function, role in (("Reconcile", "ReconcileRole"), ("Backfill", "BackfillRole")):
        props = resources[f"{function}LambdaFunction"]["Properties"]
        assert props["DeadLetterConfig"] == {
            "TargetArn": {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}
        }
        sends = [
            st["Resource"]
            for st in _statements(resources[role])
            if "sqs:SendMessage" in _list(st["Action"])
            and "AsyncFailuresQueue" in json.dumps(st["Resource"])
        ]
        assert sends == [{"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}]
    for function, most in (("Redrive", 1), ("Reconcile", 1), ("Backfill", 2)):
        props = resources[f"{function}LambdaFunction"]["Properties"]
        assert props["ReservedConcurrentExecutions"] == most
    queue = resources["AsyncFailuresQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 1209600


@pytest.mark.parametrize("which", ["dev", "options"])
def test_every_checkov_skip_says_why(which: str) -> None:
    """make lint runs checkov on the packaged templates; a check that does not fit this design
    is skipped where the resource is, with a reason a reviewer can weigh (and only those)."""
    template = packaged(PACKAGE.parent / which)
    skips = {
        (name, skip["id"]): skip.get("comment", "")
        for name, res in template["Resources"].items()
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    cdn = {"CKV_AWS_68", "CKV_AWS_86", "CKV_AWS_174"} if which == "options" else set()
    assert skips, "the template carries its answers to checkov"
    for (name, check), why in skips.items():
        assert len(why.split()) >= 12, f"{name} skips {check} without a reason"
    # the checks this design answers rather than fixes, and nothing else
    assert {check for _, check in skips} == {
        "CKV_AWS_18",  # bucket access logs
        "CKV_AWS_21",  # versioning of the uploads and derived buckets
        "CKV_AWS_26",  # the alarms topic without kmsKeyArn
        "CKV_AWS_116",  # a DLQ for functions never invoked asynchronously
        "CKV_AWS_117",  # a VPC
        "CKV_AWS_119",  # the table under the AWS managed key
        "CKV_AWS_158",  # log groups under CloudWatch's own encryption
        "CKV_AWS_173",  # environment variables without secrets
    } | cdn  # delivery cdn: a WAF, standard logs, a TLS minimum the default certificate lacks
    # fixed, not skipped: the API's access log, the deployment bucket's public access block
    stage = template["Resources"]["HttpApiStage"]["Properties"]
    assert "AccessLogSettings" in stage
    bucket = template["Resources"]["ServerlessDeploymentBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize(
    ("location", "allowed"),
    [
        ("", True),  # no inventory: no grant at all
        ("inventory-bucket/reports/imgpipe", True),
        ("inventory-bucket", False),  # a bare name would reach inventory-bucket-* too
        ("inventory-bucket/", False),
        ("inventory-bucket/reports/", False),
        ("inventory-bucket/rep*", False),
    ],
)
def test_inventory_reports_are_read_under_exactly_their_prefix(
    template: dict[str, Any], resources: dict[str, Any], location: str, allowed: bool
) -> None:
    import re

    pattern = template["Parameters"]["InventoryLocation"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, location)) is allowed
    [grant] = [
        st
        for st in _statements(resources["BackfillRole"])
        if "InventoryLocation" in json.dumps(st.get("Resource", ""))
    ]
    assert grant["Action"] == ["s3:GetObject"]
    assert grant["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${InventoryLocation}/*"}
