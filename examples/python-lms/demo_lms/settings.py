"""What an LMS adds for gradecast (edx-platform: lms/envs/private.py or the YAML config), plus
the little Django needs to run on its own. Every GRADECAST_* setting and its default is in
gradecast_openedx/bridge_settings.py."""

import os
from pathlib import Path

# -- gradecast: the part an Open edX operator adds ---------------------------------------------
GRADECAST_NATS_URL = os.environ.get("GRADECAST_NATS_URL", "nats://127.0.0.1:4222")
GRADECAST_STREAM = os.environ.get("GRADECAST_STREAM", "GRADECAST_SCORES")
GRADECAST_SUBJECT_PREFIX = os.environ.get("GRADECAST_SUBJECT_PREFIX", "gradecast")
GRADECAST_DURABLE_NAME = "demo-lms"
GRADECAST_QUEUES = []  # every queue
GRADECAST_HEALTH_FILE = os.environ.get("GRADECAST_HEALTH_FILE")
# ----------------------------------------------------------------------------------------------

BASE_DIR = Path(os.environ.get("DEMO_LMS_DIR", ".data/demo-lms"))
BASE_DIR.mkdir(parents=True, exist_ok=True)
SECRET_KEY = "demo-lms-not-secret"
USE_TZ = True
INSTALLED_APPS = ["openedx_events", "gradecast_openedx", "demo_lms.grades"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "lms.sqlite3")}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"gradecast_openedx": {"handlers": ["console"], "level": "INFO"}},
}
