"""Each task's image is bytes of its own, with the pixels untouched."""

import io
import zlib

import pytest
from PIL import Image, PngImagePlugin

from annotate.served_png import CHUNK_TYPE, PAD_CHOICES, PAD_MIN, NotAPng, png_for_task
from evalhub.catalog.image_files import canonical_png
from tests.factories import png_bytes

STORED = canonical_png(png_bytes(color=(12, 200, 40), size=(20, 16))).png


def decoded(png: bytes) -> tuple:
    with Image.open(io.BytesIO(png)) as image:
        image.load()  # checks every chunk's CRC on the way
        return image.mode, image.size, image.tobytes()


def chunks(png: bytes) -> list[bytes]:
    found, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        assert int.from_bytes(png[at + 8 + length : at + 12 + length], "big") == zlib.crc32(kind + data)
        found.append(kind)
        at += 12 + length
    return found


def test_the_pixels_are_bit_identical_and_the_bytes_are_not():
    """Two tasks decode to the same pixels from different bytes of different lengths."""
    one = png_for_task(STORED, token="a" * 32, position=0)
    two = png_for_task(STORED, token="b" * 32, position=0)
    assert decoded(one) == decoded(two) == decoded(STORED)
    assert one != two and len(one) != len(two)


def test_a_task_serves_the_same_bytes_on_every_fetch_and_per_position():
    """Keyed by the lease token and the position, so caching works and positions differ."""
    assert png_for_task(STORED, token="c" * 32, position=1) == png_for_task(
        STORED, token="c" * 32, position=1
    )
    assert png_for_task(STORED, token="c" * 32, position=1) != png_for_task(
        STORED, token="c" * 32, position=0
    )


def test_the_salt_is_one_valid_ancillary_chunk_after_the_header():
    """Every decoder may skip it: ancillary, private, safe to copy, with a correct CRC."""
    served = png_for_task(STORED, token="d" * 32, position=0)
    assert chunks(served) == [b"IHDR", CHUNK_TYPE, *chunks(STORED)[1:]]
    assert CHUNK_TYPE[0:1].islower() and CHUNK_TYPE[1:2].islower() and CHUNK_TYPE[2:3].isupper()
    assert PAD_MIN <= len(served) - len(STORED) - 12 < PAD_MIN + PAD_CHOICES


def test_lengths_spread_over_their_whole_range():
    """Over many tasks the added length takes many values (so equal lengths are rare)."""
    added = {len(png_for_task(STORED, token=f"{i:032x}", position=0)) - len(STORED) for i in range(400)}
    assert len(added) > 350


def test_the_secret_key_keys_the_salt(settings):
    """Without the server's key nobody can predict a task's bytes from its token."""
    before = png_for_task(STORED, token="e" * 32, position=0)
    settings.SECRET_KEY = "another key"
    assert png_for_task(STORED, token="e" * 32, position=0) != before


def test_a_stored_file_that_is_not_a_png_is_refused():
    """The server stores canonical PNGs only; anything else is an error, not a corrupt image."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    with pytest.raises(NotAPng):
        png_for_task(buffer.getvalue(), token="f" * 32, position=0)


def test_text_chunks_of_an_original_never_come_back():
    """The salt is added to the canonical PNG, which holds pixels only."""
    info = PngImagePlugin.PngInfo()
    info.add_text("model", "zebracorn")
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    served = png_for_task(canonical_png(buffer.getvalue()).png, token="0" * 32, position=0)
    assert b"zebracorn" not in served and b"tEXt" not in served
