"""cdp-crm settings: one module, driven by the environment (see .env.example)."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Queue

from cdp_crm.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A failed CSRF check (a form left open past a login or logout) gets the branded page with a way
# back, not Django's bare "CSRF verification failed".
CSRF_FAILURE_VIEW = "cdp_crm.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "cdp_crm",
    "accounts",
    "events",
    "contacts",
    "pipeline",
    "identity",
    "mail",
    "traits",
    "scoring",
    "segments",
    "predictions",
    "privacy",
    # The top app (home, global search, demo data): the one that may read every other.
    "workspace",
]

MIDDLEWARE = [
    # First: a request is one unit of work for the read replica's "reads after a write go to the
    # primary" rule, so a write made by any middleware below counts (core/replica.py).
    "core.replica.ReplicaMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a login unless it is marked @login_not_required (login page, /healthz,
    # the ingestion API, the tracking script): a view someone forgets to protect stays protected.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The branded 404 under DEBUG too (Django's debug 404 lists every URL pattern); inert without.
    "cdp_crm.middleware.DebugNotFoundMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cdp_crm.urls"
# bench/ingest.py turns this on to route a bare view, the floor its figures are compared with.
BENCH_URLS = env_bool("CDP_BENCH_URLS", default=False)
WSGI_APPLICATION = "cdp_crm.wsgi.application"

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
                "workspace.context_processors.navigation",
            ],
        },
    },
]

# --- Database: PostgreSQL only (JSONB, arrays, SKIP LOCKED, trigram search are part of the design).
DATABASE_URL = env_str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/cdp_crm")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", default=60))
if _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
# Reused connections are checked before use, so a restarted Postgres costs one failed ping, not
# a failed request.
_db["CONN_HEALTH_CHECKS"] = True
_db.setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", default=5))
_db["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", default=f"test_{_db['NAME']}")}
DATABASES = {"default": _db}
# An optional streaming read replica of that database. Only code that opts in
# (core.replica.replica_reads: reports, CSV exports, segment previews) reads from it, and falls back
# to the primary inside transaction.atomic, after the request's own write, when the replica is down
# or lags; docs/scaling.md ("Read replica") has the rules. Parsed like DATABASE_URL.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    _replica = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=_db["CONN_MAX_AGE"])
    if _replica["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must point at PostgreSQL (postgres://...).")
    _replica["CONN_HEALTH_CHECKS"] = True
    # Short: while a replica does not answer, each process pays this once per check interval.
    _replica.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_REPLICA_CONNECT_TIMEOUT", default=2)
    )
    # Under tests the replica is a mirror of the test database, no second test database: the
    # suite points it at the primary (tests/conftest.py), and core.replica reads the primary when
    # the replica names the primary's own database. tests/replica starts a real streaming pair.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
# An opted-in read goes to the primary while the replica is further behind than this.
DATABASE_REPLICA_MAX_LAG_SECONDS = env_int("DATABASE_REPLICA_MAX_LAG_SECONDS", default=30)
# Each process checks the replica's health and lag at most this often, and keeps a "down" verdict
# this long (so requests do not each pay a connect timeout).
DATABASE_REPLICA_CHECK_SECONDS = env_int("DATABASE_REPLICA_CHECK_SECONDS", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", default="redis://127.0.0.1:6379/0")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files: vendored assets served by WhiteNoise, no Node toolchain at run time.
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production images run collectstatic and serve hashed, compressed files; a checkout serves
# straight from the source folders so `make run` needs no build step.
STATIC_MANIFEST = env_bool("DJANGO_STATIC_MANIFEST", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG

MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / ".devdata" / "media")))

# --- Security. One switch turns on everything HTTPS needs; each part can still be overridden.
HTTPS = env_bool("DJANGO_HTTPS", default=False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=HTTPS)
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    # Only behind a proxy that sets this header itself; otherwise clients could spoof HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is probed over plain HTTP by load balancers and compose health checks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (Django's own middleware, no extra package): scripts only from our own
# static files, so markup injected through tracked data cannot run even if escaping ever failed.
# Inline styles stay allowed (Bootstrap and htmx set style attributes); no inline scripts, no
# eval, no plugins, no framing, forms post only here. /v1/* and /js/cdp.js answer JSON and
# JavaScript to other sites, where a page policy means nothing.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_AGE", default=14 * 24 * 3600)

# --- REST API
# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is locked for AXES_COOLOFF_TIME (HTTP 429 and a page saying so); a right
# password resets the count. Keyed on the pair, so an attacker cannot lock a colleague out from
# elsewhere. The client address is REMOTE_ADDR unless DJANGO_BEHIND_PROXY says a proxy sets
# X-Forwarded-For (trusting that header otherwise would let anyone pick their address).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "cdp_crm.security.client_ip"

REST_FRAMEWORK = {
    # Token first: an unauthenticated API call gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # ASCII JSON (non-ASCII as \u escapes): an error message that quotes the client's input may hold
    # a lone surrogate ("\ud800" is valid JSON), which cannot be encoded as UTF-8 and made the
    # renderer fail with a 500.
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cdp-crm API",
    "DESCRIPTION": "CRM records, pipeline, identity and segments. Authenticate with "
    "`Authorization: Token <token>` or `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_schema.document_error_responses",
    ],
    # Several models have a `kind` field with its own choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "ActivityKindEnum": "pipeline.models.ActivityKind",
        "TaskKindEnum": "pipeline.models.TaskKind",
        "SegmentKindEnum": "segments.models.SegmentKind",
        "ErasureStatusEnum": "privacy.models.ErasureStatus",
        # Keeps the deal status enum under the name it had before another "status" field arrived.
        "StatusEnum": "pipeline.models.DealStatus",
        # A trait's kind beside the other "kind" fields (activities, tasks, segments).
        "TraitKindEnum": "traits.models.TraitKind",
    },
}

# --- Celery (Redis broker). Messages are wake-up calls; Postgres holds the record of work.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Tasks are idempotent, so ack after running: a killed worker's task is redelivered, not lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One reserved message per process: reserved messages are stuck until the visibility timeout when
# a worker dies, and long tasks must not sit in front of short ones.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", default=270)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", default=300)
# Redis redelivers an unacked message after this: it must exceed the longest task and any
# countdown, or a running task is handed to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# A late-ack task still running when the broker connection drops cannot be acked: stop it so the
# redelivered copy is the only one.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_MAX_TASKS_PER_CHILD = 1000
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 300_000  # KiB
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name) for name in ("default", "ingest", "identity", "segments")]
# Work is split by kind so each queue can get its own workers when it needs to scale.
CELERY_TASK_ROUTES = {
    # Draining the ingest queue IS the stitching worker (INGEST_PROCESSOR below): it scales with
    # the identity workers, while dedup expiry stays on the ingest queue.
    "events.tasks.ingest_drain": {"queue": "identity"},
    # Retention deletes in long, time-boxed runs: kept off the ingest queue's quick tasks.
    "events.tasks.events_retention_enforce": {"queue": "default"},
    # Partition DDL waits at most a couple of seconds for its lock: kept off the ingest queue too.
    "events.tasks.event_partitions_ensure": {"queue": "default"},
    "segments.tasks.segment_logs_prune": {"queue": "default"},
    "events.tasks.*": {"queue": "ingest"},
    "segments.tasks.*": {"queue": "segments"},
    # Training takes up to a minute at 100k contacts: on the default queue, off the realtime ones.
    "predictions.tasks.*": {"queue": "default"},
    # Mailbox syncs (a first import runs for minutes) and sends: off the realtime queues.
    "mail.tasks.*": {"queue": "default"},
}
MAIL_SYNC_INTERVAL_SECONDS = env_int("MAIL_SYNC_INTERVAL_SECONDS", default=120)
# One sync run imports at most this many messages (a first import continues in the next run) in
# FETCH batches of MAIL_SYNC_BATCH; a message over MAIL_SYNC_MESSAGE_MAX_BYTES keeps its headers only.
MAIL_SYNC_MAX_PER_RUN = env_int("MAIL_SYNC_MAX_PER_RUN", default=5000)
MAIL_SYNC_BATCH = env_int("MAIL_SYNC_BATCH", default=200)
MAIL_SYNC_MESSAGE_MAX_BYTES = env_int("MAIL_SYNC_MESSAGE_MAX_BYTES", default=50 * 1024 * 1024)
CELERY_BEAT_SCHEDULE = {
    # A canary through beat -> broker -> worker; /healthz reports its age. A worker that stopped
    # consuming after a Redis reconnect (a known Celery failure) shows up as a stale heartbeat.
    "heartbeat": {"task": "cdp_crm.tasks.heartbeat", "schedule": 30.0},
    # The sweeper: processes events whose on-commit wake-up was lost (Redis keeps nothing on disk).
    "ingest-sweep": {"task": "events.tasks.ingest_drain", "schedule": 30.0},
    "event-dedup-expire": {"task": "events.tasks.event_dedup_expire", "schedule": 3600.0},
    "events-retention": {"task": "events.tasks.events_retention_enforce", "schedule": 3600.0},
    # The event log's monthly partitions, three months ahead (events/services/partitions.py).
    "event-partitions-ensure": {"task": "events.tasks.event_partitions_ensure", "schedule": 3600.0},
    # CSV imports whose wake-up message or worker was lost resume from their last batch.
    "contact-import-sweep": {"task": "contacts.tasks.contact_import_sweep", "schedule": 60.0},
    # Task reminders: each run claims the tasks now within the lead time, so it must run at least
    # as often as the lead time is short; once a minute keeps reminders on time to the minute.
    "task-reminders": {"task": "pipeline.tasks.tasks_send_reminders", "schedule": 60.0},
    # Segments: the realtime sweeper picks up profile updates whose wake-up was lost; the refresh
    # tick recomputes stale and window-expired segments (stalest first, a few per tick); webhook
    # deliveries due for a retry go out.
    "segments-realtime-sweep": {"task": "segments.tasks.profile_updates_drain", "schedule": 15.0},
    "segments-refresh-due": {"task": "segments.tasks.segments_refresh_due", "schedule": 60.0},
    "segments-webhooks": {"task": "segments.tasks.webhook_deliveries_send", "schedule": 30.0},
    # Lead-score decay and time frames move scores by whole UTC days: hourly finds the new day.
    "scores-decay-refresh": {"task": "scoring.tasks.scores_decay_refresh", "schedule": 3600.0},
    # The segments' change log, size samples and webhook delivery log past their retention.
    "segment-logs-prune": {"task": "segments.tasks.segment_logs_prune", "schedule": 3600.0},
    # Predictive models: retrained a week after their last training (the hourly tick queues the due
    # ones), and every contact rescored hourly so new activity moves the scores.
    "predictions-retrain-due": {"task": "predictions.tasks.predictions_retrain_due", "schedule": 3600.0},
    "predictions-score": {"task": "predictions.tasks.predictions_score_all", "schedule": 3600.0},
    # Computed traits: values whose "last N days" window lost an event (windows move at UTC
    # midnight, so a value is at most this late); a nightly-ish full recompute as a safety net.
    "traits-windows-expire": {"task": "traits.tasks.traits_windows_expire", "schedule": 300.0},
    "traits-recompute": {"task": "traits.tasks.traits_recompute", "schedule": 86400.0},
    # Connected mailboxes: new mail every MAIL_SYNC_INTERVAL_SECONDS (HubSpot and Pipedrive poll
    # in minutes too; IMAP IDLE would hold a connection per mailbox).
    "mailboxes-sync": {"task": "mail.tasks.mailboxes_sync", "schedule": float(MAIL_SYNC_INTERVAL_SECONDS)},
    # Sends due (send later, retries after a temporary refusal, the cap's 24 h window).
    "mail-sends-due": {"task": "mail.tasks.sends_deliver_due", "schedule": 60.0},
}
# Called (no arguments) by the stitching worker after it commits ProfileUpdate rows: the segments
# app's throttled wake-up for realtime re-evaluation. Empty: nothing is woken (the sweeper runs).
PROFILE_UPDATE_HOOK = env_str("PROFILE_UPDATE_HOOK", default="segments.tasks.profile_updates_wake") or None
# A dynamic segment is recomputed in full when its last compute is older than this (and after
# midnight UTC when a condition has a time window, so windows expire).
SEGMENT_REFRESH_INTERVAL_SECONDS = env_int("SEGMENT_REFRESH_INTERVAL_SECONDS", default=900)
# One full recompute may not hold the database longer than this; a timeout counts as an error.
SEGMENT_STATEMENT_TIMEOUT_MS = env_int("SEGMENT_STATEMENT_TIMEOUT_MS", default=60_000)
# How long the segments' logs are kept (segments/services/logs.py): entries/exits, size-chart samples,
# finished webhook deliveries.
SEGMENT_CHANGE_LOG_DAYS = env_int("SEGMENT_CHANGE_LOG_DAYS", default=180)
SEGMENT_SIZE_SAMPLE_DAYS = env_int("SEGMENT_SIZE_SAMPLE_DAYS", default=90)
SEGMENT_WEBHOOK_LOG_DAYS = env_int("SEGMENT_WEBHOOK_LOG_DAYS", default=30)
# Webhook retries wait base, 2x base, 4x base... (8 attempts in all).
SEGMENT_WEBHOOK_RETRY_BASE_SECONDS = env_int("SEGMENT_WEBHOOK_RETRY_BASE_SECONDS", default=30)
# How long before a task's due time its assignee gets the reminder email.
TASK_REMINDER_LEAD_MINUTES = env_int("TASK_REMINDER_LEAD_MINUTES", default=15)
# What the ingest worker does with each claimed batch of event ids (a dotted path to a function
# taking event_ids=[...]): identity stitching. An empty INGEST_PROCESSOR env var only drains.
INGEST_PROCESSOR = env_str("INGEST_PROCESSOR", default="identity.services.stitching.events_process") or None
# Settings hook: the SQL expression of a stored event's queue slice (events.services.queue): by the
# contact its user id or anonymous id already belongs to, so concurrent drains stitch different
# people. Empty: a hash of the anonymous id.
INGEST_ROUTING = env_str("INGEST_ROUTING", default="identity.services.stitching.ingest_route_sql") or None
# How many identifiers of a kind one contact may hold; more is refused with a warning. One user id
# (a second one means two people on one device); bounded emails and anonymous ids stop one
# shared or junk identifier from merging thousands of people into one.
IDENTITY_CAPS = {
    "user_id": 1,
    "email": env_int("IDENTITY_MAX_EMAILS", default=5),
    "phone": env_int("IDENTITY_MAX_PHONES", default=5),
    "external": env_int("IDENTITY_MAX_EXTERNAL_IDS", default=20),
    "anonymous_id": env_int("IDENTITY_MAX_ANONYMOUS_IDS", default=200),
}
# Called by contacts.services.merging.contact_merge for every merge, before rows move (contacts imports no
# higher app): identity sums the loser's daily rollups and keeps its own bookkeeping rows apart.
CONTACT_MERGE_HOOKS = ["identity.services.merging.contact_merge_prepare"]
# Called with event_ids=[...] inside the transaction that deletes events (retention; erasure may
# use it too), before the rows go: identity drops their projections and rebuilds the rollups of
# the days they counted in (events imports no higher app).
EVENTS_DELETE_HOOKS = ["identity.services.projection.events_forget"]
# Per-event tables partitioned with the event log's months (events/services/partitions.py).
EVENTS_COPARTITIONED_TABLES = ["identity_contactevent"]
# Tables partitioned by a date column `day` with the same months (created with them, emptied by
# their app's month hook): the daily rollups, so a month drop truncates their month of days.
EVENTS_DAY_PARTITIONED_TABLES = ["identity_dailyactivity"]
# Called by retention before it drops such a month with start=, end=; returns what to call after the
# drop, in the same transaction (identity rebuilds the rollups of the days the month counted in).
EVENTS_MONTH_DROP_HOOKS = ["identity.services.event_months.events_month_forget"]
# Called after commit with contact_ids=[...] when the CRM changes contacts, their company or their
# deals (contacts.services.changes): queued for realtime segment re-evaluation like the stitching worker's
# changes.
CONTACT_CHANGE_HOOKS = ["identity.services.projection.profile_updates_mark"]
# Predictive models' feature sources, in column order (predictions/services/features.py): one
# function each; computed traits or email engagement join as one more entry (then retrain).
PREDICTION_FEATURE_SOURCES = [
    "predictions.services.features.activity_features",
    "predictions.services.features.crm_features",
    "predictions.services.features.deal_features",
]
# Threads scikit-learn (OpenMP/BLAS) may use per training or scoring run. One: the worker shares the
# machine with web, other workers and Postgres, and OpenMP spin-waits when oversubscribed
# (gradient boosting on 75k rows measured 7.5 s with 1 thread, 44 s with 2 on a loaded 2-core box).
PREDICTION_THREADS = env_int("PREDICTION_THREADS", default=1)
# Called inside the deleting transaction, before contacts are deleted, with contact_ids=[...].
CONTACT_DELETE_HOOKS = ["segments.services.contacts_deleting", "traits.services.traits_contacts_deleting"]
# Contact-list columns higher apps contribute (shown, filtered, sorted): callables returning
# contacts.selectors.ListColumn lists (contacts.selectors.contact_list_columns calls them).
CONTACT_LIST_COLUMN_HOOKS: list[str] = [
    "traits.selectors.contact_list_columns",
    "scoring.selectors.contact_list_columns",
]
# Called by segments' ProfileUpdate drain with contact_ids=[...] (the claimed contacts and their
# tombstones), in order, inside its transaction and before the segments re-evaluate them: derived
# data segment conditions read (computed traits, then scores) is brought up to date first.
PROFILE_UPDATE_DERIVED_HOOKS: list[str] = [
    "traits.services.traits_refresh_contacts",
    "scoring.services.scores_refresh",
]
# Called by identity.selectors.deal_signals (deal cards, the deal page) with deal_ids=[...] and
# now=; each returns {deal id: [identity.selectors.Signal]} added after identity's own signals.
DEAL_SIGNAL_HOOKS = ["scoring.selectors.deal_signals"]
# Timeline sources higher apps add to the contact timeline (identity.selectors.contact_timeline) and
# the company and deal feeds (pipeline.selectors.activities.record_feed): called with user=, one of
# contact_id= / company_id= / deal_id=, until= and limit=, each returns at most `limit` entries at or
# before `until`, newest first (.kind, .at, .key, .template). mail: the email linked to the record.
TIMELINE_SOURCE_HOOKS = ["mail.selectors.messages.timeline_entries"]
# Merge-field values higher apps add to email templates as {{ trait.<key> }} (mail.services.templates):
# called with contact_id=, each returns {key: value}. traits: the contact's computed traits.
MAIL_MERGE_TRAIT_HOOKS = ["traits.selectors.contact_traits"]
# Hot-deal rules may also ask for a lead score (identity.services.hot): "choices" lists the score
# models for the rule form, "scoring" answers which contacts score at least N in one.
HOT_RULE_SCORE_HOOKS = {
    "choices": "scoring.selectors.score_model_choices",
    "scoring": "scoring.selectors.contacts_scoring",
}
# Keys that encrypt mailbox passwords at rest (mail.crypto), newest first: comma-separated Fernet keys
# or passphrases. Unset, the Django secret key is used, so `make run` works out of the box; set it in
# production so rotating DJANGO_SECRET_KEY does not make every stored mailbox password unreadable.
MAIL_ENCRYPTION_KEYS = env_list("MAIL_ENCRYPTION_KEYS", default=[]) or [SECRET_KEY]
# Region for phone numbers written without a +country prefix (e.g. "GB"); empty: such numbers
# are not used as identities (they stay in traits).
IDENTITY_PHONE_REGION = env_str("IDENTITY_PHONE_REGION", default="") or None
# The public origin that tracked sites reach this app at (e.g. https://crm.example.com), filled into
# the tracking snippet and the Segment settings document. Empty: built from each request, which is
# wrong behind a proxy that rewrites Host.
CDP_PUBLIC_HOST = env_str("CDP_PUBLIC_HOST", default="").rstrip("/")
# Admission control on /v1/* (events/ingest/limits.py). The limit counts events, not requests: storing
# and processing cost scales with events, and a 500-event batch is 500 units of work. A source's
# own Source.rate_limit_per_second overrides the default.
INGEST_RATE_LIMIT_PER_SECOND = env_int("INGEST_RATE_LIMIT_PER_SECOND", default=5_000)
# Above this many unprocessed queue rows the API answers 429: the workers are behind, and
# accepting more only lengthens the delay before anything is stitched or segmented.
INGEST_MAX_BACKLOG = env_int("INGEST_MAX_BACKLOG", default=1_000_000)
INGEST_BACKLOG_RETRY_AFTER = env_int("INGEST_BACKLOG_RETRY_AFTER", default=30)
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / ".devdata" / "celerybeat-schedule")

# Development prints mail to the console; production sends it through SMTP (EMAIL_* below).
_email_backend = env_str(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
_email_options = {}
if _email_backend.endswith("smtp.EmailBackend"):
    _email_options = {
        "host": env_str("EMAIL_HOST", default="localhost"),
        "port": env_int("EMAIL_PORT", default=587),
        "username": env_str("EMAIL_HOST_USER", default=""),
        "password": env_str("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env_bool("EMAIL_USE_TLS", default=True),
        "timeout": 10,
    }
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", default="cdp-crm <crm@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
