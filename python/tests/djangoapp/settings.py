"""Settings of the test project, chosen by environment variables:

``SESSIONDIR_TEST_STATE``
    A directory of the run's own (session directory, SQLite file, cache files).
``SESSIONDIR_TEST_BACKEND``
    ``sessiondir`` (the engine with ``CheckoutSessionMiddleware``), ``sessiondir-plain`` (the
    engine with Django's ``SessionMiddleware``), ``file``, ``db`` (SQLite), ``cached_db``
    (SQLite behind Django's file-based cache, the cache every worker process shares).
``SESSIONDIR_TEST_DELAY_MS``
    Work the increment view does between reading and writing the counter (default 1).
"""

import os
from pathlib import Path

STATE = Path(os.environ.get("SESSIONDIR_TEST_STATE", "/tmp/sessiondir-djangoapp"))
BACKEND = os.environ.get("SESSIONDIR_TEST_BACKEND", "sessiondir")

SECRET_KEY = "sessiondir-test-project"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djangoapp.urls"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.sessions"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(STATE / "db.sqlite3"),
        "OPTIONS": {"timeout": 30},
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
}

DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
if BACKEND == "sessiondir":
    SESSION_ENGINE = "sessiondir.django"
    MIDDLEWARE = ["sessiondir.django.middleware.CheckoutSessionMiddleware"]
elif BACKEND == "sessiondir-plain":
    SESSION_ENGINE = "sessiondir.django"
    MIDDLEWARE = [DJANGO_MIDDLEWARE]
elif BACKEND == "file":
    SESSION_ENGINE = "django.contrib.sessions.backends.file"
    MIDDLEWARE = [DJANGO_MIDDLEWARE]
elif BACKEND == "db":
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
    MIDDLEWARE = [DJANGO_MIDDLEWARE]
elif BACKEND == "cached_db":
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    MIDDLEWARE = [DJANGO_MIDDLEWARE]
else:
    raise ValueError(f"unknown SESSIONDIR_TEST_BACKEND {BACKEND!r}")

SESSIONDIR_PATH = str(STATE / "sessiondir")
SESSIONDIR_LOCK_TIMEOUT = 60
SESSION_FILE_PATH = str(STATE / "files")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(STATE / "cache"),
    }
}
for sub in ("files", "cache"):
    (STATE / sub).mkdir(parents=True, exist_ok=True)

DELAY = float(os.environ.get("SESSIONDIR_TEST_DELAY_MS", "1")) / 1000.0
