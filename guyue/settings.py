"""Settings for 古月今话: one module, driven by the environment (see README for every variable)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from guyue.lib import redisconf, storageconf
from guyue.lib.env import env_bool, env_float, env_int, env_list, env_str, load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set (make run writes one into .env)")
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is not set (make run writes one into .env)")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",  # first, so that runserver serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "encrypted_model_fields",
    "accounts",
    "personas",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages compress to about a fifth (daphne sends them as they are). Django's GZipMiddleware pads each
    # response with random bytes against BREACH, and CSRF tokens are masked per response too.
    "django.middleware.gzip.GZipMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "guyue.urls"
ASGI_APPLICATION = "guyue.asgi.application"
WSGI_APPLICATION = None

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
    },
]

# --- Data -------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_POOL", True):
    # Under ASGI every database_sync_to_async call would open and close its own PostgreSQL connection
    # (persistent connections are not safe there); psycopg's pool keeps a few open per process instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool and persistent connections exclude each other
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": env_int("DB_POOL_MAX", 8), "timeout": 20, "max_idle": 300,
    }  # fmt: skip
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the site read while the image worker writes; IMMEDIATE avoids lock-upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = redisconf.channel_layers(REDIS_URL)
    CACHES = redisconf.caches(REDIS_URL)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Processes (manage.py serve; docs/deploy.md) --------------------------------------------
# Daphne processes `manage.py serve` runs on one shared socket; more than one needs REDIS_URL.
WEB_PROCESSES = env_int("WEB_PROCESSES", os.cpu_count() or 1)

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
# With one machine and no proxy the site serves media itself; behind nginx, turn this off.
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)
# Generated images, video, audio and uploads: the local disk, or an S3-compatible bucket when
# MEDIA_S3_BUCKET is set (docs/storage.md). Read through env_str so the keys can come from NAME_FILE.
STORAGES = {
    "default": storageconf.default_storage({name: env_str(name) for name in storageconf.VARIABLES}),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Accounts ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "accounts.validators.ChineseMinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "personas:gallery"
LOGOUT_REDIRECT_URL = "personas:gallery"
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
# Failures from one IP under any user names before the IP itself is locked for LOGIN_LOCKOUT_SECONDS.
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 30)
SIGNUP_LIMIT_PER_HOUR = env_int("SIGNUP_LIMIT_PER_HOUR", 10)
# Only behind a proxy that sets it: otherwise any client could pick its own throttle key.
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)

# --- Conversation limits ---------------------------------------------------------------------
MAX_MESSAGE_CHARS = env_int("MAX_MESSAGE_CHARS", 4000)
# A salon (雅集, docs/salon.md): the most figures' replies one user message may start.
SALON_MAX_TURNS = env_int("SALON_MAX_TURNS", 4)
SEND_LIMIT_PER_MINUTE = env_int("SEND_LIMIT_PER_MINUTE", 20)
# A streaming reply's text is saved this often, so a crash loses at most about this much of it;
# a `streaming` row not stamped for REPLY_LEASE_SECONDS lost its process (docs/websocket.md).
REPLY_CHECKPOINT_SECONDS = env_float("REPLY_CHECKPOINT_SECONDS", 1.0)
REPLY_LEASE_SECONDS = env_float("REPLY_LEASE_SECONDS", 10.0)

# --- Providers --------------------------------------------------------------------------------
DASHSCOPE_REGIONS = {
    "beijing": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "singapore": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
}
OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
PROVIDER_CONNECT_TIMEOUT = float(env_int("PROVIDER_CONNECT_TIMEOUT", 5))
PROVIDER_FIRST_BYTE_TIMEOUT = float(env_int("PROVIDER_FIRST_BYTE_TIMEOUT", 60))
PROVIDER_FIRST_CONTENT_TIMEOUT = float(env_int("PROVIDER_FIRST_CONTENT_TIMEOUT", 120))
PROVIDER_IDLE_TIMEOUT = float(env_int("PROVIDER_IDLE_TIMEOUT", 90))
PROVIDER_TOTAL_TIMEOUT = float(env_int("PROVIDER_TOTAL_TIMEOUT", 600))
# A short model call gives a second opinion on messages with a risk signal (one call each, run beside
# the reply; its text is held until the judge clears it). A judge with no answer in time is ignored.
GUARD_MODEL_JUDGE = env_bool("GUARD_MODEL_JUDGE", True)
GUARD_JUDGE_TIMEOUT = env_float("GUARD_JUDGE_TIMEOUT", 5.0)
# Characters of a streamed reply held back so that a persona break is caught before any of it shows.
# The canary and copied instructions are tracked exactly whatever this is; the cost is first-text delay.
OUTPUT_GUARD_HOLDBACK = env_int("OUTPUT_GUARD_HOLDBACK", 24)
# A request the guard steered (off-role, invented history): this many characters pass the output checks
# before any is shown (docs/guard.md, Release).
OUTPUT_GUARD_STEERED_HOLD = env_int("OUTPUT_GUARD_STEERED_HOLD", 100)
PROMPT_TOKEN_BUDGET = env_int("PROMPT_TOKEN_BUDGET", 24000)  # the model's context we may fill, reply included
# The most one request's prompt carries: a recent window, the rolling summary and recall; what is older
# lives in the summary (docs/prompting.md, "The figure: turn 300"). The cost of every request.
PROMPT_REQUEST_TOKENS = env_int("PROMPT_REQUEST_TOKENS", 8000)
# Automatic memory extraction (docs/memory.md): site-wide switch (each user can also turn it off),
# and whether leaving a conversation with new messages runs it.
MEMORY_EXTRACTION = env_bool("MEMORY_EXTRACTION", True)
MEMORY_EXTRACT_ON_LEAVE = env_bool("MEMORY_EXTRACT_ON_LEAVE", True)
# Background model work (summaries, memory extraction, the callback greeting) runs as jobs in the
# worker process, never inside daphne (docs/jobs.md).
JOB_WORKER_CONCURRENCY = env_int("JOB_WORKER_CONCURRENCY", 8)  # jobs one worker runs at once
JOB_LEASE_SECONDS = env_float("JOB_LEASE_SECONDS", 60.0)  # a running job not renewed this long lost its worker
JOB_WORKER_IDLE_SECONDS = env_float("JOB_WORKER_IDLE_SECONDS", 1.0)  # longest idle sleep between queue checks
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)  # claims before a job that keeps losing its worker fails
JOB_KEEP_DAYS = env_float("JOB_KEEP_DAYS", 7.0)  # ended jobs are deleted after this long
REPLY_MAX_TOKENS = env_int("REPLY_MAX_TOKENS", 2048)
KEYCHECK_TIMEOUT = float(env_int("KEYCHECK_TIMEOUT", 10))
# 历史知识库: "auto" re-ranks the entries through the connection's reranker when it offers one (its
# rerank model is set), "off" keeps the local bigram ranking (docs/tools.md, docs/BENCHMARKS.md).
KNOWLEDGE_RERANK = env_str("KNOWLEDGE_RERANK", "auto")
if KNOWLEDGE_RERANK not in ("auto", "off"):
    raise ImproperlyConfigured("KNOWLEDGE_RERANK must be auto or off")
KNOWLEDGE_RERANK_TIMEOUT = env_float("KNOWLEDGE_RERANK_TIMEOUT", 5.0)  # seconds; past it the local order is used
KEYCHECK_LIMIT_PER_10_MINUTES = env_int("KEYCHECK_LIMIT_PER_10_MINUTES", 20)
# host or host:port entries a *user's* base URL may use even though they resolve to private
# addresses (guyue/lib/netguard.py; those calls ignore HTTP(S)_PROXY).
USER_BASE_URL_ALLOWED_HOSTS = env_list("USER_BASE_URL_ALLOWED_HOSTS", [])

# --- 朗读 (docs/voice.md) ---------------------------------------------------------------------
SPEECH_TIMEOUT = env_float("SPEECH_TIMEOUT", 30.0)  # one sentence's call to /audio/speech
SPEECH_WAIT_SECONDS = env_float("SPEECH_WAIT_SECONDS", 20.0)  # a request waits this long for its sentence to end
SPEECH_LIMIT_PER_MINUTE = env_int("SPEECH_LIMIT_PER_MINUTE", 120)  # sentences read (calls out) per user

# --- Media: pictures, edits, video, music, Midjourney (docs/media.md) -------------------------
IMAGE_SIZE = env_str("IMAGE_SIZE", "1024*1024")  # W*H; each side 512-1440 for wan2.2-t2i-flash
IMAGE_PROMPT_MAX_CHARS = env_int("IMAGE_PROMPT_MAX_CHARS", 300)  # wan2.2 truncates prompts past 500
IMAGE_LIMIT_PER_HOUR = env_int("IMAGE_LIMIT_PER_HOUR", 30)
IMAGE_POLL_INTERVAL = env_float("IMAGE_POLL_INTERVAL", 2.0)  # first wait between task polls
IMAGE_POLL_MAX_INTERVAL = env_float("IMAGE_POLL_MAX_INTERVAL", 10.0)  # the backoff stops growing here
IMAGE_POLL_DEADLINE = env_int("IMAGE_POLL_DEADLINE", 180)  # seconds of polling before a job times out
IMAGE_REQUEST_TIMEOUT = env_int("IMAGE_REQUEST_TIMEOUT", 180)  # synchronous image calls take 10-60 s or more
# Task submissions a second per provider account, shared by all workers (docs/submit-limits.md); DashScope allows 2.
IMAGE_SUBMITS_PER_SECOND = env_int("IMAGE_SUBMITS_PER_SECOND", 2)
IMAGE_WORKER_CONCURRENCY = env_int("IMAGE_WORKER_CONCURRENCY", 2)  # jobs one worker process runs at once
IMAGE_WORKER_IDLE_SECONDS = env_float("IMAGE_WORKER_IDLE_SECONDS", 1.0)  # longest idle sleep between queue checks
IMAGE_WORKER_STALE_SECONDS = env_int("IMAGE_WORKER_STALE_SECONDS", 30)  # a claim without heartbeat this long is taken over
# Hosts DashScope images may be downloaded from ("." prefix = the domain and its subdomains).
# Every download must reach a public address, except from an entry naming one host exactly.
IMAGE_DOWNLOAD_ALLOWED_HOSTS = env_list("IMAGE_DOWNLOAD_ALLOWED_HOSTS", [".aliyuncs.com"])
IMAGE_MAX_BYTES = env_int("IMAGE_MAX_BYTES", 20 * 1024 * 1024)
VIDEO_MAX_BYTES = env_int("VIDEO_MAX_BYTES", 100 * 1024 * 1024)
AUDIO_MAX_BYTES = env_int("AUDIO_MAX_BYTES", 30 * 1024 * 1024)
# Seconds of polling from the create call: video and music take minutes, Midjourney a minute or two.
VIDEO_POLL_DEADLINE = env_int("VIDEO_POLL_DEADLINE", 900)
MUSIC_POLL_DEADLINE = env_int("MUSIC_POLL_DEADLINE", 600)
MIDJOURNEY_POLL_DEADLINE = env_int("MIDJOURNEY_POLL_DEADLINE", 600)
VIDEO_DURATIONS = (5, 10)  # seconds a clip may last (the page's choices)
# Yuan per million video tokens, to show a price beside the token estimate; unset shows tokens only.
VIDEO_YUAN_PER_MILLION_TOKENS = env_float("VIDEO_YUAN_PER_MILLION_TOKENS", 0.0) or None
MUSIC_TAGS_MAX_CHARS = env_int("MUSIC_TAGS_MAX_CHARS", 60)
MUSIC_LYRICS_MAX_CHARS = env_int("MUSIC_LYRICS_MAX_CHARS", 1200)

# --- Voice input (docs/voice-input.md) --------------------------------------------------------
# Keep DICTATION_MAX_BYTES at or under FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): Django's ASGI handler
# holds a request body that size in memory and spools a larger one to an (unlinked) temporary file.
DICTATION_MAX_BYTES = env_int("DICTATION_MAX_BYTES", 2 * 1024 * 1024)
DICTATION_MAX_SECONDS = env_int("DICTATION_MAX_SECONDS", 60)
DICTATION_LIMIT_PER_MINUTE = env_int("DICTATION_LIMIT_PER_MINUTE", 10)
DICTATION_TIMEOUT = float(env_int("DICTATION_TIMEOUT", 60))  # seconds for the upstream to answer

# --- Locale -----------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文")]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
# Our own catalogue first: the few admin strings Django's zh-hans catalogue leaves in English.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Security ---------------------------------------------------------------------------------
SECURE_HTTPS = env_bool("SECURE_HTTPS", False)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("TRUST_PROXY_HEADERS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
# Everything comes from this origin, and no inline script, inline style or eval runs anywhere
# (htmx's eval is off in base.html); 'self' in connect-src also covers the same-origin websocket.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "guyue.lib.redact.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
