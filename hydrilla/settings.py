"""Settings, read from the environment; every default works on one machine with no server."""

from pathlib import Path

import botocore.config
import corsheaders.defaults
import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from hydrilla.queues import (
    DELETE_EXPIRED_IDEMPOTENCY_KEYS,
    DELETE_UNUSED_UPLOADS,
    DELIVER_WEBHOOK,
    EXPIRE_JOBS,
    FORGET_WEBHOOK_EVENTS,
    MAKE_HEAVY_DOWNLOADS,
    PRIORITY_QUEUES,
    SWEEP_WEBHOOKS,
    CeleryQueue,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEV_SECRET_KEY = "dev-only-insecure-secret-key"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)  # refused in production: see below
DEBUG = env.bool("DJANGO_DEBUG", default=False)
LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=LOCAL_HOSTS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "storages",
    "accounts",
    "jobs",
    "idempotency",
    "generation",
    "webhooks",
]

MIDDLEWARE = [
    "hydrilla.monitoring.count_requests",
    "hydrilla.request_id.request_id_middleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "hydrilla.middleware.request_body_limit",
    "hydrilla.rate_limit.rate_limit_headers",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The admin's messages live in its session: the cookie store would sign a cookie on every request.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "hydrilla.urls"
WSGI_APPLICATION = "hydrilla.wsgi.application"
ASGI_APPLICATION = "hydrilla.asgi.application"
APPEND_SLASH = False

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

# --- Database ------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the workers share the file: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions queue writers instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so worker processes started by the tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Storage -------------------------------------------------------------------------------------
S3_BUCKET = env("S3_BUCKET", default="")
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

if S3_BUCKET:
    S3_PUBLIC_BASE_URL = env("S3_PUBLIC_BASE_URL", default="")
    _s3_options = {
        "bucket_name": S3_BUCKET,
        "region_name": env("S3_REGION", default="us-east-1"),
        "access_key": env("AWS_ACCESS_KEY_ID", default=None),
        "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
        "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
        "file_overwrite": False,
        # Without a public base URL the bucket stays private and every URL we hand out is signed;
        # URLs are built when a job is read, so a signature never goes stale in the database.
        "querystring_auth": not S3_PUBLIC_BASE_URL,
        "querystring_expire": env.int("S3_URL_EXPIRE_SECONDS", default=24 * 3600),
        # An unreachable endpoint must become a quick 503, not minutes of botocore retries.
        "client_config": botocore.config.Config(
            signature_version="s3v4",
            s3={"addressing_style": env("S3_ADDRESSING_STYLE", default="path")},
            connect_timeout=3,
            read_timeout=20,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    }
    if S3_PUBLIC_BASE_URL:
        _public = environ.urlparse(S3_PUBLIC_BASE_URL)
        _s3_options["custom_domain"] = (_public.netloc + _public.path).rstrip("/")
        _s3_options["url_protocol"] = f"{_public.scheme}:"
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options}
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
SERVE_MEDIA = not S3_BUCKET

# --- Web tier: server, cache, limits -------------------------------------------------------------
# How many server processes is the server's command line's (scripts/serve.sh: WEB_PROCESSES).
# Threads per process for synchronous views; waiting requests (streams, previews) hold none.
WEB_THREADS = env.int("WEB_THREADS", default=32)
# Longer than any client's poll cadence (the spec's frontend polls every 2 s); hydrilla.server
# gives it to each server process.
KEEP_ALIVE_SECONDS = env.int("KEEP_ALIVE_SECONDS", default=75)
# A request whose line and headers have not all arrived by then is answered 408 and closed.
REQUEST_HEADER_TIMEOUT_SECONDS = env.float("REQUEST_HEADER_TIMEOUT_SECONDS", default=10.0)
# Request line plus headers; larger is a 431 (a 414 for the line alone).
REQUEST_HEADER_MAX_BYTES = env.int("REQUEST_HEADER_MAX_BYTES", default=32 * 1024)
# A body is read in full, within this time, before a thread is given to its request.
REQUEST_BODY_TIMEOUT_SECONDS = env.float("REQUEST_BODY_TIMEOUT_SECONDS", default=30.0)

# Django's cache framework: throttle counters and the counts of open streams and waiting previews.
# Redis by URL in production (shared by every web process); a per-process memory cache otherwise.
CACHE_URL = env("CACHE_URL", default="")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"pool_class": "hydrilla.cache.SharedConnectionPool"},
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "hydrilla"}
    ),
    # What one process may keep for itself (users it has seen): never a network round trip.
    "process": {
        "BACKEND": "hydrilla.cache.ObjectMemoryCache",
        "LOCATION": "process",
        "OPTIONS": {"MAX_ENTRIES": 20000},
    },
}
# Proxies in front of the service whose X-Forwarded-For entries are trusted (compose's nginx: 1).
# 0: a caller is its socket's address, whatever headers it sends.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Per-caller limits (a caller is its Clerk user, or its IP address when anonymous); over a limit
# the answer is 429 {"error": ...} with Retry-After.
SUBMIT_RATE_USER = env("SUBMIT_RATE_USER", default="20/min")
SUBMIT_RATE_IP = env("SUBMIT_RATE_IP", default="30/min")
# API keys (servers) have limits of their own instead of the two above: submissions, and requests
# of any kind (polls included), per key.
SUBMIT_RATE_API_KEY = env("SUBMIT_RATE_API_KEY", default="60/min")
API_KEY_RATE = env("API_KEY_RATE", default="600/min")
# The generation half's submit endpoints, which the spec says no browser calls.
GENERATION_SUBMIT_RATE_ANON = env("GENERATION_SUBMIT_RATE_ANON", default="5/min")
GENERATION_API_REQUIRE_TOKEN = env.bool("GENERATION_API_REQUIRE_TOKEN", default=False)
MAX_WAITING_JOBS_PER_CALLER = env.int("MAX_WAITING_JOBS_PER_CALLER", default=10)
MAX_STREAMS_PER_CALLER = env.int("MAX_STREAMS_PER_CALLER", default=20)
MAX_WAITING_PREVIEWS_PER_CALLER = env.int("MAX_WAITING_PREVIEWS_PER_CALLER", default=4)
# Uploads that no job uses are deleted after this long (housekeeping on the default queue).
UNUSED_UPLOAD_MAX_AGE_SECONDS = env.int("UNUSED_UPLOAD_MAX_AGE_SECONDS", default=24 * 3600)
# Idempotency-Key on a POST that creates something: its answer is given again to retries for this
# long (then the key is forgotten, by housekeeping on the default queue). A retry that arrives
# while the first request is still handled waits this long for its answer, then gets 409.
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=10.0)

# --- Retention -----------------------------------------------------------------------------------
# How long each kind of job is kept after it ended, in seconds; unset, forever. An expired job goes
# as a user's delete does (row and files), in small batches (jobs.tasks.expire_jobs, hourly).
RETAIN_ANONYMOUS_JOBS_SECONDS = env.int("RETAIN_ANONYMOUS_JOBS_SECONDS", default=None)
# Previews (/text-to-image) that no register-job call ever put in a history.
RETAIN_UNREGISTERED_PREVIEWS_SECONDS = env.int("RETAIN_UNREGISTERED_PREVIEWS_SECONDS", default=None)
# Failed and cancelled jobs, with their inputs (uploaded image, cut-out, preview).
RETAIN_FAILED_JOBS_SECONDS = env.int("RETAIN_FAILED_JOBS_SECONDS", default=None)
# Completed jobs: their models and every other file.
RETAIN_FINISHED_JOBS_SECONDS = env.int("RETAIN_FINISHED_JOBS_SECONDS", default=None)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=100)

# --- Webhooks ------------------------------------------------------------------------------------
# Private and loopback receivers, and http:// ones, for development and tests only: otherwise a
# receiver must be https on a public address (outside DEBUG), checked at every attempt.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
# One attempt, connection to answer, ends within this.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# The waits before each retry of a failed delivery (Standard Webhooks' schedule: some 27 hours in
# all); after the last, the delivery is given up.
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS",
    cast=float,
    default=[5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600],
)
# An account endpoint with no successful delivery for this long is disabled (so is one that
# answers 410 Gone, at once); its owner sees why.
WEBHOOK_DISABLE_AFTER_SECONDS = env.int("WEBHOOK_DISABLE_AFTER_SECONDS", default=5 * 24 * 3600)
# At most one job.progress event per job this often.
WEBHOOK_PROGRESS_SECONDS = env.float("WEBHOOK_PROGRESS_SECONDS", default=5.0)
# After a user rotates their signing secret, the old one signs too for this long.
WEBHOOK_SECRET_ROTATION_SECONDS = env.int("WEBHOOK_SECRET_ROTATION_SECONDS", default=24 * 3600)
# How often the beat sends the sweep that publishes the deliveries due (the first retry's delay is
# only as exact as this).
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=5.0)
# A due delivery published this long ago that no worker took is published again (lost with the
# broker): a duplicate is dropped, attempts being claimed by a conditional UPDATE.
WEBHOOK_REPUBLISH_SECONDS = env.int("WEBHOOK_REPUBLISH_SECONDS", default=300)
# Events, with their deliveries' records, are kept this long once every delivery of them is over.
WEBHOOK_HISTORY_SECONDS = env.int("WEBHOOK_HISTORY_SECONDS", default=30 * 24 * 3600)
# This service's address as clients reach it (https://api.example.com): the base of the URLs in
# webhook payloads, which no request carries. Empty: local files' URLs stay paths.
SITE_URL = env("SITE_URL", default="").rstrip("/")

# --- HTTP ----------------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=["http://localhost:3000"])
CORS_ALLOW_CREDENTIALS = True
# What a browser may send and read beyond CORS's safe headers: retries, request ids, limits.
CORS_ALLOW_HEADERS = (*corsheaders.defaults.default_headers, "idempotency-key", "x-request-id")
CORS_EXPOSE_HEADERS = [
    "X-Request-ID",
    "Idempotent-Replayed",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
UPLOAD_MAX_BYTES = 10 * 1024 * 1024
# A little room above the image limit for the multipart envelope; larger bodies are refused unread.
REQUEST_BODY_MAX_BYTES = UPLOAD_MAX_BYTES + 64 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES

REST_FRAMEWORK = {
    # API keys first: a bearer token that is not one of ours (hyd_…) is left to Clerk.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.ClerkAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "hydrilla.parsers.JSONParser",
        "hydrilla.parsers.FormParser",
        "hydrilla.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["jobs.api.throttles.RequestsPerApiKey"],
    "EXCEPTION_HANDLER": "hydrilla.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "jobs.api.openapi.AutoSchema",
    # Rates: jobs/api/throttles.py reads the SUBMIT_RATE_* settings.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

# OpenAPI 3 schema of both halves at /api/schema/, browsable at /api/docs/ (Swagger UI, loaded
# from its CDN by the browser). Response shapes are described in jobs/api/openapi.py.
SPECTACULAR_SETTINGS = {
    "TITLE": "Hydrilla API",
    "DESCRIPTION": (
        "Both halves of the Hydrilla 3D generation API, served from one job table: the job API "
        "under /api/3d (WAIT, RUN, DONE, FAIL) and the generation API at the root (pending, "
        'processing, completed, failed, cancelled). Errors are `{"error": "..."}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],  # the schema is public, whatever token a caller sends
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema enum per choice set of the job model, whichever serializer uses it.
    "ENUM_NAME_OVERRIDES": {
        "GenerateTypeEnum": "jobs.models.GenerateType",
        "PolygonTypeEnum": "jobs.models.PolygonType",
        "ApiKeyModeEnum": "accounts.models.ApiKeyMode",
        "WebhookEventEnum": "webhooks.models.EventType",
        "ErrorCodeEnum": "jobs.error_codes.ErrorCode",
    },
    "SCHEMA_PATH_PREFIX": "",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "jobs.api.openapi.document_authentication_outage",
        "jobs.api.openapi.document_integration_headers",
    ],
}

# --- Clerk ---------------------------------------------------------------------------------------
CLERK_JWT_KEY = env.str("CLERK_JWT_KEY", default="", multiline=True)
CLERK_SECRET_KEY = env("CLERK_SECRET_KEY", default="")
CLERK_JWKS_URL = env("CLERK_JWKS_URL", default="")
CLERK_API_URL = env("CLERK_API_URL", default="https://api.clerk.com").rstrip("/")
CLERK_AUTHORIZED_PARTIES = env.list("CLERK_AUTHORIZED_PARTIES", default=[])
# The instance's Frontend API URL, which Clerk writes in every token's ``iss``; checked when set.
CLERK_ISSUER = env("CLERK_ISSUER", default="").rstrip("/")
CLERK_LEEWAY_SECONDS = 5
CLERK_PROFILE_MAX_AGE_SECONDS = env.int("CLERK_PROFILE_MAX_AGE_SECONDS", default=3600)

# --- Deployment security -------------------------------------------------------------------------
# Production is any host name beyond this machine's with debug off: there, the settings that
# keep strangers out are required, and the service refuses to start without them.
PRODUCTION = not DEBUG and any(host not in LOCAL_HOSTS for host in ALLOWED_HOSTS)
if PRODUCTION:
    _missing = [
        name
        for name, missing in (
            ("DJANGO_SECRET_KEY", SECRET_KEY == DEV_SECRET_KEY),
            ("CLERK_AUTHORIZED_PARTIES", not CLERK_AUTHORIZED_PARTIES),
        )
        if missing
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"ALLOWED_HOSTS serves {', '.join(ALLOWED_HOSTS)}: "
            f"set {' and '.join(_missing)} (see README, Security)"
        )
# TLS is usually ended by a proxy: it must set X-Forwarded-Proto, and SECURE_PROXY_SSL_HEADER
# says so ("HTTP_X_FORWARDED_PROTO,https"). Only the admin uses Django's cookies.
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)

# --- Jobs on the workers -------------------------------------------------------------------------
# The embedded broker's folder (CELERY_BROKER_URL=filesystem://).
EMBEDDED_BROKER_DIR = Path(env("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
# A stage of a job still running after JOB_TIME_LIMIT_SECONDS stops at its next step and fails
# with TIMEOUT; Celery kills it outright a little later if a single step hangs.
JOB_TIME_LIMIT_SECONDS = env.int("JOB_TIME_LIMIT_SECONDS", default=900)
JOB_HARD_TIME_LIMIT_SECONDS = JOB_TIME_LIMIT_SECONDS + 120
# How long a delivered, unacknowledged stage may stay with a worker before Redis hands it to
# another. It must exceed the longest stage, or a slow one would be delivered twice.
BROKER_VISIBILITY_TIMEOUT_SECONDS = env.int(
    "BROKER_VISIBILITY_TIMEOUT_SECONDS", default=2 * JOB_HARD_TIME_LIMIT_SECONDS
)

# A running job writes a heartbeat this often; one silent for ORPHAN_AFTER_SECONDS lost its worker.
HEARTBEAT_SECONDS = env.int("HEARTBEAT_SECONDS", default=10)
ORPHAN_AFTER_SECONDS = env.int("ORPHAN_AFTER_SECONDS", default=60)

# /text-to-image answers when the preview is ready, or 503 after this long (the preview still
# finishes and can be registered).
PREVIEW_WAIT_SECONDS = env.int("PREVIEW_WAIT_SECONDS", default=60)
# A request with an Idempotency-Key still unanswered after this long died with its process (no
# request runs longer than a preview's wait): the next retry takes its key over.
IDEMPOTENCY_ABANDONED_AFTER_SECONDS = env.int(
    "IDEMPOTENCY_ABANDONED_AFTER_SECONDS", default=PREVIEW_WAIT_SECONDS + 60
)

# --- Queue estimates -----------------------------------------------------------------------------
ESTIMATE_FALLBACK_SECONDS = {"3d": 130.0, "preview": 20.0, "remesh": 20.0}
ESTIMATE_SAMPLE_SIZE = 20

# --- Generation ----------------------------------------------------------------------------------
# Empty model settings mean "no real weights": the worker builds and uses tiny random models.
TEXT_TO_IMAGE_MODEL = env("TEXT_TO_IMAGE_MODEL", default="")
IMAGE_TO_3D_MODEL = env("IMAGE_TO_3D_MODEL", default="")
# Without weights a photo becomes its object with the weight-free silhouette backend (the tiny
# random Shap-E would make noise); with IMAGE_TO_3D_MODEL set, Shap-E.
IMAGE_TO_3D_BACKEND = env(
    "IMAGE_TO_3D_BACKEND", default="shap-e" if IMAGE_TO_3D_MODEL else "silhouette"
)
TINY_MODELS_DIR = Path(env("TINY_MODELS_DIR", default=str(VAR_DIR / "tiny-models")))
TORCH_DEVICE = env("TORCH_DEVICE", default="")
TORCH_DTYPE = env("TORCH_DTYPE", default="")
# Sampling overrides; unset, each model family uses the steps, guidance and size that suit it.
# IMAGE_TO_3D_STEPS and _GUIDANCE apply to the shap-e and hunyuan3d backends (silhouette samples
# nothing).
TEXT_TO_IMAGE_STEPS = env.int("TEXT_TO_IMAGE_STEPS", default=None)
TEXT_TO_IMAGE_GUIDANCE = env.float("TEXT_TO_IMAGE_GUIDANCE", default=None)
TEXT_TO_IMAGE_SIZE = env.int("TEXT_TO_IMAGE_SIZE", default=None)
IMAGE_TO_3D_STEPS = env.int("IMAGE_TO_3D_STEPS", default=None)
IMAGE_TO_3D_GUIDANCE = env.float("IMAGE_TO_3D_GUIDANCE", default=None)
# Marching-cubes resolution of the mesh decoder per axis (cost grows with its cube).
MESH_GRID_SIZE = env.int("MESH_GRID_SIZE", default=128)
# Quads when a polygonType quadrilateral job gives no faceCount (jobs.quads).
DEFAULT_QUAD_COUNT = env.int("DEFAULT_QUAD_COUNT", default=10_000)
# A U²-Net-family ONNX file (rembg's u2netp.onnx, u2net.onnx, ...) that cuts objects out of
# cluttered photos (generation.pipelines.segmentation); unset, only plain backgrounds are cut out.
CUT_OUT_MODEL = env("CUT_OUT_MODEL", default=None)
# 3D printing (jobs.printing): the printed height when none is asked for, and the thinnest wall.
PRINT_HEIGHT_MM = env.float("PRINT_HEIGHT_MM", default=100.0)
PRINT_MIN_WALL_MM = env.float("PRINT_MIN_WALL_MM", default=0.8)
# Models users bring (POST /api/3d/upload-mesh, jobs.mesh_uploads): refused above these.
UPLOAD_MESH_MAX_BYTES = env.int("UPLOAD_MESH_MAX_BYTES", default=50 * 1024 * 1024)
UPLOAD_MESH_MAX_VERTICES = env.int("UPLOAD_MESH_MAX_VERTICES", default=1_000_000)
UPLOAD_MESH_MAX_FACES = env.int("UPLOAD_MESH_MAX_FACES", default=2_000_000)
# Hunyuan3D-2 (IMAGE_TO_3D_BACKEND=hunyuan3d, requirements/hunyuan3d.txt); unset, hy3dgen's
# defaults.
HUNYUAN3D_SUBFOLDER = env("HUNYUAN3D_SUBFOLDER", default=None)
HUNYUAN3D_OCTREE_RESOLUTION = env.int("HUNYUAN3D_OCTREE_RESOLUTION", default=None)
HUNYUAN3D_NUM_CHUNKS = env.int("HUNYUAN3D_NUM_CHUNKS", default=None)
# Face budget of a job with no faceCount; unset, finish_mesh's own
# (pipelines.mesh.DEFAULT_FACE_COUNT).
DEFAULT_FACE_COUNT = env.int("DEFAULT_FACE_COUNT", default=None)
# Models a worker process loads when it starts rather than on its first job
# ("text-to-image", "image-to-3d"): a GPU worker's first job then pays no load time.
PRELOAD_MODELS = env.list("PRELOAD_MODELS", default=[])

# --- Textures, download formats, remeshing -------------------------------------------------------
# Side in texels of the base-colour texture baked onto every coloured model (a power of two).
TEXTURE_SIZE = env.int("TEXTURE_SIZE", default=1024)

# --- Logging -------------------------------------------------------------------------------------
# "json": one JSON object a line, with the job id, stage, attempt and request id where there is
# one (hydrilla.log_context), for a log store to search; "plain": a line of text.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is {LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Each line names the request it was written for (hydrilla.request_id), "-" for none; JSON
    # lines also the job, its stage and attempt (hydrilla.log_context).
    "filters": {
        "context": {"()": "hydrilla.log_context.ContextFilter"},
        "request_id": {"()": "hydrilla.request_id.RequestIdFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            # The context fields (hydrilla.log_context) come as extras, on the records that have
            # them.
            "fmt": ["asctime", "levelname", "name", "message"],
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# --- Metrics (hydrilla.metrics) --------------------------------------------------------------
# GET /metrics answers `Authorization: Bearer <METRICS_TOKEN>` only; empty, the endpoint is off.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# A worker on a host of its own serves its host's metrics on this port (same token); 0: none.
METRICS_PORT = env.int("METRICS_PORT", default=0)
# How often a GPU worker samples its GPU through NVML (utilisation, memory, busy share).
GPU_METRICS_SECONDS = env.float("GPU_METRICS_SECONDS", default=15.0)
# The scaling signal: GPU workers enough to run the current backlog within this time.
GPU_DRAIN_TARGET_SECONDS = env.float("GPU_DRAIN_TARGET_SECONDS", default=600.0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Delivery: no job stranded, every worker its own work ----------------------------------------
# How often each worker sweeps for orphaned jobs and for waiting jobs whose message the broker
# never confirmed (those are sent again once unconfirmed this long).
SWEEP_SECONDS = env.int("SWEEP_SECONDS", default=5)
# How long a worker that received a job keeps trying to reach the database before it hands the
# message back to the broker (which delivers it again): a job is never dropped for an outage.
DATABASE_WAIT_SECONDS = env.int("DATABASE_WAIT_SECONDS", default=30)
# The host's GPUs ("0,1,2,3"): a worker started without --concurrency runs one pool child per GPU,
# each pinned to its own. Empty: no pinning, CUDA's own default device.
GPU_DEVICES = env.list("GPU_DEVICES", default=[])


# --- Celery (celery_app reads every CELERY_ setting, as Celery's own option names) ---------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")


def broker_transport_options(broker_url: str) -> dict:
    if broker_url.startswith("filesystem://"):
        # The folders are made where the broker is first used (celery_app), not here.
        return {
            "data_folder_in": str(EMBEDDED_BROKER_DIR / "queue"),
            "data_folder_out": str(EMBEDDED_BROKER_DIR / "queue"),
            "processed_folder": str(EMBEDDED_BROKER_DIR / "processed"),
            "control_folder": str(EMBEDDED_BROKER_DIR / "control"),
            "store_processed": False,
            # kombu polls the folder for messages (every second by default): a job's stages
            # hand over through it, so each handoff waited up to that long.
            "polling_interval": 0.1,
        }
    if broker_url.startswith(("redis://", "rediss://")):
        # Redis redelivers an unacknowledged stage after this long: keep it above the longest one.
        # Its priorities are separate lists, served in order (hydrilla.queues.message_priority).
        return {
            "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS,
            "max_retries": 2,
            "priority_steps": [0, 1],
            "queue_order_strategy": "priority",
        }
    # RabbitMQ: confirm every publish, so "sent" means the broker has it.
    return {"confirm_publish": True, "max_retries": 2}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = CeleryQueue.DEFAULT
CELERY_TASK_QUEUES = [
    Queue(
        queue,
        routing_key=queue,
        queue_arguments={"x-max-priority": 1} if queue in PRIORITY_QUEUES else None,
    )
    for queue in CeleryQueue
]
# The stages' messages name their queue when sent (jobs.plan); housekeeping goes by route.
CELERY_TASK_ROUTES = {
    DELETE_UNUSED_UPLOADS: {"queue": CeleryQueue.DEFAULT},
    DELETE_EXPIRED_IDEMPOTENCY_KEYS: {"queue": CeleryQueue.DEFAULT},
    EXPIRE_JOBS: {"queue": CeleryQueue.DEFAULT},
    DELIVER_WEBHOOK: {"queue": CeleryQueue.WEBHOOKS},
    SWEEP_WEBHOOKS: {"queue": CeleryQueue.WEBHOOKS},
    FORGET_WEBHOOK_EVENTS: {"queue": CeleryQueue.WEBHOOKS},
    MAKE_HEAVY_DOWNLOADS: {"queue": CeleryQueue.CPU},
}
CELERY_BEAT_SCHEDULE = {
    "delete-unused-uploads": {"task": DELETE_UNUSED_UPLOADS, "schedule": 3600.0},
    "delete-expired-idempotency-keys": {
        "task": DELETE_EXPIRED_IDEMPOTENCY_KEYS,
        "schedule": 3600.0,
    },
    "expire-jobs": {"task": EXPIRE_JOBS, "schedule": 3600.0},
    # A sweep not taken by the next one's time is dropped: sweeps never pile up behind an outage.
    "sweep-webhooks": {
        "task": SWEEP_WEBHOOKS,
        "schedule": WEBHOOK_SWEEP_SECONDS,
        "options": {"expires": WEBHOOK_SWEEP_SECONDS},
    },
    "forget-webhook-events": {"task": FORGET_WEBHOOK_EVENTS, "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Fail fast when the broker is down, so the API can answer 503 instead of hanging.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
# A stage is acknowledged only when it ends, one at a time per process: a worker killed mid-stage
# leaves the message with the broker, which gives it to the next worker.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = JOB_HARD_TIME_LIMIT_SECONDS
CELERY_TASK_SOFT_TIME_LIMIT = JOB_HARD_TIME_LIMIT_SECONDS - 30
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
if GPU_DEVICES:
    # One pool child per GPU (generation.registry.pin_to_gpu); --concurrency still overrides it.
    CELERY_WORKER_CONCURRENCY = len(GPU_DEVICES)
