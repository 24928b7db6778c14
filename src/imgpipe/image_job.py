"""Bytes in, a processed image out: render the thumbnails, pick what the labeler looks at,
label it. The one path the pipeline (Lambda) and ``imgpipe process`` (local files) share."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .imaging import Rendered, RenderOptions, Thumbnail, render
from .labels import Labeler, LabelRequest, LabelResult


@dataclass(frozen=True, slots=True)
class Processed:
    rendered: Rendered
    findings: LabelResult
    render_ms: float


def label_input(rendered: Rendered) -> Thumbnail:
    """The largest thumbnail: what byte-taking labelers see (Rekognition may read S3 itself)."""
    return max(rendered.thumbnails, key=lambda t: t.width * t.height)


def process_image(
    data: bytes, options: RenderOptions, labeler: Labeler, *, bucket: str = "", key: str = ""
) -> Processed:
    """Raises ImageRejected for bad input; a labeler raises only transient failures."""
    started = time.perf_counter()
    rendered = render(
        data,
        options.sizes,
        options.limits,
        jpeg_quality=options.jpeg_quality,
        include_gps=options.include_gps,
        watermark=options.watermark,
    )
    render_ms = (time.perf_counter() - started) * 1000
    request = LabelRequest(bucket, key, len(data), rendered.info.format, label_input(rendered).data)
    return Processed(rendered, labeler.detect(request), round(render_ms, 1))
