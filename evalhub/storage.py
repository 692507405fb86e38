"""Where EvalHub keeps files, through Django's storage API (settings ``STORAGES``).

Two storages: ``default`` holds the images and uploads; ``artifacts`` the jobs' files
(exports, checkpoints, trained weights, metrics, validation samples). On one machine both
are folders (``MEDIA_ROOT``, ``EVALHUB_JOBS_DIR``); with ``EVALHUB_S3_BUCKET`` both are
prefixes of an S3-compatible bucket (evalhub.env.env_storages) and the machines share no
disk: a worker runs a job in its own ``EVALHUB_JOBS_DIR`` and copies what it writes to the
artifacts storage, which the web pages and the next worker read.

Keys in the artifacts storage mirror a worker's jobs folder (``<job id>/run/...``), so on
one machine, where that folder *is* the storage, nothing is copied.
"""

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.functional import cached_property

ARTIFACTS = "artifacts"
CHUNK = 1024 * 1024


class JobsFolderStorage(FileSystemStorage):
    """The artifacts storage of one machine: ``EVALHUB_JOBS_DIR``, read when used (as
    ``FileSystemStorage`` reads ``MEDIA_ROOT``), so a test's settings move it."""

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.EVALHUB_JOBS_DIR)

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "EVALHUB_JOBS_DIR":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)


def artifacts_storage() -> Storage:
    return storages[ARTIFACTS]


def is_local(storage: Storage) -> bool:
    """Whether ``storage`` is a folder of this machine (its files have paths)."""
    return isinstance(storage, FileSystemStorage)


def key(*parts: object) -> str:
    """A storage name from parts (always ``/``-separated, whatever the OS)."""
    return str(PurePosixPath(*(str(part) for part in parts)))


def walk(storage: Storage, prefix: str) -> Iterator[str]:
    """Every file's name under ``prefix``, depth first (``listdir`` of each folder)."""
    try:
        folders, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield key(prefix, name)
    for folder in sorted(folders):
        yield from walk(storage, key(prefix, folder))


def open_if_stored(storage: Storage, name: str) -> File | None:
    """``name`` open for reading, or ``None`` where nothing is stored under it (not written
    yet, removed, or a folder's name on a local storage)."""
    try:
        return storage.open(name, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def file_put(storage: Storage, name: str, path: Path) -> None:
    """``path``'s bytes under ``name``, replacing what was there (streamed: an upload of
    gigabytes holds a part in memory at a time)."""
    # The bucket's artifacts storage replaces in place; asking first would cost a request
    # per upload (every metrics copy, sample and checkpoint file).
    if not getattr(storage, "file_overwrite", False) and storage.exists(name):
        storage.delete(name)
    with path.open("rb") as handle:
        saved = storage.save(name, File(handle, name=path.name))
    if saved != name:  # a storage that renames instead of replacing: not one EvalHub sets up
        raise RuntimeError(f"storage kept {path} as {saved!r}, not {name!r}")


def file_get(storage: Storage, name: str, path: Path) -> None:
    """The stored file ``name`` into ``path`` (written beside it, then moved into place, so
    ``path`` never holds part of a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with storage.open(name, "rb") as source, partial.open("wb") as target:
        shutil.copyfileobj(source, target, CHUNK)
    partial.replace(path)


def tree_put(storage: Storage, folder: Path, prefix: str, *, last: tuple[str, ...] = ()) -> int:
    """Upload every file under ``folder`` to ``prefix/<its relative path>``; the files named
    in ``last`` go after all the others (a marker whose presence says the rest is there).
    The number of files."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".part"))
    files.sort(key=lambda p: p.name in last)
    for path in files:
        file_put(storage, key(prefix, path.relative_to(folder).as_posix()), path)
    return len(files)


def tree_get(storage: Storage, prefix: str, folder: Path) -> int:
    """Download every file under ``prefix`` into ``folder`` (same relative paths); the
    number of files."""
    count = 0
    for name in walk(storage, prefix):
        relative = PurePosixPath(name).relative_to(prefix)
        file_get(storage, name, folder.joinpath(*relative.parts))
        count += 1
    return count


def tree_delete(storage: Storage, prefix: str) -> None:
    for name in list(walk(storage, prefix)):
        storage.delete(name)


def tree_hash(folder: Path) -> str:
    """A content hash of a folder: SHA-256 over each file's relative path and SHA-256, in
    path order. Two folders with the same files hash the same wherever they lie."""
    outer = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                inner.update(block)
        outer.update(f"{path.relative_to(folder).as_posix()}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()
