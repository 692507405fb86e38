"""The import page's way to hand a large archive to a background job.

An archive above ``EVALHUB_IMPORT_INLINE_MAX_BYTES`` is not imported inside the request:
it is stored and imported by a job on a CPU worker. Jobs live in a layer above the catalog
(evalhub.jobs imports the catalog, never the reverse), so the jobs app registers the
function that queues the job when it loads (``JobsConfig.ready``), and the import page asks
for it here. Where none is registered (a deployment without the jobs app), every archive
is imported inline, as before.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueuedImport:
    """Where to follow a queued import (the job's page) and how to name it to the user."""

    url: str
    label: str


# (user, prompt set, uploaded archive, create_models) → the queued import. It raises
# ImportRejected or ImageSourceError for an archive it refuses before queueing.
BackgroundImportLauncher = Callable[..., QueuedImport]

_launcher: BackgroundImportLauncher | None = None


def background_import_register(launcher: BackgroundImportLauncher) -> None:
    """Make ``launcher`` the import page's path for large archives."""
    global _launcher
    _launcher = launcher


def background_import_launcher() -> BackgroundImportLauncher | None:
    """The registered launcher, or ``None``: import inline."""
    return _launcher
