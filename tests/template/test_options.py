"""The stage options that change the template's shape, each checked off (build/dev, the
defaults) and on (build/options: `make package` packages it with OPTIONS_PARAMS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.template.conftest import PACKAGE, packaged
from tests.template.test_template import QUEUE_SENDERS

OPTIONS = PACKAGE.parent / "options"


@pytest.fixture(scope="module")
def options() -> dict[str, Any]:
    return packaged(OPTIONS)


def _mapping(resources: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    [esm] = found
    return esm


# -- email alerts ---------------------------------------------------------------------------


def test_outcome_email_gets_only_rejected_and_failed(template: dict[str, Any]) -> None:
    sub = template["Resources"]["NotifyEmailSubscription"]
    assert sub["Condition"] == "HasNotifyEmail"
    props = sub["Properties"]
    assert (props["Protocol"], props["Endpoint"]) == ("email", {"Ref": "NotifyEmail"})
    assert props["TopicArn"] == {"Ref": "EventsTopic"}
    # the filter reads the attribute notify.py sets on every message
    assert props["FilterPolicyScope"] == "MessageAttributes"
    assert props["FilterPolicy"] == {"status": ["REJECTED", "FAILED"]}
    assert template["Conditions"]["HasNotifyEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotifyEmail"}, ""]}]
    }


def test_alarm_email_defaults_to_the_outcome_address(template: dict[str, Any]) -> None:
    sub = template["Resources"]["AlarmEmailSubscription"]
    assert sub["Condition"] == "EmailAlarms"
    assert sub["Properties"]["TopicArn"] == {"Ref": "AlarmsTopic"}
    assert sub["Properties"]["Endpoint"] == {
        "Fn::If": ["HasAlarmEmail", {"Ref": "AlarmEmail"}, {"Ref": "NotifyEmail"}]
    }
    assert template["Conditions"]["EmailAlarms"] == {
        "Fn::Or": [{"Condition": "HasAlarmEmail"}, {"Condition": "HasNotifyEmail"}]
    }


def test_email_addresses_are_parameters_checked_at_deploy(
    template: dict[str, Any], options: dict[str, Any]
) -> None:
    for name in ("NotifyEmail", "AlarmEmail"):
        assert template["Parameters"][name]["Default"] == ""  # off unless a stage sets one
        assert template["Parameters"][name]["AllowedPattern"].startswith("^$|")
    assert options["Parameters"]["NotifyEmail"]["Default"] == "ops@example.com"
    assert options["Parameters"]["AlarmEmail"]["Default"] == "oncall@example.com"


# -- provisioned concurrency ------------------------------------------------------------------


def test_no_provisioned_concurrency_by_default(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert _mapping(resources)["Properties"]["FunctionName"] == {
        "Fn::GetAtt": ["ProcessLambdaFunction", "Arn"]
    }


def test_provisioned_concurrency_puts_the_queue_on_a_warm_alias(options: dict[str, Any]) -> None:
    resources = options["Resources"]
    [(logical, alias)] = [(k, r) for k, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"]
    props = alias["Properties"]
    assert props["FunctionName"] == {"Ref": "ProcessLambdaFunction"}
    assert props["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    esm = _mapping(resources)
    # the mapping invokes the alias: unqualified, it would never use the warm environments
    assert esm["Properties"]["FunctionName"] == {
        "Fn::Join": [":", [{"Fn::GetAtt": ["ProcessLambdaFunction", "Arn"]}, props["Name"]]]
    }
    assert logical in esm["DependsOn"]
    function = resources["ProcessLambdaFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] >= 2  # room for the provisioned ones


# -- fan-out --------------------------------------------------------------------------------


def test_no_fan_out_by_default(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert "UploadsTopic" not in resources and "UploadsTopicArn" not in template["Outputs"]
    notification = resources["UploadsBucket"]["Properties"]["NotificationConfiguration"]
    assert set(notification) == {"QueueConfigurations"}


def test_fan_out_routes_uploads_through_a_topic_the_queue_subscribes_to(
    options: dict[str, Any],
) -> None:
    resources = options["Resources"]
    uploads = resources["UploadsBucket"]
    notification = uploads["Properties"]["NotificationConfiguration"]
    assert set(notification) == {"TopicConfigurations"}
    assert {(c["Event"], c["Topic"]["Ref"]) for c in notification["TopicConfigurations"]} == {
        ("s3:ObjectCreated:*", "UploadsTopic"),
        ("s3:ObjectRemoved:*", "UploadsTopic"),
    }
    assert {"ImagesQueuePolicy", "UploadsTopicPolicy"} <= set(uploads["DependsOn"])
    sub = resources["ImagesQueueSubscription"]["Properties"]
    assert sub["Protocol"] == "sqs" and sub["RawMessageDelivery"] is True
    assert sub["Endpoint"] == {"Fn::GetAtt": ["ImagesQueue", "Arn"]}
    assert sub["TopicArn"] == {"Ref": "UploadsTopic"}
    assert options["Outputs"]["UploadsTopicArn"]["Value"] == {"Ref": "UploadsTopic"}


def test_fan_out_policies_admit_exactly_one_sender_each(options: dict[str, Any]) -> None:
    resources = options["Resources"]
    queue, deny = resources["ImagesQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert queue["Principal"] == {"Service": "sns.amazonaws.com"}
    assert queue["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "UploadsTopic"}}}
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "ArnNotEquals": {"aws:SourceArn": {"Ref": "UploadsTopic"}},
        "ArnNotLike": {"aws:PrincipalArn": QUEUE_SENDERS},
    }
    topic, topic_deny = resources["UploadsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (topic_deny["Effect"], topic_deny["Principal"]) == ("Deny", "*")
    assert topic_deny["Condition"]["ArnNotEquals"] == topic["Condition"]["ArnEquals"]
    assert topic["Principal"] == {"Service": "s3.amazonaws.com"}
    assert topic["Action"] == "sns:Publish"
    assert topic["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "aws:SourceArn" in topic["Condition"]["ArnEquals"]


# -- watermarks -----------------------------------------------------------------------------


def _process_env(template: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = template["Resources"]["ProcessLambdaFunction"]["Properties"][
        "Environment"
    ]["Variables"]
    return env


def test_watermark_off_by_default_and_set_by_its_parameters(
    template: dict[str, Any], options: dict[str, Any]
) -> None:
    env = _process_env(template)
    assert env["WATERMARK"] == ""  # none
    assert (env["WATERMARK_POSITION"], env["WATERMARK_MIN_SIZE"]) == ("bottom-right", "256")
    on = _process_env(options)
    assert (on["WATERMARK"], on["WATERMARK_SIZES"]) == ("image:watermarks/logo.png", "large")


def test_the_function_reads_only_the_watermarks_prefix_of_the_derived_bucket(
    template: dict[str, Any],
) -> None:
    statements = template["Resources"]["ProcessRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    derived_reads = [
        st["Resource"]["Fn::Sub"]
        for st in statements
        if isinstance(st, dict)
        and st.get("Action") == ["s3:GetObject"]
        and "derived" in str(st["Resource"])
    ]
    assert len(derived_reads) == 1 and derived_reads[0].endswith("-derived/watermarks/*")


# -- jwt --------------------------------------------------------------------------------------


def test_jwt_routes_require_the_scope_and_the_function_checks_it_again(
    options: dict[str, Any],
) -> None:
    resources = options["Resources"]
    routes = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"
    ]
    signed = {"GET /render/{key+}", "ANY /render/{key+}"}  # their URLs carry the credential
    scopes = {
        r["RouteKey"]: r["AuthorizationScopes"] for r in routes if r["RouteKey"] not in signed
    }
    assert scopes == {
        "GET /images": ["imgpipe/read"],
        "GET /images/{key+}": ["imgpipe/read"],
        "POST /uploads": ["imgpipe/upload"],  # reading does not let a token write
        # the ANY routes (405 with Allow for other methods) ask the same as their path's own
        "ANY /images": ["imgpipe/read"],
        "ANY /images/{key+}": ["imgpipe/read"],
        "ANY /uploads": ["imgpipe/upload"],
    }
    assert all(r["AuthorizationType"] == "JWT" for r in routes if r["RouteKey"] not in signed)
    uploads = resources["UploadsLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert (uploads["JWT_SCOPE"], uploads["JWT_OWNER_CLAIM"]) == ("imgpipe/upload", "sub")
    env = resources["StatusLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert (env["JWT_SCOPE"], env["JWT_OWNER_CLAIM"]) == ("imgpipe/read", "sub")
    [authorizer] = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Authorizer"
    ]
    assert authorizer["JwtConfiguration"]["Audience"] == ["gallery-client"]


# -- none -------------------------------------------------------------------------------------


def _routes_serverless_resolves(*params: str) -> dict[str, Any]:
    """The httpApi events of each function, as the Serverless CLI resolves serverless.yml for
    stage dev with ``params`` (what `serverless package` then turns into routes)."""
    import json
    import os
    import subprocess

    from tests.conftest import ROOT

    out = subprocess.run(
        [
            str(ROOT / "node_modules/.bin/serverless"),
            *("print", "--stage", "dev", "--format", "json", "--path", "functions"),
            *(f"--param={p}" for p in params),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "AWS_ACCESS_KEY_ID": "offline",
            "AWS_SECRET_ACCESS_KEY": "offline",
        },
    )
    assert out.returncode == 0, out.stdout + out.stderr
    functions: dict[str, Any] = json.loads(out.stdout[out.stdout.index("{") :])
    return {
        f"{e['httpApi']['method']} {e['httpApi']['path']}": e["httpApi"].get("authorizer")
        for spec in functions.values()
        for e in spec.get("events") or []
        if "httpApi" in e
    }


def test_apiauth_none_deploys_no_uploads_route_unless_asked_in_as_many_words(
    template: dict[str, Any],
) -> None:
    """Under none every route answers anyone: reading is what a public gallery wants, writing
    is not (a form can be posted until it expires). POST /uploads is deployed only with
    anonymousUploadsFromAnyone=true; the function refuses without it (unit/test_uploads.py)."""
    reads = ("GET /images", "GET /images/{key+}", "* /images", "* /images/{key+}")
    signed = dict.fromkeys(("GET /render/{key+}", "* /render/{key+}"))  # in every mode
    assert _routes_serverless_resolves("apiAuth=none") == {**dict.fromkeys(reads), **signed}
    opened = _routes_serverless_resolves("apiAuth=none", "anonymousUploadsFromAnyone=true")
    assert opened == {**dict.fromkeys((*reads, "POST /uploads", "* /uploads")), **signed}
    # the parameter does not touch the other modes: iam here, jwt in build/options
    assert _routes_serverless_resolves("anonymousUploadsFromAnyone=true") == {
        **{route: {"type": "aws_iam"} for route in (*reads, "POST /uploads", "* /uploads")},
        **signed,
    }
    env = template["Resources"]["UploadsLambdaFunction"]["Properties"]["Environment"]
    assert env["Variables"]["ANONYMOUS_UPLOADS"] == "false"


# -- delivery: cdn ------------------------------------------------------------------------------


def test_cdn_delivery_serves_thumbnails_only_over_https_through_origin_access_control(
    options: dict[str, Any], template: dict[str, Any]
) -> None:
    resources = options["Resources"]
    oac = resources["ThumbnailsOac"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    assert oac["SigningProtocol"] == "sigv4"
    config = resources["ThumbnailsCdn"]["Properties"]["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["OriginPath"] == "/thumbnails"  # results/ and watermarks/ are unreachable
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ThumbnailsOac", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert origin["DomainName"] == {"Fn::GetAtt": ["DerivedBucket", "RegionalDomainName"]}
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "https-only"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert "CacheBehaviors" not in config  # one behaviour: the thumbnails
    # the bucket lets exactly this distribution read exactly thumbnails/; TLS-only still holds
    statements = resources["DerivedBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls, grant = statements
    assert tls["Sid"] == "DenyInsecureTransport"
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert (grant["Action"], grant["Resource"]) == (
        "s3:GetObject",
        {"Fn::Sub": "${DerivedBucket.Arn}/thumbnails/*"},
    )
    assert "${ThumbnailsCdn}" in grant["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    # the API answers CDN URLs; thumbnails are cached long (their keys change per version)
    status = resources["StatusLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert status["THUMBNAIL_CDN"] == {"Fn::Sub": "https://${ThumbnailsCdn.DomainName}"}
    process = resources["ProcessLambdaFunction"]["Properties"]["Environment"]["Variables"]
    # a day: how long a deleted photo's thumbnails may still be served from a cache
    assert process["THUMBNAIL_CACHE"] == "public, max-age=86400, immutable"
    # path tokens keyed by a generated secret that only the process function may read
    assert process["TOKEN_SECRET_ARN"] == {"Ref": "CdnTokenSecret"}
    secret = resources["CdnTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    readers = [
        (name, st)
        for name, res in resources.items()
        if res["Type"] in ("AWS::IAM::Role", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy")
        for st in _statements_of(res)
        if "CdnTokenSecret" in json.dumps(st.get("Resource", ""))
    ]
    assert [(name, st["Action"], st["Resource"]) for name, st in readers] == [
        ("ProcessTokenSecretPolicy", "secretsmanager:GetSecretValue", {"Ref": "CdnTokenSecret"})
    ]
    assert resources["ProcessTokenSecretPolicy"]["Properties"]["RoleName"] == {"Ref": "ProcessRole"}
    # the default stage has none of it: presigned, private
    default = template["Resources"]
    assert "ThumbnailsCdn" not in default
    assert (
        default["StatusLambdaFunction"]["Properties"]["Environment"]["Variables"]["THUMBNAIL_CDN"]
        == ""
    )
    default_process = default["ProcessLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert default_process["THUMBNAIL_CACHE"] == "private, max-age=900"
    assert default_process["TOKEN_SECRET_ARN"] == ""
    assert "CdnTokenSecret" not in default
    [only_tls] = default["DerivedBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert only_tls["Sid"] == "DenyInsecureTransport"


def _statements_of(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource["Properties"]
    documents = [props["PolicyDocument"]] if "PolicyDocument" in props else []
    documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
    return [st for doc in documents for st in doc["Statement"] if isinstance(st, dict)]
