"""The demo LMS's manage.py: `python examples/python-lms/manage.py migrate`, then
`python examples/python-lms/manage.py consume_gradecast_scores`."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_lms.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
