"""Roomtone settings.

Configuration is environment variables only, read here through typed helpers. A
bad value raises ImproperlyConfigured naming the variable, so a typo in a deploy
fails at start-up rather than at the first request that needs the setting.
Unset, everything falls back to the embedded default: SQLite, in-memory channel
layer, jobs on a worker thread, files under var/.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a finite number, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "")
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL with scheme {' or '.join(schemes)}, got {parsed.scheme!r}"
        )
    return raw


DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env_str("ROOMTONE_VAR_DIR", str(BASE_DIR / "var")))
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    # Several machines must share one key (sessions, signed share links), so
    # a scale-out deployment has to set it.
    if env_bool("ROOMTONE_REQUIRE_SECRET_KEY", False) or os.environ.get("REDIS_URL"):
        raise ImproperlyConfigured("SECRET_KEY must be set when running scaled out")
    # Embedded default: a per-install key kept under var/, so sessions and share
    # links survive restarts without any configuration.
    _key_file = VAR_DIR / "secret_key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        from django.core.management.utils import get_random_secret_key

        _key_file.parent.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = get_random_secret_key()
        _key_file.write_text(SECRET_KEY)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_rq",
    "channels",
    "studio",
    "collab",
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

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    import dj_database_url

    # Under ASGI each HTTP request runs in a thread of its own, so Django
    # advises against persistent connections (CONN_MAX_AGE); PostgreSQL gets
    # psycopg's pool instead: a connection is taken from it and given back
    # around every database call, with no connect per call (0.8 ms of CPU and
    # a round trip each, measured: docs/benchmarks.md, co-editing). The
    # project sockets' database threads (ROOMTONE_EDIT_THREADS) each keep one
    # of the pool's connections, for an hour at a time
    # (studio.editing.on_writer_thread).
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    DATABASES["default"].setdefault("TEST", {})
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("ROOMTONE_DB_POOL_SIZE", 10, minimum=1),
            "timeout": 20,
        }
        # Checked on checkout: a connection the server dropped (restart, idle
        # kill) is replaced instead of failing one request.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "roomtone.sqlite3"),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (web requests, the job worker) write: wait for the lock
    # instead of failing, take it at BEGIN (no upgrade deadlocks), and let
    # readers proceed during writes. WAL with synchronous=NORMAL keeps every
    # committed transaction through a killed process; only a power cut can
    # lose the last few.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Long-lived threads (the consumers' database thread, the job worker)
    # keep their connection: opening one costs 0.5 ms of CPU, once per edit
    # otherwise. Under ASGI every HTTP request runs on a thread of its own,
    # so a request's connection is closed when it finishes
    # (studio.apps.close_request_connections); left to the thread's end it
    # would wait for the garbage collector.
    DATABASES["default"]["CONN_MAX_AGE"] = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads one render uses for its tracks (the output is the same for any
# number). 1 leaves the other cores to live jams and editing on a small box.
ROOMTONE_RENDER_THREADS = env_int("ROOMTONE_RENDER_THREADS", 1, minimum=1)

# PostgreSQL: database threads per server process for project sockets' edits;
# projects are spread over them by id, each project's on one thread (SQLite:
# one, it takes one writer at a time). collab.consumers.on_project_thread.
ROOMTONE_EDIT_THREADS = env_int("ROOMTONE_EDIT_THREADS", 3, minimum=1)
_pool = DATABASES["default"].get("OPTIONS", {}).get("pool")
if _pool and _pool["max_size"] < ROOMTONE_EDIT_THREADS + 2:
    # The edit threads keep theirs; requests, channels' database thread and
    # the job worker need some left.
    raise ImproperlyConfigured(
        f"ROOMTONE_DB_POOL_SIZE ({_pool['max_size']}) must be at least "
        f"ROOMTONE_EDIT_THREADS + 2 ({ROOMTONE_EDIT_THREADS + 2}): each edit thread keeps "
        "a connection"
    )
# PostgreSQL: whether an edit's commit waits for its log record to reach the
# disk (PostgreSQL's synchronous_commit, set for edit transactions only).
# "on" (the default): an acknowledged edit is on disk. "off": commits stop
# waiting for the disk, whose flushes on a shared VM stalled now and then
# for 100-360 ms and held every project's edits for as long
# (docs/benchmarks.md); an acknowledged edit still survives the crash of any
# Roomtone process, but a crash of PostgreSQL or of the machine loses the
# edits of the last 3 x wal_writer_delay (0.6 s by default), and if
# PostgreSQL restarts while Roomtone runs on, their revision numbers are
# given again to new edits: open pages disagree with the server until they
# reload.
ROOMTONE_EDIT_SYNCHRONOUS_COMMIT = env_choice(
    "ROOMTONE_EDIT_SYNCHRONOUS_COMMIT",
    "on",
    ("on", "off", "local", "remote_write", "remote_apply"),
)
# How long a Python thread may hold the GIL while another waits for it. The
# server's event loop (every socket's frames) shares the GIL with the database
# thread and job threads; at CPython's default of 5 ms a delivery waited up to
# 5 ms behind each slice of an edit's ORM work, and co-editing p99 at 200
# edits/s was 47-91 ms against 12-17 ms at 1 ms (docs/benchmarks.md).
ROOMTONE_GIL_SWITCH_MS = env_float("ROOMTONE_GIL_SWITCH_MS", 1.0, minimum=0.1)

# --- channel layer, jobs ------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # The pub/sub layer: measured far better at fan-out than the
            # list-based default, which dropped group messages under load.
            "BACKEND": "collab.redislayer.BatchingPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "collab.broadcast.FanoutInMemoryChannelLayer",
            # The defaults (100 queued messages per connection, group
            # membership dropped after 24 h) silently cut off a slow client or
            # a tab left open overnight; clients resync after a gap, but only
            # if they keep hearing the project at all.
            "CONFIG": {"capacity": 2000, "group_expiry": 10 * 365 * 86400},
        }
    }

TASKS: dict[str, dict[str, Any]]
TASK_BACKEND = env_str("TASK_BACKEND", "rq" if REDIS_URL else "thread")
if TASK_BACKEND == "thread":
    TASKS = {"default": {"BACKEND": "studio.taskbackend.ThreadBackend"}}
elif TASK_BACKEND == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
elif TASK_BACKEND == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("TASK_BACKEND=rq needs REDIS_URL")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.backend.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}
else:
    raise ImproperlyConfigured(
        f"TASK_BACKEND must be thread, immediate or rq, got {TASK_BACKEND!r}"
    )

# --- files --------------------------------------------------------------------
S3_BUCKET = env_str("S3_BUCKET")
S3_ENDPOINT_URL = env_url("S3_ENDPOINT_URL", ("http", "https"))
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing root
STATICFILES_DIRS = [("frontend", BASE_DIR / "frontend")]
if S3_BUCKET:
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": S3_ENDPOINT_URL or None,
                "region_name": env_str("S3_REGION") or None,
                "access_key": env_str("S3_ACCESS_KEY_ID") or None,
                "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
                "file_overwrite": False,
                "default_acl": None,
            },
        },
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
# Serve straight from the source folders too (no collectstatic needed on the
# embedded default); collectstatic output in STATIC_ROOT wins when present.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads: anything larger than this streams to a temp file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None
ROOMTONE_MAX_UPLOAD_MB = env_int("ROOMTONE_MAX_UPLOAD_MB", 1024, minimum=1)
ROOMTONE_MAX_UPLOAD_BYTES = ROOMTONE_MAX_UPLOAD_MB * 1024 * 1024
ROOMTONE_MAX_DURATION_S = env_float("ROOMTONE_MAX_DURATION_S", 3 * 3600.0, minimum=1.0)
ROOMTONE_SHARE_LINK_DAYS = env_int("ROOMTONE_SHARE_LINK_DAYS", 7, minimum=1)
ROOMTONE_DEMO_PASSWORD = env_str("ROOMTONE_DEMO_PASSWORD", "roomtone-demo")


# --- live jams (audio/jam, collab/jam.py) ---------------------------------------
def env_ice_servers(name: str) -> list[dict[str, Any]]:
    """A JSON list of RTCIceServer dicts: {"urls": "turn:host:3478", "username":
    ..., "credential": ...}. Empty by default: no STUN or TURN server, public or
    not, is ever contacted unless configured here."""
    import json

    raw = os.environ.get(name, "").strip()
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON list: {exc}") from None
    if not isinstance(value, list):
        raise ImproperlyConfigured(f"{name} must be a JSON list of ICE server objects")
    servers = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not set(entry) <= {"urls", "username", "credential"}:
            raise ImproperlyConfigured(
                f"{name}[{i}] must be an object with urls and optional username, credential"
            )
        urls = entry.get("urls")
        url_list = [urls] if isinstance(urls, str) else urls
        if (
            not isinstance(url_list, list)
            or not url_list
            or not all(
                isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
                for u in url_list
            )
        ):
            raise ImproperlyConfigured(f"{name}[{i}].urls must be stun:/turn: URLs")
        for key in ("username", "credential"):
            if key in entry and not isinstance(entry[key], str):
                raise ImproperlyConfigured(f"{name}[{i}].{key} must be a string")
        servers.append(
            {"urls": url_list, **{k: entry[k] for k in ("username", "credential") if k in entry}}
        )
    return servers


ROOMTONE_ICE_SERVERS = env_ice_servers("ROOMTONE_ICE_SERVERS")
# Where the jam server offers its media: "127.0.0.1" (the default, like the
# embedded server's bind address) keeps every packet on this machine; "*"
# offers every non-loopback interface; or list addresses.
ROOMTONE_JAM_HOST_ADDRESSES = env_list("ROOMTONE_JAM_HOST_ADDRESSES", ["127.0.0.1"])
if "*" in ROOMTONE_JAM_HOST_ADDRESSES and ROOMTONE_JAM_HOST_ADDRESSES != ["*"]:
    raise ImproperlyConfigured("ROOMTONE_JAM_HOST_ADDRESSES: use either * or a list of addresses")
for _address in ROOMTONE_JAM_HOST_ADDRESSES:
    if _address != "*":
        import ipaddress

        try:
            ipaddress.ip_address(_address)
        except ValueError:
            raise ImproperlyConfigured(
                f"ROOMTONE_JAM_HOST_ADDRESSES: {_address!r} is not an IP address"
            ) from None
ROOMTONE_JAM_MAX_PLAYERS = env_int("ROOMTONE_JAM_MAX_PLAYERS", 8, minimum=1)
ROOMTONE_JAM_ROOMS_PER_WORKER = env_int("ROOMTONE_JAM_ROOMS_PER_WORKER", 8, minimum=1)
# Redis keys of jam room claims and the worker list (several installs on one Redis).
ROOMTONE_JAM_KEY_PREFIX = env_str("ROOMTONE_JAM_KEY_PREFIX", "roomtone:jam:")
ROOMTONE_JAM_WORKERS = env_str("ROOMTONE_JAM_WORKERS", "embedded")
if ROOMTONE_JAM_WORKERS not in ("embedded", "channel"):
    raise ImproperlyConfigured(
        f"ROOMTONE_JAM_WORKERS must be embedded or channel, got {ROOMTONE_JAM_WORKERS!r}"
    )
if ROOMTONE_JAM_WORKERS == "channel" and not REDIS_URL:
    raise ImproperlyConfigured("ROOMTONE_JAM_WORKERS=channel needs REDIS_URL")

# --- auth, API ----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "studio.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Roomtone API",
    "DESCRIPTION": "Projects, members, share links and stems of a Roomtone studio.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
