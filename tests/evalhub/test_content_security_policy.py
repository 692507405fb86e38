"""Content-Security-Policy (django-csp): only this site's scripts and styles, so no
template may carry inline script, a style= attribute or an on…= handler."""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    path for folder in ("evalhub", "annotate") for path in (REPO_ROOT / folder).rglob("templates/**/*.html")
)
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_the_templates_are_found():
    """The scan below covers the site's, the labeling page's and the jobs pages' templates."""
    names = {path.relative_to(REPO_ROOT).as_posix() for path in TEMPLATES}
    assert {
        "evalhub/templates/base.html",
        "annotate/templates/annotate/labeling.html",
        "evalhub/jobs/templates/jobs/job_detail.html",
        "evalhub/templates/500.html",
    } <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_no_template_has_inline_code(template):
    """Scripts and styles come from static files, which the policy allows."""
    text = template.read_text()
    found = {what for what, pattern in INLINE.items() if pattern.search(text)}
    assert not found, f"{template}: {sorted(found)}"


def test_pages_carry_the_policy(client, alice):
    """A page's policy allows this site's scripts and styles and nothing inline."""
    client.force_login(alice)
    policy = client.get("/annotate/studies/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
