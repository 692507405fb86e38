"""evalhub.storage on both storages: folders up and down, replace in place, content hash."""

from pathlib import Path

from evalhub.storage import artifacts_storage, is_local, tree_get, tree_hash, tree_put, walk
from tests.s3 import bucket_keys


def _folder(root: Path) -> Path:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("first")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 5000)
    (root / "sub" / "deep" / "marker.json").write_text("{}")
    return root


def test_a_folder_goes_up_and_comes_back_the_same(storage_kind, tmp_path, settings):
    settings.EVALHUB_JOBS_DIR = tmp_path / "jobs"
    storage = artifacts_storage()
    assert is_local(storage) == (storage_kind == "filesystem")
    source = _folder(tmp_path / "source")
    assert tree_put(storage, source, "7/run/final", last=("marker.json",)) == 3
    assert list(walk(storage, "7/run/final")) == [
        "7/run/final/a.txt",
        "7/run/final/sub/b.bin",
        "7/run/final/sub/deep/marker.json",
    ]
    assert tree_get(storage, "7/run/final", tmp_path / "copy") == 3
    assert tree_hash(tmp_path / "copy") == tree_hash(source)
    (source / "a.txt").write_text("second, longer")
    tree_put(storage, source, "7/run/final")
    with storage.open("7/run/final/a.txt") as handle:
        assert handle.read() == b"second, longer"
    assert tree_hash(tmp_path / "copy") != tree_hash(source)


def test_s3_keys_sit_under_the_jobs_prefix(s3_bucket, tmp_path):
    tree_put(artifacts_storage(), _folder(tmp_path / "source"), "3/run")
    keys = bucket_keys(s3_bucket["EVALHUB_S3_ENDPOINT_URL"], s3_bucket["EVALHUB_S3_BUCKET"])
    assert sorted(keys) == ["jobs/3/run/a.txt", "jobs/3/run/sub/b.bin", "jobs/3/run/sub/deep/marker.json"]


def test_a_large_stored_file_is_read_through_a_temporary_file(s3_bucket, monkeypatch):
    """Images are read whole into memory in one request; a file past the in-memory bound
    (an uploaded archive) comes back the same, spooled to disk."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from evalhub import image_s3_storage

    monkeypatch.setattr(image_s3_storage, "IN_MEMORY_MAX", 1000)
    small, large = b"p" * 1000, bytes(range(256)) * 40
    default_storage.save("uploads/small.bin", ContentFile(small))
    default_storage.save("uploads/large.bin", ContentFile(large))
    with default_storage.open("uploads/small.bin") as handle:
        assert isinstance(handle, ContentFile) and handle.read() == small
    with default_storage.open("uploads/large.bin") as handle:
        assert not isinstance(handle, ContentFile) and handle.read() == large
