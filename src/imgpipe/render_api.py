"""``GET /render/{key+}?w=&h=&fit=&fmt=&q=&sig=``: one rendition of a DONE image, made once
from the original's current version and kept in the derived bucket, then answered as a
redirect to it (a presigned GET, as the API hands out thumbnails; the CDN's origin serves
thumbnails/ only, so a cdn stage's renditions are presigned too).

Every refusal comes before any work: a parameter off the ladder is a 400, a URL this stage did
not sign a 403, an image that is not DONE a 404 (``renditions`` says what may be asked).
``fmt=auto`` answers vary with the request's ``Accept`` (``Vary: Accept``). The answer says
whether it was made now (``x-imgpipe-render: miss``) or read (``hit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import derived
from .api import URL_TTL, BadRequest, Response, check_key, fits_s3
from .errors import SourceChanged, SourceMissing
from .imaging import Limits
from .outcomes import Status
from .ports import CatalogReader, Presigner, StorePort
from .record import ImageRecord
from .renditions import LADDER, BadRender, Render, choose, parse, rendition_key, verify


@dataclass(frozen=True, slots=True)
class RenderSettings:
    uploads_bucket: str
    derived_bucket: str
    secret: bytes = field(repr=False)  # the stage's render secret: signs render URLs
    limits: Limits = field(default_factory=Limits)
    ladder: tuple[int, ...] = LADDER


class RenderApi:
    def __init__(
        self,
        settings: RenderSettings,
        catalog: CatalogReader,
        store: StorePort,
        presigner: Presigner,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.presigner = presigner
        self.renders = 0  # made in this environment (the rest were read)

    def handle(self, method: str, key: str, query: dict[str, str], accept: str) -> Response:
        """``key`` decoded. Never raises for any input: refusals are 4xx with one reason."""
        if method != "GET":
            return Response(405, {"message": "use GET"}, {"allow": "GET"})
        cfg = self.settings
        try:
            check_key(key)
            render, signature = parse(query, cfg.ladder)
        except (BadRequest, BadRender) as exc:
            return Response(400, {"message": str(exc)})
        if not verify(cfg.secret, key, render, signature):
            return Response(403, {"message": "not a render URL this stage signed"})
        record = self.catalog.get(cfg.uploads_bucket, key) if fits_s3(key) else None
        if record is None or record.status is not Status.DONE:
            return Response(404, {"message": "no finished image with that key"})
        fmt = choose(render.fmt, accept)
        kept = rendition_key(key, derived.token_of(record), render, fmt)
        made = self.store.live(cfg.derived_bucket, kept) is None
        if made:
            try:
                self._make(record, render, fmt, kept)
            except (SourceMissing, SourceChanged):
                # removed or replaced since it was DONE: the pipeline is on its way
                return Response(404, {"message": "the image changed; ask again once it is DONE"})
        url = self.presigner.get_url(cfg.derived_bucket, kept, URL_TTL)
        headers = {"location": url, "x-imgpipe-render": "miss" if made else "hit"}
        if render.fmt == "auto":
            headers["vary"] = "Accept"
        return Response(302, {"location": url}, headers)

    def _make(self, record: ImageRecord, render: Render, fmt: str, kept: str) -> None:
        """From the version the record describes (a newer upload answers 404 until DONE)."""
        from .imaging.engine import Quality
        from .imaging.engine import render as render_image

        cfg = self.settings
        data, _ = self.store.fetch(cfg.uploads_bucket, record.key, record.etag, cfg.limits)
        q = render.quality
        done = render_image(data, [render.spec(fmt)], cfg.limits, quality=Quality(q, q, q))
        [thumb] = done.thumbnails
        self.store.put_thumbnail(cfg.derived_bucket, kept, thumb)
        self.renders += 1
