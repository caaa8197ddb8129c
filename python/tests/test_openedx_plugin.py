"""edx-platform finds the app through its plugin entry point, with nothing else to register."""

from edx_django_utils.plugins import get_plugin_apps, get_plugin_url_patterns


def test_the_lms_plugin_entry_point_names_the_app():
    assert "gradecast_openedx.apps.GradecastOpenedxConfig" in get_plugin_apps("lms.djangoapp")


def test_the_app_adds_no_urls_to_the_lms():
    assert get_plugin_url_patterns("lms.djangoapp") == []
