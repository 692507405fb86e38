"""Shared fixtures: personas, a private media folder, the service URLs under test."""

import pytest

from evalhub.env import env_storages
from tests.factories import UserFactory
from tests.s3 import bucket_create, moto_server, s3_environment


def pytest_addoption(parser):
    parser.addoption("--redis-url", default=None, help="Redis URL for tests marked 'redis'.")


def pytest_collection_modifyitems(config, items):
    # `make test` always passes --redis-url (after checking the server answers), so
    # these tests are skipped only in a developer's ad-hoc run without it.
    if config.getoption("--redis-url"):
        return
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs --redis-url"))


@pytest.fixture
def redis_url(request) -> str:
    return request.config.getoption("--redis-url")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """A fast hasher: set_password and check_password both use it, so logins still work."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes media to its own folder, so leftovers are visible and isolated."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3 API (moto in server mode) for this test session; its URL."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(request, settings, monkeypatch) -> dict[str, str]:
    """This test's images and job artifacts in a fresh bucket of the S3 server: the
    environment that names it (set here too, for the worker processes a test starts)."""
    endpoint = request.getfixturevalue("s3_endpoint")
    environment = s3_environment(endpoint, bucket_create(endpoint))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, **env_storages()}
    return environment


@pytest.fixture(params=["filesystem", "s3"])
def storage_kind(request) -> str:
    """Run the test twice: on the folders of one machine, then on an S3 bucket."""
    if request.param == "s3":
        request.getfixturevalue("s3_bucket")
    return request.param


@pytest.fixture
def alice(db):
    """Alice, a researcher."""
    return UserFactory(username="alice", role="researchers")


@pytest.fixture
def bob(db):
    """Bob, an annotator."""
    return UserFactory(username="bob", role="annotators")


@pytest.fixture
def charlie(db):
    """Charlie, logged in but with no role."""
    return UserFactory(username="charlie")
