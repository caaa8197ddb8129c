"""Django settings of the fake LMS the bridge tests run `consume_gradecast_scores` in.

The pytest process (pytest-django, test database) and the worker processes it starts share
one SQLite file, named by FAKE_LMS_DB; the GRADECAST_* settings come from the environment
the tests give each worker.
"""

import json
import os
import tempfile

if "FAKE_LMS_DB" not in os.environ:
    # The first process to load these settings (pytest) picks the file; workers inherit it.
    os.environ["FAKE_LMS_DB"] = os.path.join(tempfile.mkdtemp(prefix="fake-lms-"), "lms.sqlite3")

SECRET_KEY = "fake-lms-tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "openedx_events",
    "gradecast_openedx",
    "fake_lms.gradebook",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["FAKE_LMS_DB"],
        # pytest-django creates the test database at this same path, so workers use it too.
        "TEST": {"NAME": os.environ["FAKE_LMS_DB"]},
        "OPTIONS": {
            # Several processes write: WAL lets readers go on, IMMEDIATE takes the write lock
            # up front instead of failing to upgrade a read lock, and busy waits are long.
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EVENTS_SERVICE_NAME = "lms"


def _json_env(name, default=None):
    value = os.environ.get(name)
    return default if value is None else json.loads(value)


GRADECAST_NATS_URL = os.environ.get("GRADECAST_NATS_URL", "nats://127.0.0.1:4222")
GRADECAST_STREAM = os.environ.get("GRADECAST_STREAM", "GRADECAST_SCORES")
GRADECAST_SUBJECT_PREFIX = os.environ.get("GRADECAST_SUBJECT_PREFIX", "gradecast")
GRADECAST_DURABLE_NAME = os.environ.get("GRADECAST_DURABLE_NAME", "openedx-lms")
GRADECAST_QUEUES = _json_env("GRADECAST_QUEUES", [])
GRADECAST_MAX_DELIVER = _json_env("GRADECAST_MAX_DELIVER", 5)
GRADECAST_ACK_WAIT_S = _json_env("GRADECAST_ACK_WAIT_S", 30)
GRADECAST_BACKOFF_S = _json_env("GRADECAST_BACKOFF_S")
GRADECAST_BATCH_SIZE = _json_env("GRADECAST_BATCH_SIZE", 10)
GRADECAST_HEALTH_FILE = os.environ.get("GRADECAST_HEALTH_FILE")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"gradecast_openedx": {"handlers": ["stderr"], "level": "INFO"}},
}
