"""Bytes in, a processed image out: decode, label what the photo shows, then cut, pad and
encode the thumbnails (cover crops centre on the faces the labeler found). The one path the
pipeline (Lambda) and ``imgpipe process`` (local files) share."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .imaging import Rendered, RenderOptions
from .imaging.engine import LABEL_SIDE, Quality, finish, label_view, prepare
from .labels import Labeler, LabelRequest, LabelResult


@dataclass(frozen=True, slots=True)
class Processed:
    rendered: Rendered
    findings: LabelResult
    render_ms: float


def quality_of(options: RenderOptions) -> Quality:
    return Quality(options.jpeg_quality, options.webp_quality, options.avif_quality)


def process_image(
    data: bytes, options: RenderOptions, labeler: Labeler, *, bucket: str = "", key: str = ""
) -> Processed:
    """Raises ImageRejected for bad input; a labeler raises only transient failures."""
    started = time.perf_counter()
    labelling = labeler.name != "none"
    prepared = prepare(
        data,
        options.sizes,
        options.limits,
        include_gps=options.include_gps,
        label_side=LABEL_SIDE if labelling else 0,
    )
    quality = quality_of(options)
    decoded_ms = (time.perf_counter() - started) * 1000
    # Byte-taking labelers see the largest thumbnail uncropped (a JPEG; Rekognition may read
    # the original from S3 instead), so face boxes are fractions of the whole photo.
    view = label_view(prepared, quality) if labelling else b""
    findings = labeler.detect(LabelRequest(bucket, key, len(data), prepared.info.format, view))
    started = time.perf_counter()
    faces = [(f.box.left, f.box.top, f.box.width, f.box.height) for f in findings.faces]
    thumbnails = finish(prepared, quality, options.watermark, faces)
    render_ms = decoded_ms + (time.perf_counter() - started) * 1000
    return Processed(Rendered(prepared.info, thumbnails), findings, round(render_ms, 1))
