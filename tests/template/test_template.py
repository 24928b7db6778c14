"""Rules for the CloudFormation that `serverless package --stage dev` generates (make package).

These read the packaged template and zip, not serverless.yml, so they check what AWS would get.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.template.conftest import PACKAGE


def _of_type(resources: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in resources.items():
        if res["Type"] == kind:
            yield name, res.get("Properties", {})


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(
    resources: dict[str, Any],
) -> None:
    timeout = resources["ProcessLambdaFunction"]["Properties"]["Timeout"]
    visibility = resources["ImagesQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout


def test_redrive_policy_and_dlq_retention(resources: dict[str, Any]) -> None:
    policy = resources["ImagesQueue"]["Properties"]["RedrivePolicy"]
    assert policy["maxReceiveCount"] == 3
    assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600


def test_event_source_mapping(resources: dict[str, Any]) -> None:
    [(_, esm)] = _of_type(resources, "AWS::Lambda::EventSourceMapping")
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["ScalingConfig"]["MaximumConcurrency"] >= 2
    assert 1 <= esm["BatchSize"] <= 10 and esm["MaximumBatchingWindowInSeconds"] >= 0
    assert esm["Enabled"] is True  # only the local stage disables it
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["ImagesQueue", "Arn"]}


def test_uploads_notify_the_queue_and_derived_bucket_notifies_nothing(
    resources: dict[str, Any],
) -> None:
    uploads = resources["UploadsBucket"]
    configs = uploads["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Event"] for c in configs} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert all(c["Queue"] == {"Fn::GetAtt": ["ImagesQueue", "Arn"]} for c in configs)
    assert "ImagesQueuePolicy" in uploads.get("DependsOn", [])
    # no recursion: what the function writes can never trigger it
    assert "NotificationConfiguration" not in resources["DerivedBucket"]["Properties"]


# The redrive and backfill roles, by their ARNs (AWS) or their sessions' (MiniStack's
# aws:PrincipalArn): the queue's only senders besides S3.
QUEUE_SENDERS = [
    principal
    for role in ("RedriveRole", "BackfillRole")
    for principal in (
        {"Fn::GetAtt": [role, "Arn"]},
        {"Fn::Sub": f"arn:${{AWS::Partition}}:sts::${{AWS::AccountId}}:assumed-role/${{{role}}}/*"},
    )
]


def test_queue_policy_admits_only_the_uploads_bucket(resources: dict[str, Any]) -> None:
    statement, deny = resources["ImagesQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    bucket = resources["UploadsBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    # S3 sends the bucket's own ARN: a trailing "/*" would never match
    assert source == f"arn:${{AWS::Partition}}:s3:::{bucket}"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # everyone else is refused (an explicit deny beats any identity policy), but the bucket and
    # the redrive and backfill functions' roles
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:SourceArn": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{bucket}"}},
        "ArnNotLike": {"aws:PrincipalArn": QUEUE_SENDERS},
    }


def test_no_principal_may_send_to_the_dlq(resources: dict[str, Any]) -> None:
    """What the DLQ holds goes back into the images queue at the next redrive: a message
    planted there would pass for an S3 event. Every principal's send is refused (SQS's own
    dead-lettering carries no principal ARN), and only the images queue may dead-letter."""
    policy = resources["DeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "DeadLetterQueue"}]
    [deny] = policy["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert deny["Condition"] == {"Null": {"aws:PrincipalArn": "false"}}
    allow = resources["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    queue_name = resources["ImagesQueue"]["Properties"]["QueueName"]
    assert allow == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [
            {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + queue_name}
        ],
    }


@pytest.mark.parametrize("bucket", ["UploadsBucket", "DerivedBucket"])
def test_buckets_are_private_encrypted_and_tls_only(
    template: dict[str, Any], resources: dict[str, Any], bucket: str
) -> None:
    props = resources[bucket]["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    # AES256, or aws:kms with the optional key (both branches checked in test_production)
    choices = rule["ServerSideEncryptionByDefault"]["Fn::If"][1:]
    assert {c["SSEAlgorithm"] for c in choices} == {"aws:kms", "AES256"}
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policies = [
        p for _, p in _of_type(resources, "AWS::S3::BucketPolicy") if p["Bucket"] == {"Ref": bucket}
    ]
    [policy] = policies
    denies = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert denies, f"{bucket} must deny requests without TLS"
    # the policies exist unless a stage opts out (only `local`, whose endpoint is plain HTTP)
    assert template["Parameters"]["RequireTls"]["Default"] == "true"
    assert template["Conditions"]["TlsOnly"] == {"Fn::Equals": [{"Ref": "RequireTls"}, "true"]}
    assert resources[f"{bucket}Policy"].get("Condition") == "TlsOnly"


def test_no_package_time_lookups_left(template: dict[str, Any]) -> None:
    text = json.dumps(template)
    for token in ("${aws:", "${ssm:", "${cf:", "${self:", "${param:", "${env:", "${opt:"):
        assert token not in text


def test_functions(resources: dict[str, Any]) -> None:
    functions = dict(_of_type(resources, "AWS::Lambda::Function"))
    assert set(functions) == {
        "BackfillLambdaFunction",
        "ProcessLambdaFunction",
        "RedriveLambdaFunction",
        "ReconcileLambdaFunction",
        "RenderLambdaFunction",
        "StatusLambdaFunction",
        "UploadsLambdaFunction",
    }
    for props in functions.values():
        assert props["Runtime"] == "python3.12"
    routes = [p["RouteKey"] for _, p in _of_type(resources, "AWS::ApiGatewayV2::Route")]
    # each path's ANY route answers the methods it does not serve with 405 and Allow
    assert sorted(routes) == [
        *("ANY /images", "ANY /images/{key+}", "ANY /render/{key+}", "ANY /uploads"),
        *("GET /images", "GET /images/{key+}", "GET /render/{key+}", "POST /uploads"),
    ]
    # every route needs a caller with AWS credentials (the default apiAuth: iam), but the
    # renditions', whose URLs carry their own signature (an <img> sends no header); no CORS
    auth = {
        p["RouteKey"]: p.get("AuthorizationType", "NONE")
        for _, p in _of_type(resources, "AWS::ApiGatewayV2::Route")
    }
    assert {k for k, v in auth.items() if v != "AWS_IAM"} == {
        "GET /render/{key+}",
        "ANY /render/{key+}",
    }
    assert {auth["GET /render/{key+}"], auth["ANY /render/{key+}"]} == {"NONE"}
    (api,) = [p for _, p in _of_type(resources, "AWS::ApiGatewayV2::Api")]
    assert "CorsConfiguration" not in api
    (stage,) = [p for _, p in _of_type(resources, "AWS::ApiGatewayV2::Stage")]
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 40}
    status = functions["StatusLambdaFunction"]
    assert status["Environment"]["Variables"]["API_AUTH"] == {"Ref": "ApiAuth"}
    concurrency = dict(_of_type(resources, "AWS::Lambda::Function"))
    assert concurrency["StatusLambdaFunction"].get("ReservedConcurrentExecutions") == 5
    # the scheduled reconcile is off unless a stage turns it on
    rules = dict(_of_type(resources, "AWS::Events::Rule"))
    assert [r["State"] for r in rules.values()] == ["DISABLED"]
    process = functions["ProcessLambdaFunction"]["Environment"]["Variables"]
    # the recommended defaults of `make bench-cost`
    assert (process["RESULTS_DOCUMENTS"], process["DETECTORS"]) == ("none", "labels,text")


@pytest.fixture(scope="module")
def zip_names() -> set[str]:
    path = PACKAGE / "imgpipe.zip"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make package` first")
    with zipfile.ZipFile(path) as zf:
        return set(zf.namelist())


def test_zip_carries_the_handlers_and_native_pillow_not_boto3(zip_names: set[str]) -> None:
    for handler in ("process", "redrive", "reconcile", "status", "backfill"):
        assert f"src/imgpipe/handlers/{handler}.py" in zip_names
    assert any(n.startswith("PIL/_imaging.cpython-312-x86_64-linux-gnu") for n in zip_names)
    assert any(n.startswith("aws_lambda_powertools/") for n in zip_names)
    assert not any(n.startswith(("boto3/", "botocore/")) for n in zip_names)
    # HEIF decoded in the function: pi_heif with libheif and libde265, and no encoder at all
    assert any(n.startswith("_pi_heif.cpython-312-x86_64-linux-gnu") for n in zip_names)
    assert any("libheif" in n for n in zip_names) and any("libde265" in n for n in zip_names)
    assert not any(re.search(r"x265|x264|libaom|pillow_heif", n) for n in zip_names)
    # the local stack and the CLI never ship
    assert not any(n.startswith(("src/imgpipe/local/", "src/imgpipe/cli/")) for n in zip_names)


# Every module of ours the zip carries. A new one must be added here on purpose: nothing
# test-only (fault injection, chaos, demo, harness) and nothing local-only ever ships.
SHIPPED = {
    "__init__.py",
    "api.py",
    "aws.py",
    "backfill.py",
    "batch.py",
    "bootstrap.py",
    "callers.py",
    "catalog.py",
    "codec.py",
    "config.py",
    "costs.py",
    "deployment.py",
    "derived.py",
    "errors.py",
    "events.py",
    "handlers/__init__.py",
    "handlers/backfill.py",
    "handlers/process.py",
    "handlers/reconcile.py",
    "handlers/redrive.py",
    "handlers/render.py",
    "handlers/status.py",
    "handlers/uploads.py",
    "imaging/__init__.py",
    "imaging/budget.py",
    "imaging/crop.py",
    "imaging/engine.py",
    "imaging/formats.py",
    "imaging/heif.py",
    "imaging/icc.py",
    "imaging/metadata.py",
    "imaging/types.py",
    "imaging/watermark.py",
    "labels/__init__.py",
    "labels/base.py",
    "labels/effnet.py",
    "labels/effnet_convert.py",
    "labels/local.py",
    "labels/pool.py",
    "labels/rekognition.py",
    "labels/sky.py",
    "labels/taxonomy.json",
    "labels/taxonomy.py",
    "labels/WORDNET-LICENSE",
    "labels/types.py",
    "lanes.py",
    "notify.py",
    "observability.py",
    "ordering.py",
    "outcomes.py",
    "outputs.py",
    "pipeline.py",
    "ports.py",
    "prices.json",
    "image_job.py",
    "queues.py",
    "reconcile.py",
    "record.py",
    "redrive.py",
    "render_api.py",
    "renditions.py",
    "results.py",
    "storage.py",
    "uploads.py",
}
TEST_ONLY = re.compile(r"(^|/)(faults?|chaos|demo|tests?|harness|conftest|bench)(/|\.py$|_)")


def test_zip_holds_exactly_the_runtime_modules(zip_names: set[str]) -> None:
    ours = {n.removeprefix("src/imgpipe/") for n in zip_names if n.startswith("src/")}
    assert not [n for n in ours if TEST_ONLY.search(n)]
    assert {n for n in ours if not n.endswith("/")} == SHIPPED


def test_zip_size() -> None:
    size = (PACKAGE / "imgpipe.zip").stat().st_size
    assert size <= 20 * 1024 * 1024, f"zip is {size / 1048576:.1f} MB; the budget is 20 MB"


def test_handlers_import_from_the_zip_layout(zip_names: set[str]) -> None:
    """Lambda imports `src.imgpipe.handlers.process`; every import inside must be relative."""
    for path in (ROOT / "src" / "imgpipe").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in zip_names:
            continue
        source = path.read_text()
        assert "from imgpipe" not in source and "import imgpipe" not in source, rel


def _python312() -> str:
    # The real interpreter, not a pyenv shim: shims need pyenv's environment to resolve.
    installed = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    found = str(installed[-1]) if installed else shutil.which("python3.12")
    if found is None:
        pytest.fail("python3.12 (Lambda's runtime version) is needed to import the zip")
    return found


def test_zip_imports_and_renders_on_python312(tmp_path: Path) -> None:
    """Unzip the package and use it as Lambda would: the python3.12 runtime, the zip on the path
    (its cp312 Pillow wheel, not ours), boto3 from outside (the runtime provides it)."""
    import boto3

    with zipfile.ZipFile(PACKAGE / "imgpipe.zip") as zf:
        zf.extractall(tmp_path)
    runtime_boto3 = str(Path(boto3.__file__).parents[1])
    # a phone's photo: a grid HEIC (made here by the dev extra's encoder, which never ships)
    heic = tmp_path / "photo.heic"
    pillow_heif.from_pillow(Image.new("RGB", (1024, 512), (200, 30, 40))).save(
        heic, quality=80, tile_size=256
    )
    script = (
        "import io, PIL, pi_heif, src.imgpipe.handlers.process, src.imgpipe.handlers.status, "
        "src.imgpipe.handlers.redrive, src.imgpipe.handlers.backfill\n"
        "from PIL import Image\n"
        "from src.imgpipe.imaging import render, parse_sizes, Limits\n"
        "buf = io.BytesIO(); Image.new('RGB', (2000, 1000)).save(buf, 'JPEG')\n"
        "r = render(buf.getvalue(), parse_sizes('a=100'), Limits(10**8, 10**8))\n"
        f"h = render(open({str(heic)!r}, 'rb').read(), parse_sizes('a=100'), Limits())\n"
        "assert pi_heif.__file__.startswith(sys.path[0]), pi_heif.__file__\n"
        "print(PIL.__file__, r.thumbnails[0].width, r.thumbnails[0].height, "
        "h.info.format, h.thumbnails[0].width, h.thumbnails[0].height)\n"
    )
    out = subprocess.run(
        [
            _python312(),
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(tmp_path), runtime_boto3]!r}\n{script}",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "UPLOADS_BUCKET": "u",
            "DERIVED_BUCKET": "d",
            "TABLE_NAME": "t",
        },
    )
    assert out.returncode == 0, out.stderr
    pil_path, width, height, *heic_out = out.stdout.split()
    assert pil_path.startswith(str(tmp_path)) and (width, height) == ("100", "50")
    assert heic_out == ["HEIF", "100", "50"]


def test_api_auth_is_one_of_three_and_checked_at_deploy(template: dict[str, Any]) -> None:
    """A mistyped apiAuth would package routes without an authorizer: CloudFormation refuses
    any value but these (and the status function refuses requests without an identity)."""
    param = template["Parameters"]["ApiAuth"]
    assert (param["Default"], param["AllowedValues"]) == ("iam", ["iam", "jwt", "none"])


def test_backfill_judges_records_by_the_process_functions_own_settings(
    resources: dict[str, Any],
) -> None:
    """config.fingerprint over the same variables on both sides: a setting only the process
    function got would make every record look made under other settings (or none)."""
    from imgpipe.config import _OUTPUT_ENV

    env = {
        name: resources[f"{name.capitalize()}LambdaFunction"]["Properties"]["Environment"][
            "Variables"
        ]
        for name in ("process", "backfill")
    }
    output = set(env["process"]) - {"FUNCTION_TIMEOUT", "MAX_RECEIVE_COUNT", "TOPIC_ARN"}
    assert set(_OUTPUT_ENV) <= output and {"LABELER", "THUMBNAIL_SIZES", "DETECTORS"} <= output
    for name in output:
        assert env["backfill"][name] == env["process"][name], name
    assert env["backfill"]["IMAGES_QUEUE_URL"] == {"Ref": "ImagesQueue"}


def test_the_template_is_split_by_concern() -> None:
    """serverless.yml keeps the provider, the functions and the parameters; each concern's
    resources live in a file of their own that it names (and no file is left unnamed)."""
    main = (ROOT / "serverless.yml").read_text()
    assert len(main.splitlines()) <= 400
    files = {p.name for p in (ROOT / "resources").glob("*.yml")}
    named = set(re.findall(r"\$\{file\(resources/([\w-]+\.yml)\)\}", main))
    assert files == named and {"roles.yml", "storage.yml", "queues.yml"} <= files


def test_the_container_image_drops_the_fault_site_and_still_imports(tmp_path: Path) -> None:
    """The Dockerfile's own commands, run on a copy of the package as pip installs it: the
    local stack (its fault-injecting sitecustomize), the CLI and the gallery are gone, and the
    process handler still imports without them."""
    import re
    import shutil
    import sys

    dockerfile = (ROOT / "Dockerfile").read_text()
    commands = re.findall(r'python -c "([^"]+)"', dockerfile)
    assert len(commands) == 2, commands
    shutil.copytree(ROOT / "src" / "imgpipe", tmp_path / "imgpipe")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    # the copy, not the checkout (an editable install's finder could win): else stop here
    where = subprocess.run(
        [sys.executable, "-c", "import imgpipe; print(imgpipe.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(tmp_path)), where.stdout
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    left = {p.name for p in (tmp_path / "imgpipe").iterdir()}
    assert not {"local", "cli", "web"} & left and "handlers" in left
    assert not list(tmp_path.rglob("sitecustomize.py"))
