"""Headless Chromium for the browser tests: Debian's package (`make test` installs it),
driven by Playwright, which cannot download a browser here."""

import shutil
import threading
from contextlib import contextmanager

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def chromium(monkeypatch):
    """A launched browser; when the test ends, the live server's request threads finish, so
    their database connections close before the test database is dropped."""
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls
    # are still synchronous, so Django's async guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is missing: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        _drop_dead_connections()
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=10)


def _drop_dead_connections() -> None:
    """Close the connections the database has dropped, so the next query opens a new one.
    Django keeps connections per context, and Playwright's sync API runs the test in a
    context of its own, where a connection of an earlier browser test can outlive a test
    that cut every other connection (tests/jobs/test_heartbeat.py)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.is_usable():
            connection.close()
