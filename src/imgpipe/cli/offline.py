"""`imgpipe process`: the thumbnail engine (and the offline labeler) on local files, no AWS."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from ..codec import unstructure
from ..image_job import process_image
from ..imaging import (
    DEFAULT_SIZES,
    ImageInfo,
    ImageRejected,
    RenderOptions,
    Thumbnail,
    Watermark,
    WatermarkError,
    parse_formats,
    parse_sizes,
)
from ..imaging.types import WATERMARK_POSITIONS
from ..labels import Labeler, LabelResult
from ..labels.pool import usable_cpus
from ..outcomes import Reason, Status
from . import escape_json, printable
from .files import files_under


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(files_under(path) if path.is_dir() else [path])
    return files


_DEFAULTS = RenderOptions()  # the service's own defaults, not restated here


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("thumbnails"),
    show_default=True,
    help="where thumbnails go: OUT/<file name>/<size>.<ext>",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per file")
@click.option(
    "--sizes",
    default=DEFAULT_SIZES,
    show_default=True,
    help="name=N|WxH[:fit|cover|pad[-RRGGBB]][:formats], separated by , or ;"
    " (e.g. 'square=300x300:cover:avif,webp; large=1600')",
)
@click.option(
    "--format",
    "formats",
    default="jpeg",
    show_default=True,
    help="formats of the sizes that name none: jpeg, png, webp, avif (comma-separated)",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 95),
    default=_DEFAULTS.jpeg_quality,
    show_default=True,
    help="JPEG quality",
)
@click.option(
    "--webp-quality", type=click.IntRange(1, 100), default=_DEFAULTS.webp_quality, show_default=True
)
@click.option(
    "--avif-quality", type=click.IntRange(1, 100), default=_DEFAULTS.avif_quality, show_default=True
)
@click.option("--gps", is_flag=True, help="include GPS position in the metadata (personal data)")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=_DEFAULTS.limits.max_bytes,
    show_default=True,
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=_DEFAULTS.limits.max_pixels,
    show_default=True,
)
@click.option(
    "--labels",
    "labeler_name",
    type=click.Choice(["auto", "local", "rekognition", "none"]),
    default="auto",
    show_default=True,
    help="auto: the offline models when installed (imgpipe[local-ml]), else none",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    help="files processed at once  [default: the CPUs this process may use]",
)
@click.option(
    "--watermark",
    metavar="text:TEXT|IMAGE",
    help="preview the service's watermark: text:© Example, or an image file (PNG with alpha)",
)
@click.option(
    "--watermark-position",
    type=click.Choice(WATERMARK_POSITIONS),
    default="bottom-right",
    show_default=True,
)
@click.option(
    "--watermark-opacity",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    show_default=True,
)
def process(
    paths: tuple[Path, ...],
    out: Path,
    as_json: bool,
    sizes: str,
    formats: str,
    quality: int,
    webp_quality: int,
    avif_quality: int,
    gps: bool,
    max_bytes: int,
    max_pixels: int,
    labeler_name: str,
    jobs: int | None,
    watermark: str | None,
    watermark_position: str,
    watermark_opacity: float,
) -> None:
    """Run the thumbnail engine offline on local files or folders (no AWS needed).

    Exit status is 0 even when some files are REJECTED: that is a result, not an error."""
    try:
        default_formats = parse_formats(formats)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--format") from None
    try:
        specs = parse_sizes(sizes, default_formats)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sizes") from None
    options = RenderOptions(
        sizes=specs,
        limits=replace(_DEFAULTS.limits, max_bytes=max_bytes, max_pixels=max_pixels),
        jpeg_quality=quality,
        webp_quality=webp_quality,
        avif_quality=avif_quality,
        include_gps=gps,
        watermark=_watermark(watermark, watermark_position, watermark_opacity),
    )
    labeler = _process_labeler(labeler_name)
    files = _expand(paths)
    folders = _output_folders(files, out)

    def handle(file: Path, folder: Path) -> FileResult:
        return _process_file(file, folder, options, labeler)

    # Pillow releases the GIL while it decodes, resizes and encodes, so threads use every core;
    # results are printed in the order the files were named, each as soon as it and those
    # before it are done.
    workers = jobs or usable_cpus()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="process") as pool:
        for result in (
            pool.map(handle, files, folders) if workers > 1 else map(handle, files, folders)
        ):
            if as_json:
                doc = unstructure(result)
                assert isinstance(doc, dict)
                doc.setdefault("reason", None)  # always present: null when DONE
                click.echo(escape_json(json.dumps(doc, ensure_ascii=False)))
            else:
                _echo_process_line(result)


def _watermark(spec: str | None, position: str, opacity: float) -> Watermark | None:
    """--watermark as the service reads WATERMARK, with a local file instead of an S3 key."""
    if not spec:
        return None
    from ..imaging.watermark import check

    text = spec.removeprefix("text:") if spec.startswith("text:") else ""
    try:
        image = b"" if text else Path(spec).read_bytes()
        mark = Watermark(text=text, image=image, position=position, opacity=opacity)
        check(mark)
    except (OSError, WatermarkError) as exc:
        raise click.BadParameter(str(exc), param_hint="--watermark") from None
    return mark


def _output_folders(files: list[Path], out: Path) -> list[Path]:
    """OUT/<file name>, decided before any work starts so that concurrent files never share one:
    a name met again (same file name from two folders) gets a leading "_" per earlier use."""
    folders: list[Path] = []
    used: set[str] = set()
    for file in files:
        name = file.name
        while name in used:
            name = f"_{name}"
        used.add(name)
        folders.append(out / name)
    return folders


def _process_file(file: Path, folder: Path, options: RenderOptions, labeler: Labeler) -> FileResult:
    started = time.perf_counter()
    try:
        done = process_image(file.read_bytes(), options, labeler, key=str(file))
    except ImageRejected as exc:
        result = FileResult(str(file), Status.REJECTED, reason=exc.reason, detail=exc.detail)
    else:
        result = FileResult(
            str(file),
            Status.DONE,
            metadata=done.rendered.info,
            thumbnails=_write(done.rendered.thumbnails, folder),
            labels=done.findings,
        )
    return replace(result, ms=round((time.perf_counter() - started) * 1000, 1))


@dataclass(frozen=True, slots=True)
class WrittenThumbnail:
    name: str
    width: int
    height: int
    bytes: int
    path: str


@dataclass(frozen=True, slots=True)
class FileResult:
    """One line of `imgpipe process --json`."""

    file: str
    status: Status
    reason: Reason | None = None
    detail: str | None = None
    metadata: ImageInfo | None = None
    thumbnails: tuple[WrittenThumbnail, ...] = ()
    labels: LabelResult | None = None
    ms: float = 0.0


def _write(thumbnails: tuple[Thumbnail, ...], folder: Path) -> tuple[WrittenThumbnail, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for thumb in thumbnails:
        target = folder / f"{thumb.name}.{thumb.extension}"
        target.write_bytes(thumb.data)
        written.append(
            WrittenThumbnail(thumb.name, thumb.width, thumb.height, len(thumb.data), str(target))
        )
    return tuple(written)


def _process_labeler(name: str) -> Labeler:
    from ..labels import LabelSettings, make_labeler

    if name == "auto":
        from ..labels.local import LocalModelsMissing, check_installed

        try:
            check_installed()
            name = "local"
        except LocalModelsMissing:
            name = "none"

    def rekognition() -> Any:
        import boto3  # only when Rekognition is asked for: ~200 ms of every run otherwise

        return boto3.client("rekognition")

    try:
        return make_labeler(LabelSettings(backend=name), rekognition)
    except Exception as exc:  # noqa: BLE001 - one line that says what to do
        raise click.ClickException(str(exc)) from None


def _echo_process_line(result: FileResult) -> None:
    if result.status is Status.DONE and result.metadata is not None:
        meta = result.metadata
        sizes = " ".join(f"{t.width}x{t.height}" for t in result.thumbnails)
        found = result.labels
        seen = (
            [x.name for x in found.labels[:3]] + [f'"{t.text}"' for t in found.text[:2]]
            if found
            else []
        )
        click.echo(
            printable(
                f"DONE      {result.file}  {meta.format} {meta.width}x{meta.height}"
                f" -> {sizes}  {result.ms} ms" + (f"  [{', '.join(seen)}]" if seen else "")
            )
        )
    else:
        click.echo(printable(f"REJECTED  {result.file}  {result.reason}: {result.detail or ''}"))
