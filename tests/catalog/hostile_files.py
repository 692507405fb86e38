"""Files an attacker would upload, built small: ZIP archives with patched headers, a PNG
that declares a huge size, JSON nested past any sane depth."""

import io
import struct
import zipfile
import zlib

# PKWARE APPNOTE 4.3.12 (central directory header) and 4.3.7 (local file header).
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
# Field positions in each: flags, method, crc, compressed size, uncompressed size.
_CENTRAL_FIELDS = {"flags": 3, "method": 4, "crc": 7, "compressed": 8, "size": 9}
_LOCAL_FIELDS = {"flags": 2, "method": 3, "crc": 6, "compressed": 7, "size": 8}
_CENTRAL_OFFSET, _CENTRAL_NAME_LENGTH = 16, 10


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An archive of ``members``, deflated unless told otherwise."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def patch_member(data: bytes, name: str, **fields: int) -> bytes:
    """``data`` with the named member's header fields (flags, method, crc, compressed,
    size) replaced, in the central directory and in the local header alike."""
    patched = bytearray(data)
    at = patched.find(b"PK\x01\x02")
    while at >= 0:
        entry = list(_CENTRAL.unpack_from(patched, at))
        entry_name = bytes(patched[at + _CENTRAL.size : at + _CENTRAL.size + entry[_CENTRAL_NAME_LENGTH]])
        if entry_name.decode() == name:
            local_at = entry[_CENTRAL_OFFSET]
            local = list(_LOCAL.unpack_from(patched, local_at))
            for field, value in fields.items():
                entry[_CENTRAL_FIELDS[field]] = value
                local[_LOCAL_FIELDS[field]] = value
            _CENTRAL.pack_into(patched, at, *entry)
            _LOCAL.pack_into(patched, local_at, *local)
            return bytes(patched)
        at = patched.find(b"PK\x01\x02", at + 4)
    raise KeyError(name)


def member_info(data: bytes, name: str) -> zipfile.ZipInfo:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.getinfo(name)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width``×``height`` pixels, with a few bytes of data:
    cheap to build, ruinous to decode."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def nested_json(depth: int) -> str:
    """A JSON list nested ``depth`` deep."""
    return "[" * depth + "]" * depth
