"""Where an image manifest's files are read from: a folder (the command line) or a
ZIP archive (the researcher UI). Both answer ``read(path)`` with the file's bytes.

An archive is checked from its central directory before anything is decompressed (entry
count, declared sizes, encryption, compression method), and every member is read in
chunks that stop at its limit, at its declared size and at the archive's total, so a
header that lies cannot make it expand further (limits.py).
"""

import os
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from evalhub.catalog import errors, limits
from evalhub.catalog.uploads import CHUNK_BYTES, TooLarge, read_limited

MANIFEST_NAME = "manifest.jsonl"
SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ENCRYPTED_FLAG = 0x1
# What reading a damaged member raises: a bad CRC or header (BadZipFile), data cut short
# (EOFError), a broken deflate stream (zlib.error), and the rest zipfile lets through.
_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
)

# The end records of a ZIP file (PKWARE APPNOTE 4.3.14-4.3.16), found as zipfile finds them.
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_SIGNATURE = b"PK\x06\x06"


class ImageSourceError(Exception):
    """A manifest's image path or the archive cannot be read; the message is for the user."""


class DirectorySource:
    """Files under a folder; relative paths are taken from the manifest's folder."""

    def __init__(self, root: Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes or limits.MAX_IMAGE_BYTES.value

    def read(self, path: str) -> bytes:
        file = self.root / path
        try:
            if not file.is_file():
                raise ImageSourceError(errors.IMAGE_NOT_FOUND.format(path=path))
            with file.open("rb") as handle:
                return read_limited(handle, self.max_bytes)
        except TooLarge:
            raise ImageSourceError(errors.IMAGE_TOO_LARGE.format(path=path, limit=self.max_bytes)) from None
        except (OSError, ValueError) as exc:
            raise ImageSourceError(errors.IMAGE_NOT_READABLE.format(path=path, error=exc)) from None


class ZipSource:
    """Members of an uploaded archive, relative to the folder of its ``manifest.jsonl``.

    Nothing is extracted to disk and paths cannot climb out of the archive.
    """

    def __init__(self, archive: zipfile.ZipFile, max_bytes: int | None = None):
        self.archive = archive
        self.max_bytes = max_bytes or limits.MAX_IMAGE_BYTES.value
        self.max_expanded = limits.MAX_ARCHIVE_UNCOMPRESSED_BYTES.value
        self.expanded = 0  # bytes decompressed so far, all members together
        _check_directory(archive.infolist(), max(self.max_bytes, limits.MAX_TEXT_FILE_BYTES.value))
        manifests = sorted(
            (name for name in archive.namelist() if PurePosixPath(name).name == MANIFEST_NAME),
            key=lambda name: (name.count("/"), name),
        )
        if not manifests:
            raise ImageSourceError(errors.NO_MANIFEST_IN_ARCHIVE)
        self.manifest_name = manifests[0]
        self.base = PurePosixPath(self.manifest_name).parent

    @classmethod
    def open(cls, fileobj) -> "ZipSource":
        """The archive in ``fileobj`` (seekable), refused before parsing when its central
        directory is larger than the member limit allows."""
        directory_size = _central_directory_size(fileobj)
        if directory_size is None:
            raise ImageSourceError(errors.NOT_A_ZIP)
        allowed = limits.MAX_ARCHIVE_MEMBERS.value * limits.CENTRAL_DIRECTORY_BYTES_PER_MEMBER
        if directory_size > allowed:
            raise ImageSourceError(
                errors.ARCHIVE_DIRECTORY_TOO_LARGE.format(size=directory_size, limit=allowed)
            )
        try:
            archive = zipfile.ZipFile(fileobj)
        except zipfile.BadZipFile as exc:
            raise ImageSourceError(errors.ARCHIVE_DAMAGED.format(error=exc)) from None
        except (EOFError, OSError, ValueError, struct.error) as exc:
            raise ImageSourceError(errors.ARCHIVE_DAMAGED.format(error=exc or type(exc).__name__)) from None
        return cls(archive)

    def manifest_bytes(self) -> bytes:
        info = self.archive.getinfo(self.manifest_name)
        limit = limits.MAX_TEXT_FILE_BYTES.value
        if info.file_size > limit:
            raise ImageSourceError(errors.FILE_TOO_LARGE.format(name=self.manifest_name, limit=limit))
        return self._read_member(info)

    def read(self, path: str) -> bytes:
        relative = PurePosixPath(path.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts:
            raise ImageSourceError(errors.IMAGE_PATH_OUTSIDE.format(path=path))
        member = str(self.base / relative) if str(self.base) != "." else str(relative)
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise ImageSourceError(errors.IMAGE_NOT_FOUND.format(path=path)) from None
        if info.file_size > self.max_bytes:
            raise ImageSourceError(errors.IMAGE_TOO_LARGE.format(path=path, limit=self.max_bytes))
        return self._read_member(info)

    def _read_member(self, info: zipfile.ZipInfo) -> bytes:
        """The member's bytes, stopped at its declared size and at the archive's total."""
        chunks, size = [], 0
        try:
            with self.archive.open(info) as member:
                while chunk := member.read(CHUNK_BYTES):
                    size += len(chunk)
                    self.expanded += len(chunk)
                    if size > info.file_size:
                        raise ImageSourceError(errors.ARCHIVE_MEMBER_LONGER.format(name=info.filename))
                    if self.expanded > self.max_expanded:
                        raise ImageSourceError(
                            errors.ARCHIVE_TOO_LARGE_UNCOMPRESSED.format(limit=self.max_expanded)
                        )
                    chunks.append(chunk)
        except _MEMBER_ERRORS as exc:
            raise ImageSourceError(
                errors.ARCHIVE_MEMBER_DAMAGED.format(name=info.filename, error=str(exc) or type(exc).__name__)
            ) from None
        return b"".join(chunks)


def _check_directory(infos: list[zipfile.ZipInfo], max_member_bytes: int) -> None:
    """Entry count, encryption, compression and declared sizes, before any decompression."""
    max_members = limits.MAX_ARCHIVE_MEMBERS.value
    if len(infos) > max_members:
        raise ImageSourceError(errors.ARCHIVE_TOO_MANY_MEMBERS.format(count=len(infos), limit=max_members))
    total, max_total = 0, limits.MAX_ARCHIVE_UNCOMPRESSED_BYTES.value
    for info in infos:
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise ImageSourceError(errors.ARCHIVE_MEMBER_ENCRYPTED.format(name=info.filename))
        if info.compress_type not in SUPPORTED_COMPRESSION:
            raise ImageSourceError(
                errors.ARCHIVE_MEMBER_UNSUPPORTED.format(name=info.filename, method=info.compress_type)
            )
        if info.file_size > max_member_bytes:
            raise ImageSourceError(
                errors.ARCHIVE_MEMBER_TOO_LARGE.format(
                    name=info.filename, size=info.file_size, limit=max_member_bytes
                )
            )
        total += info.file_size
        if total > max_total:
            raise ImageSourceError(errors.ARCHIVE_TOO_LARGE_UNCOMPRESSED.format(limit=max_total))


def _central_directory_size(fileobj) -> int | None:
    """The size the archive's end record gives its central directory (the ZIP64 record's
    where there is one), or ``None`` when there is no end record: not a ZIP, or cut short.
    The record is looked for where zipfile looks: at the very end, else the last one in
    the final 64 KiB (its comment's length)."""
    fileobj.seek(0, os.SEEK_END)
    end = fileobj.tell()
    start = max(0, end - _END.size - 0xFFFF)
    fileobj.seek(start)
    tail = fileobj.read(end - start)
    fileobj.seek(0)
    at = len(tail) - _END.size
    if at < 0 or tail[at : at + 4] != _END_SIGNATURE or _END.unpack_from(tail, at)[-1] != 0:
        at = tail.rfind(_END_SIGNATURE)
        if at < 0 or len(tail) - at < _END.size:
            return None
    size = _END.unpack_from(tail, at)[5]
    locator_at = start + at - _ZIP64_LOCATOR.size
    if locator_at - _ZIP64_END.size >= 0:
        fileobj.seek(locator_at - _ZIP64_END.size)
        record = fileobj.read(_ZIP64_END.size + _ZIP64_LOCATOR.size)
        fileobj.seek(0)
        if (
            record[_ZIP64_END.size : _ZIP64_END.size + 4] == _ZIP64_LOCATOR_SIGNATURE
            and record[:4] == _ZIP64_END_SIGNATURE
        ):
            size = _ZIP64_END.unpack_from(record)[8]
    return size
