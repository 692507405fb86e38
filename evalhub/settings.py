"""Django settings for EvalHub.

Everything that differs between a laptop demo and a production deployment comes from the
environment through ``evalhub.env``. The defaults are the embedded configuration: SQLite
and media under ``var/``, and a Celery broker on the local filesystem that needs no
server. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from evalhub.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVALHUB_VAR_DIR", str(BASE_DIR / "var"))).resolve()

# ---------------------------------------------------------------- security

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment "
            "(or DEBUG=1 for local development only)."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    if env_bool("SECURE_PROXY_SSL", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------- applications

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "evalhub.catalog",
    "annotate",
    "evalhub.results",
    "evalhub.ops",
    "evalhub.jobs",
    "evalhub.demo",
    # Last: its post_migrate grants permissions that the apps above create.
    "evalhub.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "evalhub.urls"
WSGI_APPLICATION = "evalhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "evalhub" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "evalhub.accounts.context_processors.roles",
            ],
        },
    },
]

# ---------------------------------------------------------------- database

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Waiting on a lock beats failing with "database is locked" when the web
    # process and the worker write at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not Django's shared in-memory database: tests with threads (concurrent
    # annotators, the live server of browser tests) then lock as in production.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # Prepare at the first run. Django's own cursors bind client-side and never prepare; the
    # annotation hot path binds server-side, so its statements are prepared once per
    # connection (evalhub/sql.py). Set DATABASE_PREPARED_STATEMENTS=0 behind a pooler that
    # cannot keep them.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- auth

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# ---------------------------------------------------------------- i18n, static, media

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "evalhub" / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded prompt sets and image archives; larger bodies are refused with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
EVALHUB_MAX_IMAGE_BYTES = env_int("EVALHUB_MAX_IMAGE_BYTES", 50 * 1024 * 1024)
# How an item's N judgments decide it (evalhub/results/majority.py): "plurality" (strictly
# more votes than any other option) or "absolute" (also more than half the votes).
EVALHUB_MAJORITY_RULE = env_str("EVALHUB_MAJORITY_RULE", "plurality")

# Jobs (evalhub/jobs): where runs write their data, checkpoints and final models (GPU
# workers on other machines need it on shared storage), how often a running job's worker
# reports, after how long without a report the job is declared failed, and the longest a
# job may run (a backstop far above any real run: the paper's longest is days on one GPU).
EVALHUB_JOBS_DIR = Path(env_str("EVALHUB_JOBS_DIR", str(VAR_DIR / "jobs"))).resolve()
EVALHUB_JOB_HEARTBEAT_SECONDS = env_int("EVALHUB_JOB_HEARTBEAT_SECONDS", 5)
EVALHUB_JOB_HEARTBEAT_TIMEOUT = env_int("EVALHUB_JOB_HEARTBEAT_TIMEOUT", 60)
EVALHUB_JOB_TIME_LIMIT = env_int("EVALHUB_JOB_TIME_LIMIT", 14 * 24 * 3600)

# ---------------------------------------------------------------- REST API

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "evalhub.accounts.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EvalHub API",
    "DESCRIPTION": "Human evaluation and preference post-training of latent diffusion models.",
    "VERSION": "0.1.0",
    "ENUM_NAME_OVERRIDES": {
        "StudyStatusEnum": "annotate.models.Study.Status",
        "StudyKindEnum": "annotate.models.Study.Kind",
        "JobKindEnum": "evalhub.jobs.models.Job.Kind",
        "JobStateEnum": "evalhub.jobs.models.Job.State",
    },
}

# ---------------------------------------------------------------- Celery

CELERY_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: producers and workers on one machine share a
    # folder of message files, so the demo runs a real worker with no server.
    for folder in ("queue", "processed", "control", "results"):
        (CELERY_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        "control_folder": str(CELERY_DIR / "control"),
        "store_processed": False,
    }
    _default_result_backend = f"file://{CELERY_DIR / 'results'}"
else:
    _default_result_backend = CELERY_BROKER_URL
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _default_result_backend)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Generation and training go to their own queue, so GPU workers elsewhere can consume it
# (`celery -A evalhub worker -Q gpu`); one long job per worker process at a time. Every
# other task (the reaper, health checks) goes to the default queue, `celery`.
CELERY_TASK_ROUTES = {"evalhub.jobs.tasks.run_job": {"queue": "gpu"}}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# `celery beat` (one per deployment; `worker -B` in the demo) fails the jobs of dead
# workers every half heartbeat timeout, whether or not anyone looks at a jobs page. A
# reaper message older than one interval is dropped: the next one does the same work.
_REAP_EVERY = max(1.0, EVALHUB_JOB_HEARTBEAT_TIMEOUT / 2)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {
        "task": "evalhub.jobs.tasks.reap_stale_jobs",
        "schedule": _REAP_EVERY,
        "options": {"expires": _REAP_EVERY},
    }
}
CELERY_BEAT_SCHEDULE_FILENAME = str(CELERY_DIR / "beat-schedule")

# ---------------------------------------------------------------- logging

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
