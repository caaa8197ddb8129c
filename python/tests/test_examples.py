"""The README's Python examples run as shown: the example grader against gradecast, and the
demo LMS's worker printing what its receiver got."""

import os
import subprocess
import sys

import pytest

from conftest import score_data
from harness.processes import REPO_ROOT, ChildProcess
from harness.waiting import wait_for

GRADER = REPO_ROOT / "examples" / "python-grader" / "grader.py"
DEMO_LMS = REPO_ROOT / "examples" / "python-lms" / "manage.py"


def run_grader(gradecast, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GRADER), "--address", gradecast.address, *args],
        env={**os.environ, "GRADECAST_TOKEN": gradecast.token},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_grader_reports_a_score_then_a_retry(gradecast):
    submission_id = str(score_data("py-example").submission_id)
    args = ("--queue-name", "py-example", "--submission-id", submission_id, "--points-earned", "7")

    first = run_grader(gradecast, *args)
    again = run_grader(gradecast, *args)

    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith("sequence 1, new, published\n")
    assert again.stdout.replace("replayed", "new") == first.stdout


def test_the_example_grader_prints_every_broken_rule_of_a_refused_score(gradecast):
    refused = run_grader(
        gradecast,
        *("--queue-name", "py-example", "--submission-id", "0", "--points-earned", "11"),
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[1:] == [
        "  score_data.points_earned: must be <= points_possible (10), got 11",
        "  score_data.submission_id: must be > 0, got 0",
    ]


@pytest.mark.parametrize("queue", ["py-demo-lms"])
def test_the_demo_lms_worker_prints_the_score_its_receiver_got(
    nats_server, gradecast, tmp_path, queue
):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DEMO_LMS_DIR": str(tmp_path),
        "GRADECAST_NATS_URL": nats_server.url,
        "GRADECAST_HEALTH_FILE": str(tmp_path / "health.json"),
    }
    subprocess.run(
        [sys.executable, str(DEMO_LMS), "migrate", "--verbosity", "0"], env=env, check=True
    )
    worker = ChildProcess(
        [sys.executable, str(DEMO_LMS), "consume_gradecast_scores", "--queue", queue],
        tmp_path / "worker.log",
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    try:
        submission_id = str(score_data(queue).submission_id)
        done = run_grader(
            gradecast,
            *("--queue-name", queue, "--submission-id", submission_id, "--points-earned", "9"),
        )
        assert done.returncode == 0, done.stderr
        wait_for(
            lambda: f"submission {submission_id}, 9/10" in worker.output(),
            "the demo LMS to print the score",
            details=worker.output,
        )
        assert worker.stop() == 0, worker.output()
    finally:
        worker.kill9()
