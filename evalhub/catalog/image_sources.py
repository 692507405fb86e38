"""Where an image manifest's files are read from: a folder (the command line) or a
ZIP archive (the researcher UI). Both answer ``read(path)`` with the file's bytes."""

import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from evalhub.catalog import errors

MANIFEST_NAME = "manifest.jsonl"


class ImageSourceError(Exception):
    """A manifest's image path cannot be read; the message is for the user."""


class DirectorySource:
    """Files under a folder; relative paths are taken from the manifest's folder."""

    def __init__(self, root: Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes or settings.EVALHUB_MAX_IMAGE_BYTES

    def read(self, path: str) -> bytes:
        file = self.root / path
        if not file.is_file():
            raise ImageSourceError(errors.IMAGE_NOT_FOUND.format(path=path))
        if file.stat().st_size > self.max_bytes:
            raise ImageSourceError(errors.IMAGE_TOO_LARGE.format(path=path, limit=self.max_bytes))
        return file.read_bytes()


class ZipSource:
    """Members of an uploaded archive, relative to the folder of its ``manifest.jsonl``.

    Nothing is extracted to disk and paths cannot climb out of the archive.
    """

    def __init__(self, archive: zipfile.ZipFile, max_bytes: int | None = None):
        self.archive = archive
        self.max_bytes = max_bytes or settings.EVALHUB_MAX_IMAGE_BYTES
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
        try:
            return cls(zipfile.ZipFile(fileobj))
        except zipfile.BadZipFile:
            raise ImageSourceError(errors.NOT_A_ZIP) from None

    def manifest_text(self) -> bytes:
        return self.archive.read(self.manifest_name)

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
        return self.archive.read(info)
