"""Settings for every environment, read from the environment once (django-environ).

The same module serves the embedded default (`make run`: SQLite and a broker that needs no
server), the tests (PostgreSQL and Redis on localhost) and production (docker-compose.yml):
only the environment differs.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Runtime files of the embedded default: the SQLite database, the filesystem broker, media.
VAR_DIR = env.path("VAR_DIR", default=BASE_DIR / "var")

DEBUG = env.bool("DEBUG", default=False)

# Production has no default secret: the web server refuses to start without one (config/wsgi.py,
# config/asgi.py) and `check --deploy` fails. Management commands that sign nothing
# (makemigrations, check) still run, on a throwaway key. Development (DEBUG=true) gets a fixed,
# obviously insecure key so `make run` needs no setup.
SECRET_KEY = env.str("SECRET_KEY", default="")
SECRET_KEY_MISSING = not SECRET_KEY and not DEBUG
if DEBUG and not SECRET_KEY:
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105
elif SECRET_KEY_MISSING:
    SECRET_KEY = "django-insecure-unset-" + secrets.token_urlsafe(32)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "template_partials",
    "feedback",
    "rewardmodels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "feedback.core.middleware.ChunkedBodyMiddleware",
    "feedback.core.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "feedback.core.middleware.RejectNulCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- database ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR('db.sqlite3')}"),
}
# Connections are kept for five minutes: opening one costs PostgreSQL a process and an
# authentication (milliseconds, in the request that pays for it).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=300)
# A kept connection is checked before each request uses it; on PostgreSQL the check looks at
# the socket and asks the server only when something arrived there (feedback.core.postgresql).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "feedback.core.postgresql"
    # Fail fast when PostgreSQL is unreachable: the API answers 503 instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is used by a web server and a worker at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
# A read-only replica (optional) takes the long scans: dataset streams, export snapshots and the
# rows training reads (feedback.core.databases.heavy_reads); everything else uses the primary.
if replica_url := env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {
        **env.db_url_config(replica_url),
        "ENGINE": "feedback.core.postgresql",
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        # A write sent there by mistake fails at once, even on a server that would accept it.
        "OPTIONS": {"connect_timeout": 3, "options": "-c default_transaction_read_only=on"},
        # The test run's replica is the test database itself.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["feedback.core.databases.PrimaryOnlyMigrations"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "feedback:project_list"
LOGOUT_REDIRECT_URL = "login"

# --- files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR("staticfiles"))
# WhiteNoise serves static files from the web process. Production serves the hashed files
# that `collectstatic` wrote (the image does it at build time); development and the tests
# serve them straight from the source folders.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
# The files the platform writes (export snapshots, reward-model artifacts) go through the
# default storage (feedback/core/storage.py). AWS_STORAGE_BUCKET_NAME is the switch: unset, they
# are kept under MEDIA_ROOT on the local filesystem, which every process must then share; set,
# they are objects in that S3-compatible bucket (AWS S3, MinIO, Ceph...) and the web server and
# the workers may run on separate hosts. boto3 reads the credentials, AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY, from the environment (or its other sources: an instance role...).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR("media"))
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
_default_storage: dict[str, object] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "feedback.core.storage.ObjectStorage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            # "path" for stores that don't serve buckets as subdomains (MinIO by default).
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            # Signed download URLs: version 4, the only one newer AWS regions accept.
            "signature_version": "s3v4",
            # As on the filesystem, a name already taken gets a suffix: a retried job never
            # overwrites (nor, cleaning up, deletes) the file of another attempt.
            "file_overwrite": False,
        },
    }
# Downloads: a redirect to a signed URL of the object that expires after this many seconds, so
# the bytes don't pass through the web server (the store must then be reachable by clients at
# AWS_S3_ENDPOINT_URL); otherwise, and always on the filesystem, the web server streams them.
STORAGE_DOWNLOAD_REDIRECT = env.bool("STORAGE_DOWNLOAD_REDIRECT", default=False)
STORAGE_DOWNLOAD_URL_SECONDS = env.int("STORAGE_DOWNLOAD_URL_SECONDS", default=300)
# This host's copies of stored artifacts, for loading models to score with; safe to delete.
STORAGE_CACHE_DIR = env.path("STORAGE_CACHE_DIR", default=VAR_DIR("cache"))
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- security (production values unless DEBUG) ------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# The health check is answered over plain HTTP too: the container's own probe has no TLS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# X-Forwarded-Proto says whether the client spoke HTTPS to the proxy. Anyone can send it, so it
# is believed only when a TLS proxy that sets it is the only way to reach the app.
TRUST_X_FORWARDED_PROTO = env.bool("TRUST_X_FORWARDED_PROTO", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUST_X_FORWARDED_PROTO else None
# HSTS is only sent over HTTPS; a year with preload is what `check --deploy` asks for.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response (django-csp). Scripts run only from the site's own
# files: no inline script, no event-handler attribute, no `javascript:` URL and no eval, so markup
# injected into a page can't run even if it got past escaping. htmx keeps working because the
# base template turns off the two things it would otherwise need an exception for (its injected
# indicator <style> and eval of hx-on / js: expressions). Styles, too, come only from files; the
# pages have no style attributes. Images from other hosts are refused except in answers of a
# project that shows them (feedback.core.csp.allow_remote_images). Nothing may frame the site.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    },
}
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# --- login and API-key throttling ----------------------------------------------------------
# django-axes: 10 failed logins (site or admin) for one username from any addresses, or from one
# address for any usernames, lock that username or address out for 15 minutes, even against the
# right password. Failures are kept in the database, so every process sees them. A success does
# not wipe them: it would let someone with an account of their own reset their address's count.
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes requires
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out attempts; logs no one in
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_LOCKOUT_CALLABLE = "feedback.views.accounts.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "feedback.core.throttling.client_address"
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login
# The client address is REMOTE_ADDR. Behind N reverse proxies that append to X-Forwarded-For,
# set TRUSTED_PROXY_COUNT=N; setting it without such proxies lets clients pick their address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Failed API-key authentications: at most this many per client address in each window; after
# that the address gets 429 until the window ends. Counted in the cache below.
API_AUTH_FAILURE_LIMIT = env.int("API_AUTH_FAILURE_LIMIT", default=20)
API_AUTH_FAILURE_WINDOW_SECONDS = env.int("API_AUTH_FAILURE_WINDOW_SECONDS", default=300)
# A web process keeps the API keys it authenticated (with their projects) this long, so a busy
# client costs one key lookup per window instead of one per request. A revoked key, or a
# project's changed settings, reach every web process at most this late; 0 looks up every time.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)
# Feedback (reactions, critiques...) committed without waiting for the disk: a reaction's
# latency no longer includes an fsync, and a crash of PostgreSQL loses at most its last
# moment of feedback (about 0.6 s by default), never consistency. Off: every feedback write is
# durable when the client hears 201.
FEEDBACK_ASYNC_COMMIT = env.bool("FEEDBACK_ASYNC_COMMIT", default=False)
# Events the widget may send from one client address a minute, whoever the viewers are.
WIDGET_EVENTS_PER_ADDRESS_PER_MINUTE = env.int("WIDGET_EVENTS_PER_ADDRESS_PER_MINUTE", default=300)
# Local memory by default (the embedded default runs one web process). Several web processes
# (gunicorn in compose) need a shared cache, e.g. CACHE_URL=redis://redis:6379/1, or each
# counts failures on its own. Keep it off the broker's Redis database.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# Outbound requests (pipeline connectors, C3PO generators) go to addresses that users type in;
# loopback, private, link-local, multicast, reserved and unspecified addresses are refused
# unless the host is listed here, as it appears in the URL (feedback/core/outbound.py).
# Development lists the local ones, so a local vLLM or Ollama works; production lists none.
OUTBOUND_ALLOWED_HOSTS = [
    host.strip()
    for host in env.list(
        "OUTBOUND_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else []
    )
    if host.strip()
]

# Secrets the platform must send on (generator API keys, connector secrets) are stored encrypted
# (Fernet). The key is FIELD_ENCRYPTION_KEY (`Fernet.generate_key()`), or one derived from
# SECRET_KEY when unset. To rotate, put the new key in FIELD_ENCRYPTION_KEY and the old ones in
# FIELD_ENCRYPTION_OLD_KEYS (comma-separated): they still decrypt, new writes use the new key,
# and `manage.py secrets_reencrypt` rewrites every stored secret with it.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
FIELD_ENCRYPTION_OLD_KEYS = [
    key.strip() for key in env.list("FIELD_ENCRYPTION_OLD_KEYS", default=[]) if key.strip()
]

# --- REST API ------------------------------------------------------------------------------
# Bodies above this size are refused with a JSON 413 before they are parsed.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=10 * 1024 * 1024)
API_MAX_BATCH = 1000
API_RETRY_AFTER_SECONDS = 5

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "feedback.core.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["feedback.core.api.OrjsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["feedback.core.api.OrjsonRenderer"],
    "EXCEPTION_HANDLER": "feedback.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Content type is chosen by the Accept header only, never by a ?format= parameter.
    "URL_FORMAT_OVERRIDE": None,
    # Output serializers hand date-times to the orjson renderer as they are, which writes them
    # in RFC 3339 with the offset (2026-01-31T09:30:00.123456+00:00), as the API always has.
    "DATETIME_FORMAT": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Feedback platform API",
    "DESCRIPTION": (
        "Ingest answers with their traces, record feedback, export datasets and train reward "
        "models. Machine clients send `Authorization: Bearer <api key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ResultStatusEnum": ["created", "duplicate", "error"],
        # Exports and training runs: one vocabulary for every job (feedback.core.jobs.JobStatus).
        "JobStatusEnum": ["queued", "running", "succeeded", "failed", "cancelled"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "feedback.schemas.require_request_bodies",
        "feedback.schemas.document_auth_throttling",
    ],
}

# --- Celery --------------------------------------------------------------------------------
# Unset: the filesystem transport under var/broker, which needs no server (embedded default).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir, _control_dir = VAR_DIR("broker", "queue"), VAR_DIR("broker", "control")
    for _folder in (_queue_dir, _control_dir):
        Path(_folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": _queue_dir,
        "data_folder_out": _queue_dir,
        "control_folder": _control_dir,
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A running job (export, training run, C3PO build, re-run) writes its heartbeat this often. A
# training run or C3PO build silent for TRAINING_STALE_SECONDS has lost its worker, and the
# sweeper queues it again or fails it (feedback.core.jobs).
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=15.0)
# OTLP spans are kept until their trace is this old (newest span): a trace's late spans join its
# answer within it, and a replay within it changes nothing.
OTEL_SPAN_RETENTION_DAYS = env.float("OTEL_SPAN_RETENTION_DAYS", default=7.0)
TRAINING_STALE_SECONDS = env.float("TRAINING_STALE_SECONDS", default=90.0)
# Finished webhook deliveries (the endpoints' delivery logs) are kept this long.
WEBHOOK_DELIVERY_RETENTION_DAYS = env.float("WEBHOOK_DELIVERY_RETENTION_DAYS", default=30.0)

CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "feedback.tasks.worker_heartbeat", "schedule": 30.0},
    "otel-spans-expire": {"task": "feedback.tasks.otel_spans_expire", "schedule": 3600.0},
    # Webhook deliveries whose retry is due; each emit wakes it at once, and a try failed with
    # its next due in 5 s wakes it then (feedback.services.webhooks.DISPATCH_EVERY).
    "webhook-deliveries-dispatch": {
        "task": "feedback.tasks.webhook_deliveries_dispatch",
        "schedule": 60.0,
    },
    "webhook-deliveries-expire": {
        "task": "feedback.tasks.webhook_deliveries_expire",
        "schedule": 3600.0,
    },
    **{
        f"{name}-sweep": {"task": "feedback.tasks.jobs_sweep", "schedule": every, "args": [kind]}
        for name, kind, every in (
            ("exports", "export", 120.0),
            ("reruns", "rerun", 60.0),
            ("training-runs", "training_run", 60.0),
            ("c3po-builds", "c3po_build", 60.0),
            ("webhook-deliveries", "webhook_delivery", 60.0),
            ("shadow-runs", "shadow_run", 60.0),
            ("judge-runs", "judge_run", 60.0),
        )
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
