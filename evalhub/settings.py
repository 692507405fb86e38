"""Django settings for EvalHub.

Everything that differs between a laptop demo and a production deployment comes from the
environment through ``evalhub.env``. The defaults are the embedded configuration: SQLite
and media under ``var/``, and a Celery broker on the local filesystem that needs no
server. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from evalhub.catalog.limits import ALL as IMPORT_LIMITS
from evalhub.env import (
    env_bool,
    env_cache,
    env_int,
    env_list,
    env_rate,
    env_storages,
    env_str,
    load_env_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Local development's variables (`make demo` writes DEBUG=1 there); empty: no file is read.
ENV_FILE = env_str("EVALHUB_ENV_FILE", str(BASE_DIR / ".env"))
load_env_file(ENV_FILE)
VAR_DIR = Path(env_str("EVALHUB_VAR_DIR", str(BASE_DIR / "var"))).resolve()

# ---------------------------------------------------------------- security

DEBUG = env_bool("DEBUG", default=False)

# Django's own test of a strong key (check --deploy, security.W009), enforced at start-up.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment "
            "(or DEBUG=1 for local development only)."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production"
elif not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak: it has {len(SECRET_KEY)} characters, {len(set(SECRET_KEY))} of "
        f"them different; it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
        f"{SECRET_KEY_MIN_UNIQUE} different, and no 'django-insecure-' prefix. Make one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` (or set DEBUG=1 for local "
        "development only)."
    )

# `seed_demo` makes accounts with a public password: only in a process started with DEBUG=1
# (kept apart from DEBUG, which the test runner turns off inside the tests it runs).
DEMO_SEED_ALLOWED = DEBUG

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# HTTPS. Cookies are secure unless DEBUG; the redirect and HSTS are off until the
# deployment serves HTTPS (turned on without it, every request would redirect to a URL
# that does not answer, and browsers would remember HSTS for its whole duration).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
if env_bool("SECURE_PROXY_SSL", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "evalhub.error_pages.csrf_failure"

# Reverse proxies in front of the app that append the client's address to
# X-Forwarded-For: the login lockout and the API's per-address rate read the client there
# (0: the socket's peer, and X-Forwarded-For is ignored, since anyone can send it).
PROXY_COUNT = env_int("PROXY_COUNT", 0)

# Content-Security-Policy (django-csp): scripts, styles and everything else from this
# site only; no inline <script>, style= attribute or on…= handler anywhere (templates
# load evalhub/static and the apps' static folders).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # data: for the icons inside Swagger UI's stylesheet
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

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
    "drf_spectacular_sidecar",
    "csp",
    "axes",
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
    "evalhub.security_headers.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out log-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before the password is checked.
    "evalhub.accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login lockout (django-axes) at /accounts/login/ and /admin/login/: after
# LOGIN_FAILURE_LIMIT failures for one username from one address, that pair is refused
# (429, even with the right password) for LOGIN_LOCKOUT_MINUTES; a success resets the count.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "evalhub.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "evalhub.accounts.lockout.client_address"  # as the API's rates, PROXY_COUNT
# Sign-ups through an invitation link (annotate.invitation_views): at most this many
# tries per client address (as PROXY_COUNT sees it) per hour, counted in the cache; 0: no limit.
SIGNUPS_PER_HOUR = env_int("SIGNUPS_PER_HOUR", 20)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# ---------------------------------------------------------------- cache

# The API's rate counts live here: one local-memory cache per process unless CACHE_URL
# names a Redis server that all workers share (production; README, Configuration).
CACHES = {"default": env_cache("CACHE_URL")}

# ---------------------------------------------------------------- i18n, static, media

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "evalhub" / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Jobs (evalhub/jobs): the folder where a worker runs them (exports, checkpoints, trained
# models, metrics). On one machine it is also where their files are kept; with object
# storage it is the worker's scratch space and the artifacts storage keeps the files.
EVALHUB_JOBS_DIR = Path(env_str("EVALHUB_JOBS_DIR", str(VAR_DIR / "jobs"))).resolve()
STORAGES = {
    **env_storages(),
    "staticfiles": {
        "BACKEND": "evalhub.static_files.StaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded prompt sets and image archives; larger bodies are refused with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# What an import accepts (evalhub/catalog/limits.py declares each bound and its default);
# the environment overrides one by its name.
for _limit in IMPORT_LIMITS:
    globals()[_limit.setting] = env_int(_limit.setting, _limit.default)
# How an item's N judgments decide it (evalhub/results/majority.py): "plurality" (strictly
# more votes than any other option) or "absolute" (also more than half the votes).
EVALHUB_MAJORITY_RULE = env_str("EVALHUB_MAJORITY_RULE", "plurality")

# How often a running job's worker reports, after how long without a report the job is
# declared failed, and the longest a job may run (a backstop far above any real run: the
# paper's longest is days on one GPU).
EVALHUB_JOB_HEARTBEAT_SECONDS = env_int("EVALHUB_JOB_HEARTBEAT_SECONDS", 5)
EVALHUB_JOB_HEARTBEAT_TIMEOUT = env_int("EVALHUB_JOB_HEARTBEAT_TIMEOUT", 60)
EVALHUB_JOB_TIME_LIMIT = env_int("EVALHUB_JOB_TIME_LIMIT", 14 * 24 * 3600)
# How many times a job whose worker died is queued again by the reaper (a retried training
# continues from its last checkpoint); 0: only a researcher's retry.
EVALHUB_JOB_AUTO_RETRIES = env_int("EVALHUB_JOB_AUTO_RETRIES", 0)
# With object storage (EVALHUB_S3_BUCKET): how often a training's worker copies its new
# metrics, samples and checkpoints to the artifacts storage (a retry on another worker
# continues from the newest copied checkpoint), and where a worker keeps the model weights
# it fetched from there, by content hash (docs/deployment.md).
EVALHUB_JOB_UPLOAD_SECONDS = env_int("EVALHUB_JOB_UPLOAD_SECONDS", 30)
EVALHUB_WEIGHTS_CACHE_DIR = Path(
    env_str("EVALHUB_WEIGHTS_CACHE_DIR", str(VAR_DIR / "weights-cache"))
).resolve()

# ---------------------------------------------------------------- REST API

# A JSON body's nesting is bounded like a JSONL line's (EVALHUB_MAX_JSON_DEPTH, with the
# import limits above; evalhub.api_parsers); its size by DATA_UPLOAD_MAX_MEMORY_SIZE.

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "evalhub.accounts.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON in and out, and errors in one shape (docs/annotation-api.md, "Errors"). No
    # form parsing (a form field read by a JSONField is decoded with no bound) and no
    # browsable pages (they carry inline script): /api/docs/ is the page for people.
    "DEFAULT_PARSER_CLASSES": ["evalhub.api_parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["evalhub.api_errors.APIJSONRenderer"],
    "EXCEPTION_HANDLER": "evalhub.api_errors.api_exception_handler",
    # Rates per scope (evalhub.api_throttles); `off` lifts one. Without DEBUG they default
    # to these; with DEBUG (development, the test suite, whose users share ids and minutes
    # across tests) to none, unless set.
    "DEFAULT_THROTTLE_CLASSES": [
        "evalhub.api_throttles.AnnotatorRateThrottle",
        "evalhub.api_throttles.ResearcherRateThrottle",
        "evalhub.api_throttles.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "annotator": env_rate("API_RATE_ANNOTATOR", None if DEBUG else "3000/min"),
        "researcher": env_rate("API_RATE_RESEARCHER", None if DEBUG else "240/min"),
        "anon": env_rate("API_RATE_ANONYMOUS", None if DEBUG else "60/min"),
    },
    "NUM_PROXIES": PROXY_COUNT,
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
    # The schema and its page are for signed-in users only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "evalhub.api_errors.schema_error_responses",
    ],
    # Swagger UI and Redoc from this site's static files (drf-spectacular-sidecar), as the
    # CSP wants (evalhub.api_docs).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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
# (`celery -A evalhub worker -Q gpu`); one long job per worker process at a time. Image
# imports and judgment exports go to the `cpu` queue (evalhub.jobs.queueing.job_route).
# Every other task (the reaper, health checks) goes to the default queue, `celery`.
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
