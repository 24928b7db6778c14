"""On-demand renditions: what ``GET /render/{key+}?w=&h=&fit=&fmt=&q=&sig=`` may ask for, how its
URL is signed, which format ``fmt=auto`` answers, and where a rendition is kept.

Bounded so a crawler cannot make a million variants of a photo: widths and heights snap to a
ladder (the widths front-ends ask for: Next.js' device and image sizes), qualities to a few
steps, and an off-ladder value is a 400, never a render. Signed so only URLs the stage hands
out are rendered: an HMAC-SHA256 of the key and the canonical parameters under the stage's
render secret (``sign``; the CLI's ``imgpipe render-url`` and ``render_url`` make them).

Pure: no AWS, no Pillow. ``spec`` turns a request into the engine's own ``ThumbSpec``, so a
rendition is made by the same code as the eager thumbnails (orientation, sRGB, focus-aware
cover, limits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from .derived import RENDITIONS
from .imaging.types import ThumbSpec

# px: Next.js' default imageSizes + deviceSizes (what its loader asks for), and 4096
LADDER = (16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840, 4096)
QUALITIES = (50, 60, 70, 75, 80, 85, 90)
DEFAULT_QUALITY = 75  # Next.js' default q
FITS = ("fit", "cover", "pad")
FORMATS = ("auto", "jpeg", "webp", "avif", "png")
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "png": "png"}
PARAMETERS = frozenset({"w", "h", "fit", "fmt", "q", "sig"})
UNBOUNDED = 1 << 16  # a box's height when only the width is asked for: the width decides
SIGNATURE_CHARS = 43  # base64url of 32 bytes, unpadded


class BadRender(ValueError):
    """A request outside what may be rendered: the message says which parameter and why."""


@dataclass(frozen=True, slots=True)
class Render:
    """One rendition as asked. ``height`` 0: for ``fit``, "``width`` wide, any height"; for
    ``cover`` and ``pad``, a square box (``width`` by ``width``), as the eager sizes read it."""

    width: int
    height: int = 0
    fit: str = "fit"
    fmt: str = "auto"
    quality: int = DEFAULT_QUALITY

    def canonical(self) -> str:
        """The parameters in one fixed order and spelling: what is signed and kept."""
        return urlencode(
            {"w": self.width, "h": self.height, "fit": self.fit, "fmt": self.fmt, "q": self.quality}
        )

    def spec(self, fmt: str) -> ThumbSpec:
        """The engine's spec for this rendition in ``fmt`` (a concrete format, see ``choose``)."""
        height = self.height or (UNBOUNDED if self.fit == "fit" else self.width)
        return ThumbSpec("render", self.width, height, self.fit, (fmt,))


def _number(query: Mapping[str, str], name: str, allowed: tuple[int, ...], default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) not in allowed:
        shown = ", ".join(map(str, allowed))
        raise BadRender(f"{name} must be one of {shown}")
    return int(raw)


def parse(query: Mapping[str, str], ladder: tuple[int, ...] = LADDER) -> tuple[Render, str]:
    """The rendition a query asks for, and its signature ("" if it carries none). BadRender
    for anything outside the ladder or an unknown parameter: every request the published
    contract allows is parsed (one rule per parameter, none across them)."""
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        names = ", ".join(repr(n[:20]) for n in unknown[:3])
        raise BadRender(f"unknown parameters {names}; expected w, h, fit, fmt, q, sig")
    if "w" not in query:
        raise BadRender("w (the width in pixels) is required")
    width = _number(query, "w", ladder, 0)
    height = _number(query, "h", ladder, 0) if query.get("h") not in (None, "0") else 0
    fit = query.get("fit", "fit")
    if fit not in FITS:
        raise BadRender(f"fit must be one of {', '.join(FITS)}")
    fmt = query.get("fmt", "auto")
    if fmt not in FORMATS:
        raise BadRender(f"fmt must be one of {', '.join(FORMATS)}")
    quality = _number(query, "q", QUALITIES, DEFAULT_QUALITY)
    return Render(width, height, fit, fmt, quality), query.get("sig", "")


def _mac(secret: bytes, key: str, render: Render) -> str:
    message = f"{key}\n{render.canonical()}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: bytes, key: str, render: Render) -> str:
    if not secret:
        raise ValueError("no render secret: renditions are not enabled on this stage")
    return _mac(secret, key, render)


def verify(secret: bytes, key: str, render: Render, signature: str) -> bool:
    """Whether ``signature`` is this stage's for exactly this key and these parameters."""
    if not secret or len(signature) != SIGNATURE_CHARS:
        return False
    return hmac.compare_digest(_mac(secret, key, render), signature)


def choose(fmt: str, accept: str) -> str:
    """The format to answer: the one asked for, or for ``auto`` the most compact the client
    says it takes (AVIF, then WebP; JPEG for everyone else). ``auto`` answers vary by Accept."""
    if fmt != "auto":
        return fmt
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    for candidate, media in (("avif", "image/avif"), ("webp", "image/webp")):
        if media in types:
            return candidate
    return "jpeg"


def rendition_key(source_key: str, token: str, render: Render, fmt: str) -> str:
    """Where a rendition of one source version is kept in the derived bucket: under the
    version's token (a new upload never answers an old rendition), named by its parameters."""
    name = f"w{render.width}-h{render.height}-{render.fit}-q{render.quality}"
    return f"{RENDITIONS}{source_key}/{token}/{name}.{EXTENSIONS[fmt]}"


def render_url(base: str, key: str, render: Render, secret: bytes) -> str:
    """A signed render URL of the stage's API (``base``: its URL, no trailing slash)."""
    signature = sign(secret, key, render)
    return f"{base}/render/{quote(key, safe='/')}?{render.canonical()}&sig={signature}"


def snap(width: int, ladder: tuple[int, ...] = LADDER) -> int:
    """The smallest ladder width at least ``width`` (the largest, past the top): what a
    front-end asking for an arbitrary width should use."""
    return next((step for step in ladder if step >= width), ladder[-1])
