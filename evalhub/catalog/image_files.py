"""Canonical image files: pixels only, opaque names, content hashes.

An annotator must not learn which model made an image from its bytes (SPEC "Blinding"):
every imported image is decoded and re-encoded as a PNG holding only its pixels, so EXIF,
PNG text chunks, ICC profiles and encoder fingerprints are gone, and it is stored under a
random name. The sha256 of those canonical bytes identifies duplicates.
"""

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError


class ImageUnreadable(ValueError):
    """The bytes are not an image Pillow can fully decode."""


class ImageTooLarge(Exception):
    """The image's header declares more pixels than allowed; nothing was decoded."""

    def __init__(self, width: int, height: int, limit: int):
        self.width, self.height, self.limit = width, height, limit
        super().__init__(f"{width}×{height} pixels, over the limit of {limit}")


@dataclass(frozen=True)
class CanonicalImage:
    png: bytes
    width: int
    height: int
    sha256: str


def canonical_png(data: bytes, *, max_pixels: int | None = None) -> CanonicalImage:
    """Decode ``data`` and re-encode its pixels alone as a PNG.

    The EXIF orientation is applied first, so the stored image looks as the original
    did in a viewer, though the tag itself is dropped. With ``max_pixels``, an image whose
    header declares more is refused (``ImageTooLarge``) before its pixels are decoded.
    """
    try:
        with Image.open(io.BytesIO(data)) as source:
            width, height = source.size  # from the header: Image.open decodes nothing
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLarge(width, height, max_pixels)
            source.load()
            upright = ImageOps.exif_transpose(source)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(str(exc) or type(exc).__name__) from exc

    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if has_alpha else "RGB"
    converted = upright.convert(mode)
    # A fresh image from raw pixels carries no info dict, palette notes or profiles.
    pixels_only = Image.frombytes(mode, converted.size, converted.tobytes())
    buffer = io.BytesIO()
    pixels_only.save(buffer, format="PNG", compress_level=6)
    png = buffer.getvalue()
    return CanonicalImage(
        png=png,
        width=pixels_only.width,
        height=pixels_only.height,
        sha256=hashlib.sha256(png).hexdigest(),
    )


def storage_name(public_id: str) -> str:
    """Where an image with this opaque id is stored: nothing but the id in the path."""
    return f"images/{public_id[:2]}/{public_id}.png"
