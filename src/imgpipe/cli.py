"""The ``imgpipe`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .labels import Labeler
from .local import endpoint as local_endpoint


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imgpipe")
def main() -> None:
    """imgpipe: S3 uploads become thumbnails, metadata and status records."""


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("thumbnails"),
    show_default=True,
    help="where thumbnails go: OUT/<file name>/<size>.<ext>",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per file")
@click.option("--sizes", default="small=128,medium=512,large=1024", show_default=True)
@click.option("--quality", type=click.IntRange(1, 95), default=85, show_default=True)
@click.option("--gps", is_flag=True, help="include GPS position in the metadata (personal data)")
@click.option(
    "--max-bytes", type=click.IntRange(min=1), default=50 * 1024 * 1024, show_default=True
)
@click.option("--max-pixels", type=click.IntRange(min=1), default=80_000_000, show_default=True)
@click.option(
    "--labels",
    "labeler_name",
    type=click.Choice(["auto", "local", "rekognition", "none"]),
    default="auto",
    show_default=True,
    help="auto: the offline models when installed (imgpipe[local-ml]), else none",
)
def process(
    paths: tuple[Path, ...],
    out: Path,
    as_json: bool,
    sizes: str,
    quality: int,
    gps: bool,
    max_bytes: int,
    max_pixels: int,
    labeler_name: str,
) -> None:
    """Run the thumbnail engine offline on local files or folders (no AWS needed).

    Exit status is 0 even when some files are REJECTED: that is a result, not an error."""
    import time

    from .imaging import ImageRejected, Limits, parse_sizes, render
    from .labels import LabelRequest

    try:
        specs = parse_sizes(sizes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sizes") from None
    limits = Limits(max_bytes=max_bytes, max_pixels=max_pixels)
    labeler = _process_labeler(labeler_name)
    used: set[str] = set()
    for file in _expand(paths):
        started = time.perf_counter()
        result: dict[str, object] = {"file": str(file), "status": "DONE", "reason": None}
        try:
            rendered = render(
                file.read_bytes(), specs, limits, jpeg_quality=quality, include_gps=gps
            )
        except ImageRejected as exc:
            result.update(status="REJECTED", reason=exc.reason, detail=exc.detail)
            result.update(metadata=None, thumbnails=[])
        else:
            name = file.name
            while name in used:  # same file name from two folders
                name = f"_{name}"
            used.add(name)
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            thumbs = []
            for thumb in rendered.thumbnails:
                target = folder / f"{thumb.name}.{thumb.extension}"
                target.write_bytes(thumb.data)
                thumbs.append(
                    {
                        "name": thumb.name,
                        "width": thumb.width,
                        "height": thumb.height,
                        "bytes": len(thumb.data),
                        "path": str(target),
                    }
                )
            large = max(rendered.thumbnails, key=lambda t: t.width * t.height)
            found = labeler.detect(
                LabelRequest("", str(file), file.stat().st_size, rendered.info.format, large.data)
            )
            result.update(
                metadata=rendered.info.as_dict(), thumbnails=thumbs, labels=found.as_dict()
            )
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False, default=str))
        else:
            _echo_process_line(result)


def _process_labeler(name: str) -> Labeler:
    from .labels import LabelSettings, make_labeler

    if name == "auto":
        from .labels.local import LocalModelsMissing, check_installed

        try:
            check_installed()
            name = "local"
        except LocalModelsMissing:
            name = "none"
    try:
        import boto3

        return make_labeler(LabelSettings(backend=name), lambda: boto3.client("rekognition"))
    except Exception as exc:  # noqa: BLE001 - one line that says what to do
        raise click.ClickException(str(exc)) from None


def _echo_process_line(result: dict[str, object]) -> None:
    if result["status"] == "DONE":
        meta = result["metadata"]
        assert isinstance(meta, dict)
        thumbs = result["thumbnails"]
        assert isinstance(thumbs, list)
        sizes = " ".join(f"{t['width']}x{t['height']}" for t in thumbs)
        found = result.get("labels")
        assert isinstance(found, dict)
        seen = [x["name"] for x in found["labels"][:3]] + [
            f'"{t["text"]}"' for t in found["text"][:2]
        ]
        click.echo(
            f"DONE      {result['file']}  {meta['format']} {meta['width']}x{meta['height']}"
            f" -> {sizes}  {result['ms']} ms" + (f"  [{', '.join(seen)}]" if seen else "")
        )
    else:
        click.echo(f"REJECTED  {result['file']}  {result['reason']}: {result.get('detail', '')}")


@main.group()
def local() -> None:
    """The local stack: embedded AWS endpoint, deploy, Lambda-like runner."""


@local.command("up")
def local_up() -> None:
    """Start the embedded endpoint (or find LocalStack) and print its URL."""
    ep = local_endpoint.up()
    click.echo(f"{ep.url} ({ep.kind})")


@local.command("down")
def local_down() -> None:
    """Stop the embedded endpoint started by `imgpipe local up`."""
    stopped = local_endpoint.down()
    click.echo("stopped" if stopped else "nothing to stop")


@local.command("env")
def local_env() -> None:
    """Print shell exports for talking to the local endpoint (eval "$(imgpipe local env)")."""
    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException("no local endpoint is running: run `imgpipe local up`")
    for name, value in local_endpoint.aws_env(ep).items():
        click.echo(f"export {name}={value}")


@local.command("deploy")
@click.option("--stage", default="local", show_default=True)
def local_deploy(stage: str) -> None:
    """Deploy serverless.yml to the local endpoint and apply what its CloudFormation ignores."""
    from .local.deploy import deploy

    ep = local_endpoint.up()
    for line in deploy(ep, stage):
        click.echo(f"wired {line}")


@local.command("run")
@click.option("--stage", default="local", show_default=True)
@click.option("--concurrency", type=int, help="workers (default: the mapping's, capped at cores)")
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="testing only: fail this fraction of the handler's S3/DynamoDB/SNS calls",
)
@click.option(
    "--retry-visibility",
    type=click.IntRange(min=0),
    help="seconds before a failed message returns (default: the queue's visibility timeout)",
)
def local_run(
    stage: str, concurrency: int | None, fault_rate: float, retry_visibility: int | None
) -> None:
    """Poll the images queue and invoke the process handler, as Lambda's SQS mapping would."""
    from .faults import RATE_ENV
    from .local.runner import Runner
    from .local.stack import discover

    ep = _require_endpoint()
    runner = Runner(
        discover(ep, stage),
        max_concurrency=concurrency,
        retry_visibility=retry_visibility,
        environment={RATE_ENV: str(fault_rate)} if fault_rate else None,
    )
    click.echo(f"polling {runner.stack.queue_url} with {runner.concurrency} workers; Ctrl-C stops")
    runner.run_forever()
    click.echo(json.dumps({k: v for k, v in vars(runner.stats).items() if k != "lock"}))


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--timeout", type=float, default=180.0, show_default=True)
def demo(out: Path, timeout: float) -> None:
    """Local stack + deploy + runner, upload the corpus photos and print the results."""
    from .local.demo import run_demo

    sys.exit(run_demo(out, timeout))


@main.command()
@click.option("--stage", default="local", show_default=True)
@click.option("--dry-run", is_flag=True, help="list what would move, move nothing")
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="move at most N")
def redrive(stage: str, dry_run: bool, max_messages: int | None) -> None:
    """Move DLQ messages back to the images queue (local stack: runs the handler's code)."""
    from .local.stack import discover
    from .redrive import Queues
    from .redrive import redrive as run_redrive

    stack = discover(_require_endpoint(), stage)
    result = run_redrive(
        stack.client("sqs"),
        Queues(stack.queue_url, stack.dlq_url),
        max_messages=max_messages,
        dry_run=dry_run,
        use_move_task=stack.endpoint.kind != "moto",
    )
    _echo_json(result)


def _require_endpoint() -> local_endpoint.Endpoint:
    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException("no local endpoint is running: run `make deploy STAGE=local`")
    return ep


if __name__ == "__main__":
    main()
