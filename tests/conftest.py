"""Shared fixtures: personas, a private media folder, the service URLs under test."""

import pytest

from tests.factories import UserFactory


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
