"""Screenshots of every page of EvalHub, at a phone's size and a laptop's, in one folder
(``make screenshots`` → ``var/screenshots/``), so anyone can look at the whole UI at once.

It builds a fresh demo of its own (its database and files under ``<out>/state``, never the
developer's ``var/``), serves it as production would (``DEBUG=0``, static files collected,
the site's error pages) with a Celery worker on the embedded broker, then drives Debian's
Chromium through it with Playwright: a researcher queues a training job from the train
form and the job page is shot once it has run; each annotator page is shot for each task
kind, with a task on screen and once an answer is chosen.

    .venv/bin/python scripts/screenshots.py [--out var/screenshots] [--only phone|desktop]
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "evalhub-demo"  # evalhub.demo's accounts
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 768}}
JOB_WAIT_SECONDS = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_environment(state: Path) -> dict[str, str]:
    """A production-like environment over a private demo: no debug pages, no rate limits
    (the script is quicker than any person), cookies over plain HTTP on localhost."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        EVALHUB_ENV_FILE="",
        EVALHUB_VAR_DIR=str(state),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        API_RATE_ANNOTATOR="off",
        API_RATE_RESEARCHER="off",
        API_RATE_ANONYMOUS="off",
        DJANGO_SETTINGS_MODULE="evalhub.settings",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    print("manage.py", " ".join(args), flush=True)
    subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


@contextmanager
def served(env: dict[str, str], port: int, log: Path):
    """The web server and a worker, stopped on the way out."""
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "evalhub", "worker", "-Q", "celery,gpu", "--concurrency=1",
             "--loglevel=warning", "-n", f"screenshots-{port}@%h"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        web = subprocess.Popen(
            [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                raise SystemExit(f"the server did not answer; see {log}")
            yield url
        finally:
            for process in (web, worker):
                os.killpg(process.pid, signal.SIGTERM)
            for process in (web, worker):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def demo_ids(env: dict[str, str]) -> dict:
    """The objects whose pages are shot, read from the demo's database."""
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.auth.models import User

    from annotate.models import Study
    from evalhub.catalog.models import ModelVersion, PromptSet

    prompt_set = PromptSet.objects.order_by("pk").first()
    studies = {study.name: study for study in Study.objects.all()}
    for study in studies.values():
        study.judgments_exist = study.tasks.filter(judgment_count__gt=0).exists()
    return {
        "prompt_set": prompt_set.pk,
        "prompt": prompt_set.prompts.order_by("pk").first().pk,
        "model": ModelVersion.objects.get(name="demo-base").pk,
        "studies": studies,
        "annotator": User.objects.get(username="annotator1").pk,
    }


class Shooter:
    """Pages of one size, each saved as ``<size>-<nn>-<name>.png``."""

    def __init__(self, browser, url: str, size: str, out: Path):
        self.browser, self.url, self.size, self.out = browser, url, size, out
        self.count = 0
        self.context = None

    def log_in(self, username: str):
        if self.context:
            self.context.close()
        phone = self.size == "phone"
        self.context = self.browser.new_context(
            viewport=SIZES[self.size], has_touch=phone, is_mobile=phone, device_scale_factor=2 if phone else 1
        )
        page = self.context.new_page()
        page.set_default_timeout(20000)
        if username:
            page.goto(f"{self.url}/accounts/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
        self.page = page
        return page

    def shoot(self, name: str, path: str | None = None, wait_for: str | None = None) -> None:
        if path is not None:
            self.page.goto(f"{self.url}{path}")
        self.page.wait_for_load_state("networkidle")
        if wait_for:
            self.page.wait_for_selector(wait_for)
        self.count += 1
        target = self.out / f"{self.size}-{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        print(target.relative_to(REPO) if target.is_relative_to(REPO) else target, flush=True)


def researcher_pages(shot: Shooter, ids: dict, job_id: int | None) -> None:
    studies = ids["studies"]
    shot.log_in("")
    shot.shoot("login", "/accounts/login/")
    shot.log_in("researcher")
    shot.shoot("prompt-sets", "/catalog/prompt-sets/")
    shot.shoot("prompt-set", f"/catalog/prompt-sets/{ids['prompt_set']}/")
    shot.shoot("prompt", f"/catalog/prompts/{ids['prompt']}/")
    shot.shoot("model-versions", "/catalog/models/")
    shot.shoot("model-version", f"/catalog/models/{ids['model']}/")
    shot.shoot("model-version-new", "/catalog/models/new/")
    shot.shoot("import-prompts", "/catalog/prompt-sets/import/")
    shot.shoot("import-images", "/catalog/images/import/")
    shot.shoot("studies", "/annotate/research/studies/")
    shot.shoot("study-new", "/annotate/research/studies/new/")
    for name, study in sorted(studies.items()):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower().removeprefix("demo: ")).strip("-")
        shot.shoot(f"study-{slug}", f"/results/studies/{study.pk}/")
        if study.judgments_exist:
            shot.shoot(f"workforce-{slug}", f"/results/studies/{study.pk}/workforce/")
    shot.shoot("annotators", "/results/annotators/")
    shot.shoot("annotator", f"/results/annotators/{ids['annotator']}/")
    shot.shoot("jobs", "/jobs/")
    shot.shoot("train-form", "/jobs/new/training/")
    shot.shoot("generate-form", f"/jobs/new/generation/{ids['model']}/")
    if job_id is not None:
        shot.shoot("job", f"/jobs/{job_id}/", wait_for="#job-chart polyline")
    shot.shoot("api-docs", "/api/docs/", wait_for=".swagger-ui .opblock")
    shot.shoot("api-redoc", "/api/redoc/", wait_for="redoc [data-section-id^='operation/']")
    shot.shoot("admin", "/admin/")
    shot.shoot("error-404", "/no/such/page/")
    shot.log_in("annotator1")
    shot.shoot("error-403", "/jobs/")  # researchers only


def annotator_pages(shot: Shooter, ids: dict) -> None:
    shot.log_in("annotator2")
    shot.shoot("annotate-home", "/annotate/")
    for _name, study in sorted(ids["studies"].items()):
        if study.status != "open":
            continue
        slug = study.kind.replace("_", "-")
        shot.shoot(f"label-{slug}", f"/annotate/studies/{study.pk}/", wait_for="#lbl-task:not([hidden]) img")
        answer_without_submitting(shot.page, study.kind, shot.size == "phone")
        shot.shoot(f"label-{slug}-answered")


def answer_without_submitting(page, kind: str, touch: bool) -> None:
    """Choose an answer the way the size does (tap or keys), leaving it on screen."""
    images = page.locator("#lbl-images .lbl-image")
    if kind == "best_worst":
        if touch:
            images.nth(1).tap()
            images.nth(3).tap()
        else:
            page.keyboard.press("2")
            page.keyboard.press("4")
    elif kind == "ab":
        if touch:
            images.nth(0).tap()
        else:
            page.keyboard.press("ArrowLeft")
    else:
        for _ in range(page.locator("#lbl-questions li").count()):
            page.keyboard.press("y")


def queue_training(browser, url: str, ids: dict) -> int:
    """A researcher trains on the simulated best/worst study through the train form."""
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", "researcher")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    study = ids["studies"]["Demo: best/worst with simulated votes"]
    page.goto(f"{url}/jobs/new/training/?study={study.pk}&base_version={ids['model']}")
    page.fill("[name=version_name]", "demo-dpo-screens")
    for field, value in (("max_steps", "12"), ("batch_size", "2")):
        if page.locator(f"[name={field}]").count():
            page.fill(f"[name={field}]", value)
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    if "/jobs/new/" in page.url:
        errors = page.locator(".errorlist").all_text_contents()
        raise SystemExit(f"the train form refused the job: {errors}")
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    ended = "['succeeded', 'failed', 'cancelled'].includes(document.getElementById('job-state').textContent)"
    page.wait_for_function(f"() => {ended}", timeout=JOB_WAIT_SECONDS * 1000)
    state = page.locator("#job-state").text_content()
    context.close()
    print(f"training job #{job_id}: {state}", flush=True)
    return job_id


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "var" / "screenshots")
    parser.add_argument("--only", choices=sorted(SIZES), help="one size only")
    parser.add_argument("--no-job", action="store_true", help="skip the training job (quicker)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    state = out / "state"
    shutil.rmtree(out, ignore_errors=True)
    state.mkdir(parents=True)
    env = demo_environment(state)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    manage(env, "seed_demo", "--size", "128", "--i-know-this-is-not-production")
    ids = demo_ids(env)

    from playwright.sync_api import sync_playwright

    port = free_port()
    with served(env, port, state / "server.log") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        job_id = None if args.no_job else queue_training(browser, url, ids)
        for size in [args.only] if args.only else SIZES:
            shot = Shooter(browser, url, size, out)
            researcher_pages(shot, ids, job_id)
            annotator_pages(shot, ids)
            shot.context.close()
        browser.close()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
