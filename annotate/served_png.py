"""Each task's images as bytes of their own (SPEC "Blinding": the same image is never the
same bytes twice).

An annotator who hashes what they are shown must not match an image across tasks by its
bytes or its length. So every served PNG carries one private ancillary chunk, inserted
after the header, whose length and content are drawn from a keyed hash of the lease token
and the display position: the same task serves the same bytes on every fetch (so browser
caching works), any two tasks differ in bytes and almost always in length, and decoders
skip the chunk, so the pixels are bit-identical. This is defence in depth: the decoded
pixels stay equal by design, and exposure control (annotate.exposure) is what keeps one
person from linking two contexts.
"""

import hashlib
import hmac
import struct
import zlib

from django.conf import settings

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary (lower-case 1st letter), private (2nd), reserved bit clear (upper-case 3rd),
# safe to copy (lower-case 4th): every decoder skips it.
CHUNK_TYPE = b"saLt"
# Lengths are uniform over this many values, so two serves of the same pixels have equal
# lengths with probability 1/PAD_CHOICES.
PAD_MIN, PAD_CHOICES = 16, 4096
_HEADER_END = len(SIGNATURE) + 4 + 4 + 13 + 4  # the IHDR chunk: length, type, 13 bytes, CRC


class NotAPng(ValueError):
    """The stored file does not start with a PNG header."""


def png_for_task(png: bytes, *, token: str, position: int) -> bytes:
    """``png`` with this task's salt chunk after its header."""
    if not png.startswith(SIGNATURE) or png[len(SIGNATURE) + 4 : len(SIGNATURE) + 8] != b"IHDR":
        raise NotAPng("stored image is not a PNG")
    key = hmac.new(settings.SECRET_KEY.encode(), f"served-png:{token}:{position}".encode(), hashlib.sha256)
    seed = key.digest()
    length = PAD_MIN + int.from_bytes(seed[:4], "big") % PAD_CHOICES
    data = hashlib.shake_256(seed).digest(length)
    chunk = struct.pack(">I", length) + CHUNK_TYPE + data + struct.pack(">I", zlib.crc32(CHUNK_TYPE + data))
    return png[:_HEADER_END] + chunk + png[_HEADER_END:]
