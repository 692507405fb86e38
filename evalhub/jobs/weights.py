"""Model weights kept in the artifacts storage, named by their content hash.

With object storage the machines share no disk, so a trained version's weights (and any
weights ``manage.py upload_weights`` puts there) live under ``models/<sha256>/`` of the
artifacts storage and the version's ``weights_uri`` is ``storage://models/<sha256>``. A
worker that needs them (to train from them, or to generate) downloads them once into
``EVALHUB_WEIGHTS_CACHE_DIR/<sha256>/``, checks the hash, and reuses that folder for every
later job: a name that is its content cannot go stale. On one machine, where the artifacts
storage is the jobs folder, a trained version keeps its run folder's path as before.
"""

import logging
import shutil
import uuid
from pathlib import Path

from django.conf import settings

from evalhub.storage import artifacts_storage, key, tree_get, tree_hash, tree_put
from training.checkpoints import CONTENT_HASH_FOLDER
from training.pipelines import ModelLoadError, index_family, pipeline_family

logger = logging.getLogger(__name__)

SCHEME = "storage://"
MODELS = "models"
INDEX = "model_index.json"  # uploaded last: its presence says the folder is complete
COMPLETE = ".complete"  # in a cache folder: the download finished and its hash matched

NOT_STORED = "{uri}: no weights in the storage under {key}"
HASH_MISMATCH = "{uri}: the downloaded weights hash to {actual}, not {expected}"


class WeightsUnavailable(Exception):
    pass


def is_stored(uri: str) -> bool:
    return uri.startswith(SCHEME)


def _stored_key(uri: str) -> tuple[str, str]:
    """(the storage prefix, the content hash) of a ``storage://models/<sha256>`` URI."""
    path = uri[len(SCHEME) :].strip("/")
    parts = path.split("/")
    if len(parts) != 2 or parts[0] != MODELS or not CONTENT_HASH_FOLDER.fullmatch(parts[1]):
        raise WeightsUnavailable(f"{uri}: not a stored weights URI (storage://{MODELS}/<sha256>)")
    return path, parts[1]


def weights_upload(folder: Path) -> str:
    """Store a pipeline folder's files under ``models/<its content hash>/`` (skipped where
    that folder is already complete: same hash, same files); its ``storage://`` URI."""
    storage = artifacts_storage()
    digest = tree_hash(folder)
    prefix = key(MODELS, digest)
    if not storage.exists(key(prefix, INDEX)):
        tree_put(storage, folder, prefix, last=(INDEX,))
    return SCHEME + prefix


def weights_family(uri: str) -> str:
    """The pipeline family of a version's weights, read as plain JSON (no torch): from the
    storage's copy of ``model_index.json`` for a ``storage://`` URI, else from the folder."""
    if not is_stored(uri):
        return pipeline_family(uri)
    try:
        prefix, _ = _stored_key(uri)
    except WeightsUnavailable as exc:
        raise ModelLoadError(str(exc)) from None
    try:
        with artifacts_storage().open(key(prefix, INDEX), "rb") as handle:
            text = handle.read().decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        raise ModelLoadError(NOT_STORED.format(uri=uri, key=key(prefix, INDEX))) from None
    return index_family(text, uri)


def weights_local(uri: str) -> str:
    """Where this worker reads the weights ``uri`` names: a ``storage://`` URI's cache folder,
    downloaded and checked first if this worker has none yet; any other URI (a folder, a hub
    id) as it is.

    The download goes to a folder of its own and is moved into place once its hash matches,
    so two jobs fetching the same weights at once never read a half-written cache.
    """
    if not is_stored(uri):
        return uri
    prefix, digest = _stored_key(uri)
    cache_root = Path(settings.EVALHUB_WEIGHTS_CACHE_DIR)
    cached = cache_root / digest
    if (cached / COMPLETE).is_file():
        return str(cached)
    storage = artifacts_storage()
    if not storage.exists(key(prefix, INDEX)):
        raise WeightsUnavailable(NOT_STORED.format(uri=uri, key=prefix))
    partial = cache_root / f".{digest}.{uuid.uuid4().hex}"
    try:
        tree_get(storage, prefix, partial)
        actual = tree_hash(partial)
        if actual != digest:
            raise WeightsUnavailable(HASH_MISMATCH.format(uri=uri, actual=actual, expected=digest))
        (partial / COMPLETE).touch()
        try:
            partial.rename(cached)
        except OSError:  # another job moved the same weights into place first
            if not (cached / COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    logger.info("fetched %s into %s", uri, cached)
    return str(cached)
