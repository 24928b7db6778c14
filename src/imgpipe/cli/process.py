"""`imgpipe process`: the thumbnail engine (and the offline labeler) on local files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..labels import Labeler
from . import main


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

    from ..imaging import ImageRejected, Limits, parse_sizes, render
    from ..labels import LabelRequest

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
    from ..labels import LabelSettings, make_labeler

    if name == "auto":
        from ..labels.local import LocalModelsMissing, check_installed

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
