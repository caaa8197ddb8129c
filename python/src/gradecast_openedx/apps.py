"""The Django app, and its Open edX plugin registration (entry point `lms.djangoapp`)."""

from django.apps import AppConfig


class GradecastOpenedxConfig(AppConfig):
    name = "gradecast_openedx"
    verbose_name = "gradecast scores for Open edX"
    default_auto_field = "django.db.models.BigAutoField"

    # edx-platform's plugin system reads this when the app comes in through the
    # `lms.djangoapp` entry point. The app has no URLs, settings or signal handlers to
    # register there: its worker is a management command.
    plugin_app: dict = {}
